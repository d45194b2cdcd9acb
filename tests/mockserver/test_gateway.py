"""The gateway face end to end through ``Service.handle``: flows, media, errors, faults, journal.

Every response body is checked against the contract's response schemas, so these tests also
prove the fake never answers off-contract.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import av
import pytest
from mock_bodies import AUTH, CREATE, b64, i2v, image_bytes, t2v

from mockserver import Engine, FaultPlan, Outcome, Progression, Service, VirtualClock
from mockserver.contract import load_contract
from mockserver.http import ApiRequest, ApiResponse

CONTRACT = load_contract()
SCHEMAS = {
    "create": CONTRACT.response_validator("responses/video_generations.create.response.schema.json"),
    "get": CONTRACT.response_validator("responses/video_generations.get.response.schema.json"),
}


def conforms(response: ApiResponse, operation: str) -> dict[str, Any]:
    body: dict[str, Any] = response.payload
    if response.status == 200:
        SCHEMAS[operation].validate(body)
    else:
        CONTRACT.error_validator().validate(body)
    return body


def download(service: Service, url: str, headers: tuple[tuple[str, str], ...] = ()) -> ApiResponse:
    return service.handle(ApiRequest.build("GET", url, headers))


def probe(data: bytes) -> tuple[float, int, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None
        assert stream.time_base is not None
        return float(stream.duration * stream.time_base), stream.codec_context.width, stream.codec_context.height


@pytest.mark.parametrize(
    ("body", "size"),
    [
        pytest.param(t2v(), (1920, 1080), id="text2video-1080P"),
        pytest.param(
            t2v(size="720P", duration=10, multi_prompt=[{"prompt": "x", "duration": 10}]),
            (1280, 720),
            id="text2video-720P-10s",
        ),
        pytest.param(i2v(), (1920, 1080), id="image2video-landscape"),
        pytest.param(i2v(image=b64(image_bytes(360, 640)), size="720P"), (720, 1280), id="image2video-portrait"),
        pytest.param(i2v(image=b64(image_bytes(500, 480))), (1080, 1080), id="image2video-square"),
    ],
)
def test_a_valid_request_reaches_completed_and_its_url_serves_a_matching_mp4(
    body: dict[str, Any],
    size: tuple[int, int],
    service: Service,
    create: Callable[..., Any],
    poll: Callable[[str], Any],
) -> None:
    created = conforms(create(body), "create")
    assert created["status"] == "queued"
    statuses = [conforms(poll(created["task_id"]), "get") for _ in range(2)]
    assert [s["status"] for s in statuses] == ["in_progress", "completed"]
    done = statuses[-1]
    assert (done["metadata"]["width"], done["metadata"]["height"]) == size
    media = download(service, done["url"])
    assert media.status == 200
    assert media.header("content-type") == "video/mp4"
    duration, width, height = probe(media.body)
    assert (width, height) == size
    assert duration == pytest.approx(done["metadata"]["duration"], abs=0.05)


def test_virtual_time_completes_a_task_with_a_seconds_progression(
    service: Service, create: Callable[..., Any], poll: Callable[[str], Any]
) -> None:
    service.engine.set_progression(Progression.after_seconds(60))
    task_id = create(t2v()).payload["task_id"]
    assert poll(task_id).payload["status"] == "queued"
    service.engine.advance_clock(60)
    assert poll(task_id).payload["status"] == "in_progress"
    service.engine.advance_clock(60)
    done = conforms(poll(task_id), "get")
    assert (done["status"], done["progress"]) == ("completed", 100)
    assert done["updated_at"] - done["created_at"] == 120


def test_a_failed_task_carries_the_catalogued_reason(
    service: Service, create: Callable[..., Any], poll: Callable[[str], Any]
) -> None:
    service.engine.set_outcome(Outcome.fail("content_policy"))
    task_id = create(t2v()).payload["task_id"]
    poll(task_id)
    failed = conforms(poll(task_id), "get")
    reason = CONTRACT.task_failures["content_policy"]
    assert failed["status"] == "failed"
    assert failed["url"] is None
    assert (failed["error"]["code"], failed["error"]["message"]) == (reason["code"], reason["message"])


def _finished_url(service: Service, create: Callable[..., Any]) -> str:
    service.engine.set_progression(Progression.immediate())
    task_id = create(t2v()).payload["task_id"]
    url: str = service.handle_simple("GET", f"{CREATE}/{task_id}", None, AUTH).payload["url"]
    return url


@pytest.mark.parametrize(
    ("method", "range_header", "status", "length"),
    [
        pytest.param("HEAD", None, 200, 0, id="head"),
        pytest.param("GET", "bytes=0-99", 206, 100, id="first-100-bytes"),
        pytest.param("GET", "bytes=-10", 206, 10, id="suffix"),
    ],
)
def test_media_supports_head_and_ranges(
    method: str, range_header: str | None, status: int, length: int, service: Service, create: Callable[..., Any]
) -> None:
    url = _finished_url(service, create)
    headers = (("range", range_header),) if range_header else ()
    response = service.handle(ApiRequest.build(method, url, headers))
    assert response.status == status
    assert len(response.body) == length


def test_unsatisfiable_range_is_416_with_the_error_object(service: Service, create: Callable[..., Any]) -> None:
    response = download(service, _finished_url(service, create), (("range", "bytes=99999999-"),))
    assert response.status == 416
    assert response.header(
        "content-range",
    ).startswith("bytes */")  # type: ignore[union-attr]
    assert conforms(response, "get")["error"]["code"] == "range_not_satisfiable"


def test_links_expire_on_the_clock(service: Service, create: Callable[..., Any]) -> None:
    url = _finished_url(service, create)
    ttl = CONTRACT.index["media"]["ttl_seconds"]
    service.engine.advance_clock(ttl)
    assert download(service, url).status == 200
    service.engine.advance_clock(1)
    expired = download(service, url)
    assert (expired.status, expired.payload["error"]["code"]) == (403, "link_expired")


@pytest.mark.parametrize(
    "path", ["/__media__/task_" + "x" * 32 + ".mp4", "/__media__/..%2f..%2fetc%2fpasswd", "/__media__/notes.txt"]
)
def test_unknown_media_is_404(path: str, service: Service) -> None:
    response = service.handle_simple("GET", path)
    assert (response.status, response.payload["error"]["code"]) == (404, "media_not_found")


def test_media_of_an_unfinished_task_is_404(service: Service, create: Callable[..., Any]) -> None:
    task_id = create(t2v()).payload["task_id"]
    assert service.handle_simple("GET", f"/__media__/{task_id}.mp4").status == 404


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        pytest.param((), "No API key", id="missing"),
        pytest.param((("authorization", "Basic abc"),), "Bearer", id="wrong-scheme"),
        pytest.param((("authorization", "Bearer "),), "Bearer", id="empty-token"),
        pytest.param((("authorization", "Bearer sk-wrong"),), "not accepted", id="unknown-key"),
        pytest.param(
            (("authorization", "Bearer sk-test"), ("authorization", "Bearer sk-test")), "more than one", id="duplicated"
        ),
        pytest.param((("authorization", "Bearer sk-" + "a" * 5000),), "over 4096", id="oversized"),
    ],
)
def test_bad_credentials_get_401_invalid_api_key_without_echoing_the_key(
    headers: tuple[tuple[str, str], ...], detail: str, create: Callable[..., Any]
) -> None:
    response = create(t2v(), headers)
    error = conforms(response, "create")["error"]
    assert (response.status, error["code"]) == (401, "invalid_api_key")
    assert detail in error["message"]
    assert "sk-wrong" not in error["message"]


def test_accepted_keys_are_configurable_and_the_prefix_is_optional() -> None:
    service = Service(Engine(clock=VirtualClock()), keys=["sk-team", "raw"])
    for key, status in (("sk-team", 200), ("team", 200), ("sk-raw", 200), ("sk-test", 401)):
        assert service.handle_simple("POST", CREATE, t2v(), [("authorization", f"Bearer {key}")]).status == status, key
    anyone = Service(keys=["*"])
    assert anyone.handle_simple("POST", CREATE, t2v(), [("authorization", "Bearer sk-whatever")]).status == 200


@pytest.mark.parametrize(
    ("content_type", "body", "code", "detail"),
    [
        pytest.param("text/plain", b"{}", "invalid_request", "Content-Type must be application/json", id="text-plain"),
        pytest.param(None, b"{}", "invalid_request", "got 'none'", id="no-content-type"),
        pytest.param("application/json", b"", "invalid_request", "body is empty", id="empty"),
        pytest.param("application/json", b'{"model": ', "invalid_request", "not a JSON object", id="truncated"),
        pytest.param("application/json", b"[1, 2]", "invalid_request", "expected a JSON object, got array", id="array"),
        pytest.param("application/json", b'{"cfg_scale": NaN}', "invalid_request", "unexpected character", id="nan"),
        pytest.param("application/json", b'{"model": "\\ud800"}', "invalid_request", "surrogate", id="lone-surrogate"),
        pytest.param("application/json", b"\xff\xfe\x00{", "invalid_request", "not a JSON object", id="not-utf8"),
        pytest.param(
            "application/json", b"[" * 100_000 + b"]" * 100_000, "invalid_request", "nested too deeply", id="deep"
        ),
        pytest.param(
            "application/json",
            b'{"n": 1' + b"0" * 5000 + b"}",
            "invalid_request",
            "not a JSON object",
            id="huge-integer",
        ),
        pytest.param(
            "application/json; charset=utf-8",
            b'{"model": "kling-v2-6"}',
            "invalid_request",
            "multi_prompt",
            id="charset-param-ok",
        ),
    ],
)
def test_malformed_bodies_get_400_naming_the_problem(
    content_type: str | None, body: bytes, code: str, detail: str, service: Service
) -> None:
    headers = list(AUTH) + ([("content-type", content_type)] if content_type else [])
    response = service.handle(ApiRequest.build("POST", "http://127.0.0.1" + CREATE, headers, body))
    error = conforms(response, "create")["error"]
    assert (response.status, error["code"]) == (400, code)
    assert detail in error["message"]


def test_bodies_over_the_limit_get_413(service: Service) -> None:
    body = b"{" + b" " * service.max_body_bytes + b"}"
    headers = [*AUTH, ("content-type", "application/json")]
    for request in (
        ApiRequest.build("POST", "http://127.0.0.1" + CREATE, headers, body),
        ApiRequest.build("POST", "http://127.0.0.1" + CREATE, headers, b"", oversize=True),
    ):
        response = service.handle(request)
        assert (response.status, response.payload["error"]["code"]) == (413, "request_body_too_large")


def test_unknown_task_is_task_not_exist_on_task_id(poll: Callable[[str], Any]) -> None:
    response = poll("task_" + "0" * 32)
    error = conforms(response, "get")["error"]
    assert (response.status, error["code"], error["param"]) == (400, "task_not_exist", "task_id")


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        pytest.param("GET", "/v1/images/generations", 404, None, id="unknown-route"),
        pytest.param("DELETE", CREATE, 405, "POST", id="delete-create"),
        pytest.param("PATCH", CREATE + "/task_x", 405, "GET, HEAD", id="patch-task"),
        pytest.param("BREW", "/__media__/x.mp4", 405, "GET, HEAD", id="made-up-method"),
    ],
)
def test_unknown_routes_and_methods_get_the_error_object(
    method: str, path: str, status: int, allow: str | None, service: Service
) -> None:
    response = service.handle_simple(method, path, None, AUTH)
    assert response.status == status
    assert response.header("allow") == allow
    CONTRACT.error_validator().validate(response.payload)


def test_rate_limit_fault_answers_429_with_retry_after_then_lets_calls_through(
    service: Service, create: Callable[..., Any]
) -> None:
    service.engine.arm_fault(
        FaultPlan(operation="video_generations.create", error="rate_limited", times=2, retry_after=5)
    )
    answers = [create(t2v()) for _ in range(3)]
    assert [a.status for a in answers] == [429, 429, 200]
    assert [a.header("retry-after") for a in answers[:2]] == ["5", "5"]
    assert conforms(answers[0], "create")["error"]["code"] == "rate_limit_exceeded"
    assert [e.fault for e in service.engine.journal.entries()] == ["rate_limited", "rate_limited", None]


def test_a_fault_can_skip_calls_500_on_the_third_poll(
    service: Service, create: Callable[..., Any], poll: Callable[[str], Any]
) -> None:
    service.engine.set_progression(Progression.manual())
    task_id = create(t2v()).payload["task_id"]
    service.engine.arm_fault(FaultPlan(operation="video_generations.get", error="fail_to_fetch_task", skip=2))
    assert [poll(task_id).status for _ in range(4)] == [200, 200, 500, 200]


@pytest.mark.parametrize("error", ["upstream_error", "upstream_unavailable", "insufficient_user_quota"])
def test_catalogued_faults_render_their_catalogue_entry(
    error: str, service: Service, create: Callable[..., Any]
) -> None:
    service.engine.arm_fault(FaultPlan(operation="*", error=error))
    response = create(t2v())
    spec = CONTRACT.errors[error]
    assert (response.status, response.payload["error"]["code"]) == (spec.http_status, spec.code)


def test_latency_faults_delay_without_changing_the_answer(service: Service, create: Callable[..., Any]) -> None:
    service.engine.arm_fault(FaultPlan(operation="video_generations.create", latency=2.5))
    response = create(t2v())
    assert (response.status, response.delay) == (200, 2.5)


def test_probabilistic_faults_are_reproducible_with_a_seed(create: Callable[..., Any]) -> None:
    def run() -> list[int]:
        service = Service(Engine(clock=VirtualClock(), seed=3))
        service.engine.arm_fault(
            FaultPlan(operation="video_generations.create", error="rate_limited", times=None, probability=0.5, seed=42)
        )
        return [service.handle_simple("POST", CREATE, t2v(), AUTH).status for _ in range(40)]

    first = run()
    assert first == run()
    assert 5 < first.count(429) < 35


@pytest.mark.parametrize(
    "plan",
    [
        {"operation": "video_generations.delete", "error": "rate_limited"},
        {"operation": "*", "error": "teapot"},
    ],
)
def test_faults_naming_unknown_operations_or_errors_are_refused(plan: dict[str, Any], service: Service) -> None:
    with pytest.raises(ValueError, match="unknown"):
        service.engine.arm_fault(FaultPlan(**plan))


def test_unknown_fields_are_dropped_with_a_warning_or_refused_in_strict_mode(
    create: Callable[..., Any], service: Service
) -> None:
    response = create(t2v(negative_promt="blur", multi_prompt=[{"prompt": "x", "duration": 5, "camera": "pan"}]))
    assert response.status == 200
    warnings = service.engine.journal.entries()[-1].warnings
    assert [(w.rule, w.param) for w in warnings] == [
        ("unknown_field", "negative_promt"),
        ("unknown_field", "multi_prompt[0].camera"),
    ]
    strict = Service(Engine(clock=VirtualClock()), strict=True)
    refused = strict.handle_simple("POST", CREATE, t2v(negative_promt="blur"), AUTH)
    assert (refused.status, refused.payload["error"]["param"]) == (400, "negative_promt")
    assert refused.payload["error"]["message"].endswith("the real gateway drops it silently")


def test_the_journal_keeps_exchanges_without_secrets_or_image_payloads(
    service: Service, create: Callable[..., Any]
) -> None:
    image = i2v()["image"]
    create(i2v())
    entry = service.engine.journal.entries()[-1].to_json()
    text = repr(entry)
    assert "sk-test" not in text
    assert image not in text
    assert entry["request"]["body"]["image"].startswith(f"<{len(image)} chars sha256:")
    assert entry["operation"] == "video_generations.create"
    assert entry["response"]["status"] == 200


def test_the_journal_is_bounded_and_counts_what_it_dropped() -> None:
    service = Service(Engine(clock=VirtualClock(), journal_limit=3))
    for _ in range(5):
        service.handle_simple("GET", CREATE + "/task_x", None, AUTH)
    journal = service.engine.journal
    assert (len(journal), journal.dropped) == (3, 2)
    assert [e.seq for e in journal.entries()] == [3, 4, 5]


def test_openapi_json_is_served(service: Service) -> None:
    response = service.handle_simple("GET", "/openapi.json")
    assert (response.status, response.header("content-type")) == (200, "application/json")
    assert b'"openapi":"3.1.0"' in response.body
