"""The gateway's OpenAI-compatible route (/v1/videos): the form as the OpenAI SDK sends it,
its mapping onto kling-v2-6, every refusal naming its field, bad multipart as the error object,
the video object, list and content, and its coexistence with Kling's own /v1/videos/* paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sample_payloads import b64, image_bytes

from mockserver import ApiRequest, ApiResponse, Engine, Service, VirtualClock, create_app, load_contract
from mockserver.contract import ContractError, contracts_root

CONTRACT = load_contract("openai")
AUTH = [("authorization", "Bearer sk-test")]
FRAME = image_bytes(640, 360)
VIDEO = CONTRACT.response_validator("responses/video.schema.json")
ERROR = CONTRACT.error_validator()


@pytest.fixture
def service() -> Service:
    return Service(Engine(clock=VirtualClock(), seed=4))


class _AlwaysMultipart(dict[str, Any]):
    """Files that make httpx encode a form as multipart even when it holds none (the OpenAI
    SDK sends every create as multipart the same way)."""

    def __bool__(self) -> bool:
        return True


def _form(data: dict[str, Any], files: dict[str, Any] | None = None) -> tuple[bytes, str]:
    """A multipart body as httpx (and the OpenAI SDK's httpx2) encodes it."""
    request = httpx.Request("POST", "https://x/", data=data, files=_AlwaysMultipart(files or {}))
    return request.read(), request.headers["content-type"]


def _send(
    service: Service, method: str, path: str, *, body: bytes = b"", content_type: str | None = None
) -> ApiResponse:
    headers = [*AUTH, *([("content-type", content_type)] if content_type else [])]
    return service.handle(ApiRequest.build(method, "https://api.modelstream.ai" + path, headers, body))


def _create(service: Service, data: dict[str, Any], files: dict[str, Any] | None = None) -> ApiResponse:
    body, content_type = _form(data, files)
    return _send(service, "POST", "/v1/videos", body=body, content_type=content_type)


def _json(response: ApiResponse) -> Any:
    return json.loads(response.body)


def _refused(response: ApiResponse) -> tuple[int, str | None, str]:
    body = _json(response)
    ERROR.validate(body)
    return response.status, body["error"]["param"], body["error"]["message"]


FORM = {"prompt": "a red fox in snow", "model": "kling-v2-6"}


# -- the happy paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "row"), [(k, v) for k, v in CONTRACT.index["sizes"].items() if "x" in k])
@pytest.mark.parametrize("seconds", ["5", "10"])
def test_every_size_and_seconds_of_the_table_renders_that_frame_and_duration(
    service: Service, size: str, row: dict[str, Any], seconds: str
) -> None:
    created = _create(service, {**FORM, "seconds": seconds, "size": size})
    assert created.status == 200, created.body
    video = _json(created)
    VIDEO.validate(video)
    assert (video["object"], video["status"], video["seconds"], video["size"]) == ("video", "queued", seconds, size)
    task = service.engine.task(video["id"])
    assert (task.video.duration, [task.video.width, task.video.height]) == (int(seconds), row["frame"])
    assert task.face == "openai"
    assert task.id.startswith("task_")


def test_a_json_body_and_defaults_follow_the_contract(service: Service) -> None:
    created = service.handle_simple("POST", "/v1/videos", json=FORM, headers=AUTH)
    video = _json(created)
    fields = CONTRACT.index["request"]["fields"]
    assert (video["seconds"], video["size"]) == (fields["seconds"]["default"], fields["size"]["default"])
    assert video["prompt"] == FORM["prompt"]


def test_an_uploaded_frame_makes_it_image_to_video_at_the_requested_size(service: Service) -> None:
    created = _create(service, {**FORM, "size": "1280x720"}, {"input_reference": ("f.png", FRAME, "image/png")})
    assert created.status == 200, created.body
    task = service.engine.task(_json(created)["id"])
    assert (task.kind, task.video.width, task.video.height) == ("image2video", 1280, 720)


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param(b64(FRAME), id="base64"),
        pytest.param("data:image/png;base64," + b64(FRAME), id="data-url"),
        pytest.param({"image_url": "data:image/png;base64," + b64(FRAME)}, id="image-url-object"),
        pytest.param("https://example.org/frame.png", id="url"),
    ],
)
def test_json_input_references_are_accepted_in_every_spelling(service: Service, reference: Any) -> None:
    created = service.handle_simple("POST", "/v1/videos", json={**FORM, "input_reference": reference}, headers=AUTH)
    assert created.status == 200, created.body
    assert service.engine.task(_json(created)["id"]).kind == "image2video"


def test_a_url_reference_is_not_fetched_and_says_so(service: Service) -> None:
    service.handle_simple("POST", "/v1/videos", json={**FORM, "input_reference": "https://e.org/a.png"}, headers=AUTH)
    [entry] = service.engine.journal.entries()
    assert [(w.rule, w.param) for w in entry.warnings] == [("image.not_fetched", "input_reference")]


def test_kling_fields_the_form_has_no_name_pass_through_with_numbers_read_as_numbers(service: Service) -> None:
    created = _create(service, {**FORM, "size": "1920x1080", "sound": "on", "cfg_scale": "0.7", "negative_prompt": "1"})
    assert created.status == 200, created.body
    task = service.engine.task(_json(created)["id"])
    assert task.video.audio
    assert (task.request["cfg_scale"], task.request["negative_prompt"]) == (0.7, "1")
    assert _refused(_create(service, {**FORM, "cfg_scale": "high"}))[:2] == (400, "cfg_scale")


@pytest.mark.parametrize("digits", ["9" * 30, "-" + "9" * 30, "1" + "0" * 400])
def test_a_number_past_64_bits_is_refused_by_its_field_not_a_server_error(service: Service, digits: str) -> None:
    # read as a JSON body's parser reads the same digits (a float, or the text past float range)
    assert _refused(_create(service, {**FORM, "cfg_scale": digits}))[:2] == (400, "cfg_scale")
    assert service.engine.journal.entries()[-1].request_body["cfg_scale"] in (1e30, -1e30, "1" + "0" * 400)


def test_an_unknown_field_is_dropped_with_a_warning_or_refused_in_strict_mode(service: Service) -> None:
    assert _create(service, {**FORM, "style": "noir"}).status == 200
    assert [(w.rule, w.param) for _, w in service.engine.journal.warnings()] == [("unknown_field", "style")]
    strict = Service(Engine(clock=VirtualClock()), strict=True)
    assert _refused(_create(strict, {**FORM, "style": "noir"}))[:2] == (400, "style")


# -- refusals name their field -----------------------------------------------------------------

TINY = image_bytes(100, 100)


@pytest.mark.parametrize(
    ("data", "files", "status", "param", "rule"),
    [
        pytest.param({"model": "kling-v2-6"}, None, 400, "prompt", "schema:required", id="no-prompt"),
        pytest.param(
            {**FORM, "prompt": ""}, None, 400, "prompt", "schema:properties/prompt/minLength", id="empty-prompt"
        ),
        pytest.param(
            {**FORM, "prompt": "x" * 2501}, None, 400, "prompt", "schema:properties/prompt/maxLength", id="long-prompt"
        ),
        pytest.param({"prompt": "a fox"}, None, 400, "model", "schema:required", id="no-model"),
        pytest.param({**FORM, "model": "sora-2"}, None, 503, "model", "model.known", id="unknown-model"),
        pytest.param(
            {**FORM, "seconds": "4"}, None, 400, "seconds", "schema:properties/seconds/enum", id="openai-seconds"
        ),
        pytest.param({**FORM, "size": "1792x1024"}, None, 400, "size", "schema:properties/size/enum", id="openai-size"),
        pytest.param({**FORM, "sound": "on"}, None, 400, "sound", "sound.requires_pro", id="sound-needs-pro"),
        pytest.param(
            FORM,
            {"input_reference": ("a.png", b"not an image", "image/png")},
            400,
            "input_reference",
            "image.format",
            id="not-an-image",
        ),
        pytest.param(
            FORM,
            {"input_reference": ("a.png", TINY, "image/png")},
            400,
            "input_reference",
            "image.min_side",
            id="too-small",
        ),
        pytest.param(
            FORM,
            {"input_reference": ("a.webp", FRAME, "image/webp")},
            400,
            "input_reference",
            "input_reference.content_type",
            id="declared-webp",
        ),
        pytest.param(
            {"model": "kling-v2-6"},
            {"prompt": ("p.txt", b"a fox", "text/plain")},
            400,
            "prompt",
            "body.multipart",
            id="file-as-prompt",
        ),
    ],
)
def test_every_refusal_names_its_field_and_rule(
    service: Service, data: dict[str, Any], files: Any, status: int, param: str, rule: str
) -> None:
    response = _create(service, data, files)
    got_status, got_param, message = _refused(response)
    assert (got_status, got_param) == (status, param), message
    [entry] = service.engine.journal.entries()
    assert (entry.rule, entry.param, entry.face) == (rule, param, "openai")


def test_the_sound_refusal_says_which_sizes_give_pro(service: Service) -> None:
    message = _refused(_create(service, {**FORM, "sound": "on"}))[2]
    assert "size picks the mode" in message
    assert "pro: 1920x1080, 1080x1920, 1080x1080" in message


#: the object branch of input_reference's schema (``{"image_url": ...}``)
REFERENCE_OBJECT = "schema:properties/input_reference/anyOf/1"


@pytest.mark.parametrize(
    ("reference", "param", "rule"),
    [
        pytest.param({"file_id": "file_1"}, "input_reference.file_id", "input_reference.file_id", id="file-id"),
        pytest.param("data:image/gif;base64,R0lGOD", "input_reference", "image.format", id="gif-data-url"),
        pytest.param(7, "input_reference", "schema:properties/input_reference/anyOf", id="number"),
        # an error inside one anyOf branch names the whole path to it, not just "1/minProperties"
        pytest.param({}, "input_reference", f"{REFERENCE_OBJECT}/minProperties", id="empty-object"),
        pytest.param(
            {"image_url": "https://example.com/a.png", "file_id": "f"},
            "input_reference",
            f"{REFERENCE_OBJECT}/maxProperties",
            id="both-members",
        ),
        pytest.param({"url": "x"}, "input_reference", f"{REFERENCE_OBJECT}/additionalProperties", id="other-member"),
    ],
)
def test_bad_json_references_name_input_reference(service: Service, reference: Any, param: str, rule: str) -> None:
    response = service.handle_simple("POST", "/v1/videos", json={**FORM, "input_reference": reference}, headers=AUTH)
    assert _refused(response)[:2] == (400, param)
    assert service.engine.journal.entries()[0].rule == rule


def test_a_field_sent_twice_is_refused_naming_it(service: Service) -> None:
    body, content_type = _form({**FORM, "seconds": ["5", "10"]})
    assert _refused(_send(service, "POST", "/v1/videos", body=body, content_type=content_type))[:2] == (400, "seconds")


# -- bad multipart: the error object, never a 500 ----------------------------------------------


def test_bad_multipart_bodies_get_the_error_object(service: Service) -> None:
    body, content_type = _form(FORM, {"input_reference": ("f.png", FRAME, "image/png")})
    limits = CONTRACT.index["limits"]["multipart"]
    huge, huge_type = _form(FORM, {"input_reference": ("f.png", b"\0" * (limits["max_file_bytes"] + 1), "image/png")})
    many, many_type = _form({**FORM, **{f"x{i}": "1" for i in range(limits["max_parts"])}})
    latin = _form({**FORM, "prompt": "PLACEHOLDER"})
    cases = {
        "no boundary": (body, "multipart/form-data", 400, None, "body.multipart"),
        "truncated": (body[: len(body) // 2], content_type, 400, None, "body.multipart"),
        "not multipart at all": (b"garbage", content_type, 400, None, "body.multipart"),
        "huge file part": (huge, huge_type, 413, "input_reference", "body.multipart_part_size"),
        "huge text part": (
            *_form({**FORM, "prompt": "x" * (limits["max_field_bytes"] + 1)}),
            413,
            "prompt",
            "body.multipart_part_size",
        ),
        "too many parts": (many, many_type, 400, None, "body.multipart_parts"),
        "wrong content type": (b"prompt=a", "application/x-www-form-urlencoded", 400, None, "body.content_type"),
        "non-UTF-8 field": (latin[0].replace(b"PLACEHOLDER", b"\xff\xfe"), latin[1], 400, "prompt", "body.multipart"),
    }
    for name, (raw, kind, status, param, rule) in cases.items():
        service.engine.reset()
        response = _send(service, "POST", "/v1/videos", body=raw, content_type=kind)
        assert response.status == status, (name, response.body)
        assert _refused(response)[:2] == (status, param), name
        assert service.engine.journal.entries()[0].rule == rule, name


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_no_mangled_form_gets_a_server_error(data: st.DataObject) -> None:
    service = Service(Engine(clock=VirtualClock()))
    body, content_type = _form({**FORM, "seconds": "10"}, {"input_reference": ("f.png", FRAME, "image/png")})
    cut = data.draw(st.integers(0, len(body)), label="cut")
    at = data.draw(st.integers(0, cut), label="at")
    noise = data.draw(st.binary(max_size=48), label="noise")
    kind = data.draw(
        st.sampled_from(
            [content_type, content_type + "x", "multipart/form-data; boundary=", 'multipart/form-data; boundary=""']
        )
    )
    response = _send(service, "POST", "/v1/videos", body=body[:at] + noise + body[at:cut], content_type=kind)
    assert response.status < 500, response.body
    if response.status != 200:
        ERROR.validate(_json(response))


def test_a_body_over_the_limit_gets_413_through_the_server_door() -> None:
    app = create_app(Service(Engine(clock=VirtualClock())))

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://api.modelstream.ai"
        ) as c:
            files = {"input_reference": ("f.png", b"\0" * (CONTRACT.max_body_bytes + 1), "image/png")}
            return await c.post("/v1/videos", data=FORM, files=files, headers=dict(AUTH))

    import asyncio

    response = asyncio.run(post())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == CONTRACT.errors["body_too_large"].code


# -- reading: retrieve, list, content ----------------------------------------------------------


def _done(service: Service, **form: Any) -> str:
    video_id: str = _json(_create(service, {**FORM, **form}))["id"]
    for _ in range(2):
        _send(service, "GET", f"/v1/videos/{video_id}")
    return video_id


def test_retrieve_hints_the_poll_interval_until_the_video_ends(service: Service) -> None:
    video_id = _json(_create(service, FORM))["id"]
    first = _send(service, "GET", f"/v1/videos/{video_id}")
    second = _send(service, "GET", f"/v1/videos/{video_id}")
    hint = CONTRACT.index["video"]
    assert first.header(hint["poll_header"]) == str(hint["poll_after_ms"])
    assert second.header(hint["poll_header"]) is None
    done = _json(second)
    VIDEO.validate(done)
    assert (done["status"], done["progress"]) == ("completed", 100)
    assert done["expires_at"] == done["completed_at"] + CONTRACT.media_ttl


def test_a_failed_video_carries_the_reason_in_error(service: Service) -> None:
    service.engine.set_outcome(__import__("mockserver").Outcome.fail("content_policy"))
    video_id = _done(service)
    video = _json(_send(service, "GET", f"/v1/videos/{video_id}"))
    VIDEO.validate(video)
    assert video["status"] == "failed"
    assert video["error"] == {"code": "content_policy_violation", "message": "Failure to pass the risk control system"}
    assert _refused(_send(service, "GET", f"/v1/videos/{video_id}/content"))[:2] == (400, "task_id")


def test_content_serves_the_mp4_with_head_and_ranges_and_refuses_other_variants(service: Service) -> None:
    video_id = _json(_create(service, FORM))["id"]
    early = _send(service, "GET", f"/v1/videos/{video_id}/content")
    assert _refused(early)[:2] == (400, "task_id")
    assert "queued" in _refused(early)[2]
    for _ in range(2):
        _send(service, "GET", f"/v1/videos/{video_id}")
    full = _send(service, "GET", f"/v1/videos/{video_id}/content")
    assert (full.status, full.header("content-type"), full.body[4:8]) == (200, "video/mp4", b"ftyp")
    assert _send(service, "GET", f"/v1/videos/{video_id}/content?variant=video").body == full.body
    head = _send(service, "HEAD", f"/v1/videos/{video_id}/content")
    assert (head.status, head.body, head.header("content-length")) == (200, b"", str(len(full.body)))
    part = service.handle(
        ApiRequest.build(
            "GET", f"https://api.modelstream.ai/v1/videos/{video_id}/content", [*AUTH, ("range", "bytes=0-9")]
        )
    )
    assert (part.status, part.body) == (206, full.body[:10])
    assert _refused(_send(service, "GET", f"/v1/videos/{video_id}/content?variant=thumbnail"))[:2] == (400, "variant")
    service.engine.advance_clock(CONTRACT.media_ttl + 1)
    expired = _send(service, "GET", f"/v1/videos/{video_id}/content")
    assert (expired.status, _json(expired)["error"]["code"]) == (404, "video_expired")


def test_the_list_is_a_cursor_page_newest_first(service: Service) -> None:
    ids = [_json(_create(service, FORM))["id"] for _ in range(3)]
    page = _json(_send(service, "GET", "/v1/videos?limit=2"))
    CONTRACT.response_validator("responses/video_list.schema.json").validate(page)
    assert [v["id"] for v in page["data"]] == ids[::-1][:2]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[2], ids[1], True)
    rest = _json(_send(service, "GET", f"/v1/videos?limit=2&after={ids[1]}"))
    assert ([v["id"] for v in rest["data"]], rest["has_more"]) == ([ids[0]], False)
    oldest = _json(_send(service, "GET", "/v1/videos?order=asc&limit=1"))
    assert oldest["data"][0]["id"] == ids[0]
    assert _refused(_send(service, "GET", "/v1/videos?after=task_nope"))[:2] == (400, "after")
    assert _refused(_send(service, "GET", "/v1/videos?limit=0"))[:2] == (400, "limit")
    assert _json(_send(service, "GET", "/v1/videos?limit=1"))["data"][0]["status"] == "queued"  # a list is no poll


def test_delete_is_not_served_and_says_what_is(service: Service) -> None:
    video_id = _done(service)
    response = _send(service, "DELETE", f"/v1/videos/{video_id}")
    assert response.status == 405
    assert response.header("allow") == "GET, HEAD"
    ERROR.validate(_json(response))


def test_an_unknown_video_is_new_apis_task_not_exist(service: Service) -> None:
    status, param, _ = _refused(_send(service, "GET", "/v1/videos/task_missing"))
    assert (status, param) == (400, "task_id")


# -- one gateway: keys and tasks shared with the gateway face; paths shared with Kling's own -----


def test_the_gateways_keys_and_tasks_are_this_routes(service: Service) -> None:
    created = service.handle_simple(
        "POST",
        "/v1/video/generations",
        json={
            "model": "kling-v2-6",
            "multi_prompt": [{"prompt": "a fox", "duration": 10}],
            "duration": 10,
            "size": "720P",
        },
        headers=AUTH,
    )
    video = _json(_send(service, "GET", f"/v1/videos/{_json(created)['task_id']}"))
    assert (video["seconds"], video["size"], video["status"]) == ("10", "1280x720", "in_progress")
    keyed = Service(Engine(clock=VirtualClock()), keys=["sk-mine"])
    assert keyed.handle_simple("GET", "/v1/videos", headers=[("authorization", "Bearer sk-mine")]).status == 200
    assert keyed.handle_simple("GET", "/v1/videos", headers=AUTH).status == 401


def test_kling_paths_under_v1_videos_still_reach_the_official_face(service: Service) -> None:
    assert service.match("GET", "/v1/videos/text2video/123")[0].name == "official"  # type: ignore[index]
    assert service.match("GET", "/v1/videos/text2video")[0].name == "official"  # type: ignore[index]
    assert service.match("POST", "/v1/videos/image2video")[0].name == "official"  # type: ignore[index]
    face, op, params = service.match("GET", "/v1/videos/task_abc")  # type: ignore[misc]
    assert (face.name, op.id, params) == ("openai", "videos.get", {"task_id": "task_abc"})
    assert service.match("GET", "/v1/videos/task_abc/content")[1].id == "videos.content"  # type: ignore[index]
    assert service.match("POST", "/v1/videos")[1].id == "videos.create"  # type: ignore[index]
    # an official task id on Kling's path answers in Kling's envelope, not OpenAI's
    answer = _json(_send(service, "GET", "/v1/videos/text2video/123456789012345678"))
    assert "code" in answer
    assert "error" not in answer


# -- the contract's tables are checked against the model they map onto --------------------------


def test_a_size_row_that_is_not_kling_v2_6s_frame_is_a_contract_error(tmp_path: Path) -> None:
    root = tmp_path / "contracts"
    shutil.copytree(contracts_root(), root)
    index_path = root / "openai" / "index.json"
    index = json.loads(index_path.read_text())
    index["sizes"]["1280x720"]["frame"] = [1280, 704]
    index_path.write_text(json.dumps(index))
    with pytest.raises(ContractError, match=r"size '1280x720'"):
        load_contract("openai", root)


def test_a_seconds_row_kling_v2_6_refuses_is_a_contract_error(tmp_path: Path) -> None:
    root = tmp_path / "contracts"
    shutil.copytree(contracts_root(), root)
    index_path = root / "openai" / "index.json"
    index = json.loads(index_path.read_text())
    index["seconds"]["4"] = {"duration": "4", "source": "decision"}
    index_path.write_text(json.dumps(index))
    with pytest.raises(ContractError, match=r"seconds '4'"):
        load_contract("openai", root)


SOURCE_LABELS = ("OpenAI reference", "new-api", "official API docs", "api-brief", "decision", "RFC 9110", "Kling")


def _sources(node: Any, where: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("source", "$source") and isinstance(value, str):
                found.append((where, value))
            else:
                found.extend(_sources(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_sources(value, f"{where}/{i}"))
    return found


@pytest.mark.parametrize("name", ["index.json", "errors.json"])
def test_every_choice_of_the_contract_names_its_source(name: str) -> None:
    data = json.loads((CONTRACT.root / "openai" / name).read_text())
    sources = _sources(data)
    assert sources
    for where, value in sources:
        assert value.startswith(SOURCE_LABELS), f"{name}{where}: {value!r}"
    index = CONTRACT.index
    tables = [index["request"]["fields"], index["sizes"], index["seconds"]]
    rows = [row for table in tables for key, row in table.items() if not key.startswith("$") and key != "decisions"]
    assert all("source" in row for row in rows)
