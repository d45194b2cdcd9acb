"""Hostile input, through every door: each case gets the provider's error object naming the
problem (never a 500, never a traceback), and the fake keeps serving afterwards.

Expected errors are catalogue keys and rule ids from the contract; the table only says which
one applies and what the message must mention.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from reliability_helpers import (
    AUTH,
    CREATE,
    JSON,
    Door,
    InProcessDoor,
    Live,
    Reply,
    create_and_poll_ok,
    encode,
    request_head,
)
from sample_payloads import b64, image_bytes, png_claiming, t2v

from mockserver import Service, admin, load_contract

CONTRACT = load_contract()
MODEL = CONTRACT.models["kling-v2-6"]
RULES = {rule.id: rule for rule in MODEL.rules}
ERROR_SCHEMA = CONTRACT.error_validator()
LIMIT = CONTRACT.max_body_bytes
DEPTH = CONTRACT.max_json_depth
GET = CONTRACT.operations["video_generations.get"].path.replace("{task_id}", "task_doesnotexist")
MEDIA = CONTRACT.operations["media.get"].path.replace("{file}", "")


@dataclass(frozen=True)
class Bad:
    """One hostile request and the catalogued answer it must get.

    ``error`` is a catalogue key, or ``rule:<id>`` for a named rule (its error and param come
    from the rule); ``mentions`` must appear in the message (it names the problem).
    """

    body: bytes = b""
    error: str = "invalid_json"
    mentions: str = ""
    param: str | None = None
    method: str = "POST"
    target: str = CREATE
    headers: Sequence[tuple[str, str]] = (AUTH, JSON)


def assert_error(reply: Reply, case: Bad) -> None:
    __tracebackhide__ = True
    # 5xx only where the catalogue itself says so (model_not_found keeps new-api's 503)
    expected = CONTRACT.errors[RULES[case.error[5:]].error if case.error.startswith("rule:") else case.error]
    assert reply.status < 500 or reply.status == expected.http_status, reply.body[:500]
    assert b"Traceback" not in reply.body
    assert (reply.header("content-type") or "").startswith("application/json"), reply.headers
    payload = reply.json()
    errors = sorted(ERROR_SCHEMA.iter_errors(payload), key=str)
    assert not errors, f"not the provider's error object: {errors[0].message} in {payload}"
    error = payload["error"]
    key, param = case.error, case.param
    if key.startswith("rule:"):
        rule = RULES[key[5:]]
        key, param = rule.error, rule.param
        assert f"(rule {rule.id})" in error["message"], error
    spec = CONTRACT.errors[key]
    assert (reply.status, error["code"], error["type"]) == (spec.http_status, spec.code, spec.type), error
    assert error["message"].startswith(spec.message.split("{")[0]), error
    assert error["param"] == param, error
    assert case.mentions in error["message"], error


def _deep(depth: int) -> bytes:
    return b'{"model":"kling-v2-6","multi_prompt":[{"prompt":"x","duration":5}],"extra":' + (
        b"[" * depth + b"]" * depth + b"}"
    )


def _image(value: str, field_name: str = "image") -> bytes:
    return encode(t2v(**{field_name: value}))


PNG = image_bytes(640, 360)
JPEG = image_bytes(640, 360, "JPEG")
OK = encode(t2v())

JSON_CASES = [
    pytest.param(Bad(b'{"model": "kling-v2-6", "multi_prompt": [', mentions="unexpected end of data"), id="truncated"),
    pytest.param(Bad(b"{model: 1}", mentions="line 1 column 2"), id="malformed-unquoted-key"),
    pytest.param(
        Bad(b'{"model": "kling-v2-6"} x', mentions="unexpected content after document"), id="trailing-garbage"
    ),
    pytest.param(Bad(b"[]", mentions="expected a JSON object, got array"), id="array"),
    pytest.param(Bad(b'"kling-v2-6"', mentions="got string"), id="string"),
    pytest.param(Bad(b"null", mentions="got null"), id="null"),
    pytest.param(Bad(b"42", mentions="got number"), id="number"),
    pytest.param(Bad(b"true", mentions="got boolean"), id="boolean"),
    pytest.param(Bad(b"", mentions="the body is empty"), id="empty"),
    pytest.param(Bad(b" \r\n\t", mentions="the body is empty"), id="whitespace-only"),
    pytest.param(Bad(b"[" * 100_000, mentions="nested too deeply"), id="nesting-100k-unclosed"),
    pytest.param(Bad(_deep(DEPTH + 1), mentions="nested too deeply"), id="nesting-past-the-limit"),
    pytest.param(Bad(_deep(1000), mentions="nested too deeply"), id="nesting-1000"),
    pytest.param(Bad(b'{"model":"kling-v2-6","duration":1e400}', mentions="infinity"), id="number-1e400"),
    pytest.param(
        Bad(b'{"model":"kling-v2-6","duration":' + b"9" * 5000 + b"}", mentions="infinity"), id="integer-5000-digits"
    ),
    pytest.param(Bad(b'{"model":"kling-v2-6","duration":NaN}', mentions="line 1 column 34"), id="NaN"),
    pytest.param(Bad(b'{"model":"kling-v2-6","duration":Infinity}', mentions="line 1 column 34"), id="Infinity"),
    pytest.param(Bad(b'{"model":"kling-v2-6","duration":-Infinity}', mentions="line 1 column 35"), id="minus-Infinity"),
    pytest.param(
        Bad(b'{"model":"kling-v2-6","negative_prompt":"a\\ud800b"}', mentions="surrogate"), id="lone-high-surrogate"
    ),
    pytest.param(
        Bad(b'{"model":"kling-v2-6","negative_prompt":"a\\udc00b"}', mentions="surrogate"), id="lone-low-surrogate"
    ),
    pytest.param(Bad(b'{"model":"kling-v2-6","negative_prompt":"a\xffb"}', mentions="UTF-8"), id="non-utf8-byte"),
    pytest.param(
        Bad(b'{"model":"kling-v2-6","negative_prompt":"\xed\xa0\x80"}', mentions="UTF-8"), id="utf8-encoded-surrogate"
    ),
    pytest.param(Bad(b"\xef\xbb\xbf" + OK, mentions="line 1 column 1"), id="utf8-bom"),
    pytest.param(Bad(OK.decode().encode("utf-16"), mentions="UTF-8"), id="utf16-body"),
]

CONTENT_TYPE_CASES = [
    pytest.param(
        Bad(OK, "unsupported_content_type", "'text/plain'", headers=(AUTH, ("content-type", "text/plain"))),
        id="text-plain",
    ),
    pytest.param(Bad(OK, "unsupported_content_type", "'none'", headers=(AUTH,)), id="no-content-type"),
    pytest.param(
        Bad(
            OK,
            "unsupported_content_type",
            "'multipart/form-data'",
            headers=(AUTH, ("content-type", "multipart/form-data; boundary=x")),
        ),
        id="multipart",
    ),
    pytest.param(
        Bad(
            b"model=kling-v2-6",
            "unsupported_content_type",
            "x-www-form-urlencoded",
            headers=(AUTH, ("content-type", "application/x-www-form-urlencoded")),
        ),
        id="form-urlencoded",
    ),
    pytest.param(
        Bad(
            OK, "unsupported_content_type", "'application/jsonx'", headers=(AUTH, ("content-type", "application/jsonx"))
        ),
        id="json-lookalike",
    ),
]

VALUE_CASES = [
    pytest.param(Bad(encode(t2v(model="kling-v2-6\x00")), "model_not_found", "\\x00", "model"), id="nul-in-model"),
    pytest.param(
        Bad(encode(t2v(model=["kling-v2-6"])), "invalid_parameter", "got array", "model"), id="model-as-array"
    ),
    pytest.param(
        Bad(encode(t2v(duration=1e308)), "invalid_parameter", "must be one of", "duration"), id="duration-1e308"
    ),
    pytest.param(
        Bad(encode(t2v(duration=2**64)), "invalid_parameter", "must be one of", "duration"), id="duration-2-pow-64"
    ),
    pytest.param(
        Bad(
            encode(t2v(multi_prompt=[{"prompt": "x", "duration": -(2**63)}])),
            "invalid_parameter",
            ">=",
            "multi_prompt[0].duration",
        ),
        id="shot-duration-min-int64",
    ),
    pytest.param(
        Bad(encode(t2v(cfg_scale=-1e308)), "invalid_parameter", ">=", "cfg_scale"), id="cfg-scale-huge-negative"
    ),
    pytest.param(
        Bad(
            encode(t2v(multi_prompt=[{"prompt": "x" * 100_000, "duration": 5}])),
            "invalid_parameter",
            "at most",
            "multi_prompt[0].prompt",
        ),
        id="prompt-100k-chars",
    ),
]

IMAGE_CASES = [
    pytest.param(Bad(_image("!!!not base64!!!"), "rule:image.encoding", "invalid base64"), id="invalid-base64"),
    pytest.param(Bad(_image(b64(PNG)[:-3]), "rule:image.encoding", "invalid base64"), id="base64-bad-padding"),
    pytest.param(Bad(_image(""), "invalid_parameter", "at least 1 characters", "image"), id="empty-image"),
    pytest.param(Bad(_image("data:image/png;base64"), "rule:image.encoding", "data URI"), id="data-uri-no-payload"),
    pytest.param(
        Bad(_image(b64(b"GIF89a" + b"\0" * 64)), "rule:image.format", "the bytes are not a JPEG or PNG image"),
        id="gif-magic-but-junk",
    ),
    pytest.param(Bad(_image(b64(image_bytes(640, 360, "GIF"))), "rule:image.format", "GIF"), id="real-gif"),
    pytest.param(
        Bad(_image(b64(b"%PDF-1.7 not an image")), "rule:image.format", "the bytes are not a JPEG or PNG image"),
        id="pdf",
    ),
    pytest.param(
        Bad(_image("data:image/jpeg;base64," + b64(PNG)), "rule:image.format", "declares JPEG but the bytes are PNG"),
        id="data-uri-lies-jpeg",
    ),
    pytest.param(
        Bad(_image("data:image/png;base64," + b64(JPEG)), "rule:image.format", "declares PNG but the bytes are JPEG"),
        id="data-uri-lies-png",
    ),
    pytest.param(
        Bad(_image("data:text/html;base64," + b64(PNG)), "rule:image.format", "text/html"), id="data-uri-html"
    ),
    pytest.param(Bad(_image(b64(PNG[:200])), "rule:image.decodable", "cannot be decoded"), id="truncated-png"),
    pytest.param(
        Bad(_image(b64(JPEG[: len(JPEG) // 3])), "rule:image.decodable", "cannot be decoded"), id="truncated-jpeg"
    ),
    pytest.param(
        Bad(_image(b64(png_claiming(100_000, 100_000))), "rule:image.max_pixels", "40000000"), id="bomb-100000x100000"
    ),
    pytest.param(
        Bad(_image(b64(png_claiming(10_000, 10_000))), "rule:image.max_pixels", "40000000"), id="bomb-10000x10000"
    ),
    pytest.param(
        Bad(_image(b64(png_claiming(7_000, 7_000))), "rule:image.max_pixels", "49000000"), id="bomb-just-past-40MP"
    ),
    pytest.param(Bad(_image(b64(png_claiming(1, 2**31 - 1))), "rule:image.max_pixels", "40000000"), id="bomb-1-by-2G"),
    pytest.param(Bad(_image("file:///etc/passwd"), "rule:image.encoding", "URL scheme not allowed"), id="file-url"),
    pytest.param(Bad(_image("ftp://127.0.0.1/x.png"), "rule:image.encoding", "URL scheme not allowed"), id="ftp-url"),
    pytest.param(Bad(_image("http://"), "rule:image.encoding", "no host"), id="url-without-host"),
]

HEADER_CASES = [
    pytest.param(Bad(OK, "missing_api_key", headers=(JSON,)), id="no-authorization"),
    pytest.param(
        Bad(OK, "invalid_api_key", "more than one", headers=(AUTH, AUTH, JSON)), id="duplicated-authorization"
    ),
    pytest.param(
        Bad(OK, "invalid_api_key", "more than one", headers=(AUTH, ("authorization", "Bearer sk-other"), JSON)),
        id="two-different-authorizations",
    ),
    pytest.param(
        Bad(OK, "invalid_api_key", "over 4096", headers=(("authorization", "Bearer sk-" + "x" * 6_000), JSON)),
        id="oversized-authorization",
    ),
    pytest.param(
        Bad(
            OK,
            "headers_too_large",
            "16384 bytes of names and values)",
            headers=(("authorization", "Bearer sk-" + "x" * 60_000), JSON),
        ),
        id="authorization-past-the-header-bound",
    ),
    pytest.param(
        Bad(OK, "invalid_api_key", "Bearer sk-", headers=(("authorization", "Basic c2stdGVzdDo="), JSON)),
        id="basic-scheme",
    ),
    pytest.param(
        Bad(OK, "invalid_api_key", "Bearer sk-", headers=(("authorization", "Bearer"), JSON)), id="bearer-without-token"
    ),
    pytest.param(
        Bad(OK, "invalid_api_key", "Bearer sk-", headers=(("authorization", "Bearer    "), JSON)),
        id="bearer-blank-token",
    ),
    pytest.param(
        Bad(OK, "invalid_api_key", "sha256:", headers=(("authorization", "Bearer sk-wrong"), JSON)), id="unknown-key"
    ),
    pytest.param(
        Bad(OK, "invalid_api_key", "sha256:", headers=(("authorization", "Bearer sk-\xff\xfe"), JSON)), id="latin1-key"
    ),
    pytest.param(
        Bad(OK, "invalid_api_key", "is not accepted", headers=(("authorization", "Bearer sk-"), JSON)), id="prefix-only"
    ),
]

TRAVERSALS = [
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "....//....//etc/passwd",
    "..\\..\\windows\\win.ini",
    "..%5c..%5cwindows%5cwin.ini",
    "task_x.mp4%00.png",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
    "/etc/passwd",
    "task_" + "A" * 5000 + ".mp4",
    "..%00/etc/passwd",
    "task_x%0A.mp4",  # Starlette's catch-all route once missed paths holding a newline
    "%0d%0aSet-Cookie:%20x=1",
]
TRAVERSAL_CASES = [pytest.param(traversal, id=traversal[:40]) for traversal in TRAVERSALS]


@pytest.mark.parametrize("case", [*JSON_CASES, *CONTENT_TYPE_CASES, *VALUE_CASES, *IMAGE_CASES, *HEADER_CASES])
def test_hostile_create_gets_the_catalogued_error_and_the_fake_keeps_serving(door: Door, case: Bad) -> None:
    reply = door.send(case.method, case.target, case.headers, case.body)
    assert_error(reply, case)
    create_and_poll_ok(door)


@pytest.mark.parametrize("traversal", TRAVERSAL_CASES)
def test_artefact_paths_cannot_escape_their_folder(door: Door, traversal: str) -> None:
    # A finished task first: a traversal must not reach its file, let alone /etc/passwd.
    create_and_poll_ok(door)
    reply = door.send("GET", MEDIA + traversal)
    assert reply.status in (404, 400), reply.body[:300]
    error = reply.json()["error"]
    assert not list(ERROR_SCHEMA.iter_errors(reply.json()))
    assert error["code"] in (CONTRACT.errors["media_not_found"].code, CONTRACT.errors["not_found"].code)
    assert b"root:" not in reply.body
    assert len(reply.body) < 2048, "the error must not echo a 5000-character path back"
    create_and_poll_ok(door)


def _routes() -> list[tuple[str, str, tuple[str, ...]]]:
    """Every route of the contract and the admin API, a concrete path, its allowed methods."""
    found: list[tuple[str, str, tuple[str, ...]]] = []
    for op in CONTRACT.operations.values():
        path = op.path.replace("{task_id}", "task_x").replace("{file}", "task_x.mp4")
        allowed = ("GET", "HEAD") if op.id == "media.get" else (op.method,)
        found.append((op.id, path, allowed))
    found.append(("openapi", "/openapi.json", ("GET", "HEAD")))
    by_path: dict[str, list[str]] = {}
    for method, path, _ in admin.ROUTES:
        by_path.setdefault(admin.PREFIX + path.replace("{task_id}", "task_x"), []).append(method)
    found.extend((f"admin {path}", path, tuple(methods)) for path, methods in by_path.items())
    return found


# httptools (the live server's HTTP parser) knows a fixed method list: unknown tokens never
# reach the app there, so "BREW" is tried in-process and the others through both doors.
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "BREW")


@pytest.mark.parametrize(("route", "path", "allowed"), [pytest.param(*r, id=r[0]) for r in _routes()])
def test_unknown_methods_on_every_route_get_405_with_allow(
    door: Door, route: str, path: str, allowed: tuple[str, ...]
) -> None:
    methods = [m for m in METHODS if m not in allowed and (m != "BREW" or isinstance(door, InProcessDoor))]
    assert methods
    for method in methods:
        reply = door.send(method, path, [AUTH, JSON], b"{}")
        assert_error(reply, Bad(error="method_not_allowed", mentions=method))
        assert set((reply.header("allow") or "").replace(" ", "").split(",")) >= set(allowed) - {"HEAD"}, reply.headers
    create_and_poll_ok(door)


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(GET.replace("task_doesnotexist", "task_%00"), id="nul"),
        pytest.param(GET.replace("task_doesnotexist", "task_%0Ax"), id="newline"),
        pytest.param(GET.replace("task_doesnotexist", "%ff%fe"), id="undecodable-percent"),
        pytest.param(GET.replace("task_doesnotexist", "t" * 8000), id="8000-chars"),
        pytest.param(GET + "?task_id=../../etc/passwd", id="query"),
    ],
)
def test_hostile_task_ids_get_task_not_exist(door: Door, target: str) -> None:
    reply = door.send("GET", target, [AUTH])
    assert_error(reply, Bad(error="task_not_exist", param="task_id"))
    assert len(reply.body) < 1024, "the id is not echoed back in full"
    create_and_poll_ok(door)


def test_a_body_over_the_limit_is_refused_in_process(service: Service) -> None:
    door = InProcessDoor(service)
    reply = door.send("POST", CREATE, [AUTH, JSON], b" " * (LIMIT + 1))
    assert_error(reply, Bad(error="body_too_large", mentions=str(LIMIT)))
    create_and_poll_ok(door)


def test_an_announced_oversized_body_gets_413_before_it_is_sent(live: Live) -> None:
    door = live.door
    with door.connect() as sock:
        head = request_head("POST", CREATE, "x", [AUTH, JSON, ("content-length", str(LIMIT * 2))])
        sock.sendall(head + b'{"model": ')  # a few bytes of the 64 MiB announced, then wait
        reply = door.read_reply(sock)
    assert_error(reply, Bad(error="body_too_large", mentions=str(LIMIT)))
    create_and_poll_ok(door)


def test_a_streamed_oversized_body_gets_413_without_its_end(live: Live) -> None:
    """Chunked, no length announced: the fake stops reading at the limit and answers 413
    although the body never ends (no terminating chunk is ever sent)."""
    door = live.door
    chunk = b" " * (1 << 20)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with door.connect() as sock:
        sock.sendall(request_head("POST", CREATE, "x", [AUTH, JSON, ("transfer-encoding", "chunked")]))

        def pump() -> None:
            try:  # the limit plus 4 MiB: enough to cross it, bounded whatever the server does
                for _ in range(LIMIT // len(chunk) + 4):
                    sock.sendall(framed)
            except OSError:
                pass  # the server may stop reading once it has answered

        sender = threading.Thread(target=pump, daemon=True)
        sender.start()
        reply = door.read_reply(sock)
        sender.join(30)
    assert_error(reply, Bad(error="body_too_large", mentions=str(LIMIT)))
    create_and_poll_ok(door)


def test_prompts_with_nul_are_json_and_accepted_like_the_gateway_does(door: Door) -> None:
    """NUL is a legal JSON string character; the real gateway forwards it, so the fake accepts
    it rather than inventing a rejection (it must not break anything downstream either)."""
    reply = door.send("POST", CREATE, [AUTH, JSON], encode(t2v(multi_prompt=[{"prompt": "a\x00b", "duration": 5}])))
    assert reply.status == 200, reply.body
    create_and_poll_ok(door)


_WRONG = {"string": 123, "boolean": "yes", "number": "5", "integer": "5", "array": {"0": 1}, "object": [1]}
WRONG_TYPE_CASES = [
    pytest.param(name, _WRONG[schema["type"]], id=f"{mode}.{name}")
    for mode, request_schema in MODEL.request_schemas.items()
    for name, schema in request_schema["properties"].items()
    if isinstance(schema.get("type"), str)
]


@pytest.mark.parametrize(("name", "value"), WRONG_TYPE_CASES)
def test_a_wrong_type_in_any_field_is_named(service: Service, name: str, value: object) -> None:
    """Every field of the contract's request schemas, given a value of the wrong type."""
    door = InProcessDoor(service)
    body = t2v(image=b64(image_bytes(640, 360))) if name == "image_tail" else t2v()
    body[name] = value
    reply = door.send("POST", CREATE, [AUTH, JSON], encode(body))
    assert_error(reply, Bad(error="invalid_parameter", param=name, mentions="must be of type"))
    create_and_poll_ok(door)


@pytest.mark.parametrize("raw", [b"%PDF-1.7 not an image", b"GIF89a" + b"\0" * 64, b"plain text", b"\x89PNG\r\n\x1a\n"])
def test_bytes_that_are_no_image_are_called_not_a_jpeg_or_png_without_pillows_exception_names(raw: bytes) -> None:
    from mockserver import load_contract
    from mockserver.validation import ImageProblem, inspect_image

    problem = inspect_image(b64(raw), load_contract().models["kling-v2-6"].image_limits)
    assert isinstance(problem, ImageProblem)
    assert (problem.check, problem.detail) == ("format", "the bytes are not a JPEG or PNG image")
