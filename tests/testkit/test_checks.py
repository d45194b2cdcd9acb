"""The contract checks: clean traffic passes, every seeded defect is named by rule and path."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import jwt
import pytest

from kling_testkit.checks import (
    CHECKS,
    CheckContext,
    CheckRegistry,
    assert_conforms,
    check_exchange,
    check_exchanges,
)
from kling_testkit.failures import ContractViolation, Report, Severity
from kling_testkit.recording import Exchange, read_recording
from mockserver import ApiRequest, Engine, Outcome, Service, VirtualClock, load_contract

RECORDINGS = Path(__file__).resolve().parents[2] / "fixtures" / "recordings"
BASE = "https://api.modelstream.ai"
AUTH = (("authorization", "Bearer sk-test"),)
T2V = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox in snow", "duration": 5}]}


# -- recordings --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["clean.jsonl", "clean.har"])
def test_clean_recordings_pass_every_check(name: str) -> None:
    assert check_exchanges(read_recording(RECORDINGS / name)) == []


DEFECTS = [
    pytest.param("defect_wrong_enum", "schema:properties/status/enum", "$.status", 2, id="wrong-enum"),
    pytest.param("defect_missing_field", "schema:required", "$.task_id", 1, id="missing-field"),
    pytest.param(
        "defect_url_before_completion", "lifecycle.url_when_completed", "$.url", 2, id="url-before-completion"
    ),
    pytest.param("defect_status_backwards", "lifecycle.monotone", "$.status", 7, id="status-backwards"),
    pytest.param("defect_retry_after_too_fast", "client.retry_after", "$", 9, id="poll-faster-than-retry-after"),
    pytest.param("defect_unknown_field", "unknown_field", "$.negative_promt", 1, id="unknown-field"),
]


@pytest.mark.parametrize("ext", ["jsonl", "har"])
@pytest.mark.parametrize(("stem", "rule", "path", "line"), DEFECTS)
def test_each_seeded_defect_is_reported_with_its_rule_and_path(
    stem: str, rule: str, path: str, line: int, ext: str
) -> None:
    found = check_exchanges(read_recording(RECORDINGS / f"{stem}.{ext}"))
    assert (rule, path) in {(v.rule, v.json_path) for v in found}
    where = f"{stem}.jsonl:{line}" if ext == "jsonl" else f"{stem}.har#entry{line}"
    assert {v.where for v in found} == {where}, "only the seeded exchange is blamed"


# -- single checks on exchanges from the fake ----------------------------------------------------


def _fake_timeline() -> list[Exchange]:
    """create -> in_progress -> completed, as exchanges from the journal of a real fake."""
    service = Service(Engine(clock=VirtualClock(), seed=3))
    created = service.handle_simple("POST", "/v1/video/generations", json=T2V, headers=AUTH, base_url=BASE)
    for _ in range(2):
        service.engine.advance_clock(2)
        service.handle_simple("GET", f"/v1/video/generations/{created.payload['task_id']}", headers=AUTH, base_url=BASE)
    return [Exchange.from_journal_entry(e) for e in service.engine.journal.entries()]


def _edit(index: int, change: Callable[[dict[str, Any]], None]) -> list[Exchange]:
    records = [e.to_record() for e in _fake_timeline()]
    change(records[index])
    return [Exchange.from_record(r, source=f"line {i + 1}") for i, r in enumerate(records)]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = record
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _error_answer(status: int, body: Any) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        record["response"]["status"] = status
        record["response"]["body"] = body

    return change


TABLE = [
    pytest.param(1, _set("response.status", 418), "status.documented", "$", id="undocumented-status"),
    pytest.param(1, _set("response.body.task_id", "task_" + "B" * 32), "ids.stable", "$.task_id", id="other-task"),
    pytest.param(0, _set("response.body.id", "task_" + "C" * 32), "ids.stable", "$.id", id="id-differs"),
    pytest.param(2, _set("response.body.created_at", 1), "timestamps.created_at_stable", "$.created_at", id="created"),
    pytest.param(2, _set("response.body.updated_at", 0), "timestamps.non_decreasing", "$.updated_at", id="updated"),
    pytest.param(2, _set("response.body.url", None), "lifecycle.url_when_completed", "$.url", id="completed-no-url"),
    pytest.param(
        0,
        _set("request.body.multi_prompt", [{"prompt": "x", "duration": 7}]),
        "multi_prompt.durations_sum",
        "$.multi_prompt",
        id="request-breaks-named-rule",
    ),
    pytest.param(0, _set("request.body.mode", "turbo"), "schema:properties/mode/enum", "$.mode", id="request-enum"),
    pytest.param(0, _set("request.body", "{not json"), "request.json", "$", id="request-not-json"),
    pytest.param(
        1,
        _error_answer(400, {"error": {"message": "m", "type": "t", "param": None, "code": "x"}}),
        "error.catalogued",
        "$.error.code",
        id="error-code-not-catalogued",
    ),
    pytest.param(
        1,
        _error_answer(400, {"error": "boom"}),
        "schema:properties/error/type",
        "$.error",
        id="error-not-an-object",
    ),
]


@pytest.mark.parametrize(("index", "change", "rule", "path"), TABLE)
def test_a_single_defect_is_named_by_rule_and_path(
    index: int, change: Callable[[dict[str, Any]], None], rule: str, path: str
) -> None:
    assert check_exchanges(_fake_timeline()) == []
    found = check_exchanges(_edit(index, change))
    assert (rule, path) in {(v.rule, v.json_path) for v in found}, [str(v) for v in found]
    assert {v.where for v in found} == {f"line {index + 1}"}


def test_terminal_status_stays_final() -> None:
    exchanges = _fake_timeline()
    again = copy.deepcopy(exchanges[2].to_record())
    again["response"]["body"].update(status="in_progress", url=None, metadata=None, progress=50)
    found = check_exchanges([*exchanges, Exchange.from_record(again, source="again")])
    assert [(v.rule, v.check) for v in found if v.rule.startswith("lifecycle.")] == [
        ("lifecycle.terminal_final", "terminal_status_final")
    ]


def test_a_skipped_status_is_legal_but_a_failed_task_error_must_be_catalogued() -> None:
    service = Service(Engine(clock=VirtualClock(), seed=4))
    created = service.handle_simple("POST", "/v1/video/generations", json=T2V, headers=AUTH)
    service.engine.set_outcome(Outcome.fail("timeout"), task_id=created.payload["task_id"])
    service.engine.advance(created.payload["task_id"])
    service.engine.advance(created.payload["task_id"])
    service.handle_simple("GET", f"/v1/video/generations/{created.payload['task_id']}", headers=AUTH)
    exchanges = [Exchange.from_journal_entry(e) for e in service.engine.journal.entries()]
    assert exchanges[1].response_body["status"] == "failed"
    assert check_exchanges(exchanges) == []  # queued -> failed without a seen in_progress is fine
    record = copy.deepcopy(exchanges[1].to_record())
    record["response"]["body"]["error"]["code"] = "made_up"
    found = check_exchanges([exchanges[0], Exchange.from_record(record)])
    assert [v.rule for v in found] == ["error.task_failure_catalogued"]


def test_redacted_images_are_not_judged_but_redacted_text_keeps_its_length() -> None:
    image = "<61610 chars sha256:d78b3984>"
    shot: dict[str, Any] = {"prompt": "<3000 chars sha256:0badf00d>", "duration": 5}
    body = {"model": "kling-v2-6", "image": image, "multi_prompt": [shot]}
    exchange = Exchange("POST", f"{BASE}/v1/video/generations", 400, request_body=body)
    found = check_exchanges([exchange], checks=["request_conforms"])
    assert [(v.rule, v.json_path) for v in found] == [
        ("schema:properties/multi_prompt/items/properties/prompt/maxLength", "$.multi_prompt[0].prompt")
    ]
    shot["prompt"] = "a cat"
    assert check_exchanges([exchange], checks=["request_conforms", "no_unknown_request_fields"]) == []


def test_an_unknown_model_is_reported_with_the_models_that_were_expected() -> None:
    exchange = Exchange("POST", f"{BASE}/v1/video/generations", 503, request_body={**T2V, "model": "kling-v9"})
    (violation,) = check_exchanges([exchange], checks=["request_conforms"])
    assert (violation.rule, violation.json_path) == ("model.known", "$.model")
    assert violation.expected == "one of ['kling-v2-6']"
    assert violation.actual == "kling-v9"
    assert "model 'kling-v9' is not a model of the contract" in str(violation)


def test_every_unknown_field_is_named() -> None:
    body = {**T2V, "negative_promt": "x", "multi_prompt": [{"prompt": "a", "duration": 5, "weight": 2}]}
    exchange = Exchange("POST", f"{BASE}/v1/video/generations", 200, request_body=body)
    (violation,) = check_exchanges([exchange], checks=["no_unknown_request_fields"])
    assert violation.json_path == "$.multi_prompt[0].weight" or violation.json_path == "$.negative_promt"
    assert sorted(violation.actual) == ["multi_prompt[0].weight", "negative_promt"]
    assert violation.part == "request"


@pytest.mark.parametrize(
    ("waited", "violations"),
    [
        pytest.param(4.9, 1, id="too-early"),
        pytest.param(5.0, 0, id="exactly-retry-after"),
        pytest.param(30.0, 0, id="later"),
    ],
)
def test_retry_after_must_be_waited_out_for_the_same_operation(waited: float, violations: int) -> None:
    limited = Exchange(
        "POST",
        f"{BASE}/v1/video/generations",
        429,
        response_headers=(("retry-after", "5"),),
        response_body={
            "error": {"message": "m", "type": "new_api_error", "param": None, "code": "rate_limit_exceeded"}
        },
        timestamp=100.0,
    )
    other_op = Exchange("GET", f"{BASE}/v1/video/generations/task_1", 400, timestamp=100.5)
    retry = Exchange("POST", f"{BASE}/v1/video/generations", 400, timestamp=100.0 + waited)
    found = check_exchanges([limited, other_op, retry], checks=["retry_after_honoured"])
    assert len(found) == violations
    if found:
        assert (found[0].rule, found[0].part, found[0].actual) == ("client.retry_after", "timeline", "4.9 s")


def test_a_429_without_retry_after_is_a_warning() -> None:
    limited = Exchange(
        "POST",
        f"{BASE}/v1/video/generations",
        429,
        response_body={
            "error": {"message": "m", "type": "new_api_error", "param": None, "code": "rate_limit_exceeded"}
        },
    )
    (violation,) = check_exchanges([limited])
    assert (violation.rule, violation.severity) == ("rate_limit.retry_after_header", Severity.WARNING)
    report = Report("check", cases={"x::retry_after_sent": [violation]})
    assert report.exit_code() == 0
    report.strict = True
    assert report.exit_code() == 1


def test_paths_behind_a_proxy_prefix_still_match_their_operation() -> None:
    ctx = CheckContext()
    exchange = Exchange("GET", "https://proxy.example/kling/v1/video/generations/task_1", 200)
    op = ctx.operation_of(exchange)
    assert op is not None
    assert op.id == "video_generations.get"
    assert ctx.task_id_of(exchange) == "task_1"


def test_exchanges_outside_the_contract_are_skipped_and_counted() -> None:
    ctx = CheckContext()
    assert check_exchange(ctx, Exchange("GET", "http://127.0.0.1/__mock__/tasks", 200)) == []
    assert ctx.unmatched == 1


# -- assert_conforms -----------------------------------------------------------------------------


def _client(service: Service) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        answer = service.handle(
            ApiRequest.build(request.method, str(request.url), request.headers.multi_items(), request.content)
        )
        return httpx.Response(answer.status, headers=list(answer.headers), content=answer.body)

    return httpx.Client(transport=httpx.MockTransport(handler), base_url=BASE, headers=dict(AUTH))


def test_assert_conforms_passes_the_fakes_answers_through_a_whole_task() -> None:
    client = _client(Service(Engine(clock=VirtualClock())))
    ctx = CheckContext()
    created = client.post("/v1/video/generations", json=T2V)
    assert_conforms(created, "video_generations.create", context=ctx)
    for _ in range(2):
        assert_conforms(client.get(f"/v1/video/generations/{created.json()['task_id']}"), context=ctx)
    assert_conforms(client.post("/v1/video/generations", json={"model": "kling-v2-6"}), "video_generations.create")
    assert ctx.timelines[created.json()["task_id"]].statuses[-1][0] == "completed"


def test_assert_conforms_raises_an_assertion_error_that_names_rule_path_expected_and_actual() -> None:
    request = httpx.Request("GET", f"{BASE}/v1/video/generations/task_{'A' * 32}")
    body = {
        "task_id": f"task_{'A' * 32}",
        "status": "done",
        "url": None,
        "format": "mp4",
        "metadata": None,
        "error": None,
        "progress": 0,
        "created_at": 1,
        "updated_at": 1,
    }
    with pytest.raises(AssertionError) as caught:
        assert_conforms(httpx.Response(200, json=body, request=request), "video_generations.get")
    violation = caught.value
    assert isinstance(violation, ContractViolation)
    assert (violation.operation, violation.json_path, violation.rule) == (
        "video_generations.get",
        "$.status",
        "schema:properties/status/enum",
    )
    assert violation.actual == "done"
    assert violation.expected == ["queued", "in_progress", "completed", "failed"]
    assert str(violation).splitlines() == [
        "video_generations.get → 200: 'done' is not one of ['queued', 'in_progress', 'completed', 'failed']",
        "  at   response $.status",
        "  rule schema:properties/status/enum (check response_body_conforms)",
        '  expected ["queued", "in_progress", "completed", "failed"]',
        "  actual   done",
    ]


def test_assert_conforms_mentions_further_violations() -> None:
    request = httpx.Request("POST", f"{BASE}/v1/video/generations")
    with pytest.raises(ContractViolation, match=r"\(\+1 more: ids.stable at \$.id\)"):
        assert_conforms(httpx.Response(200, json={"id": "task_x", "task_id": "task_y"}, request=request))


# -- registry and reports --------------------------------------------------------------------------


def test_registry_names_are_unique_and_selectable_by_side() -> None:
    assert len(set(CHECKS.names())) == len(CHECKS) >= 12
    assert set(CHECKS.names(side="client")) == {
        "request_conforms",
        "request_not_refused",
        "no_unknown_request_fields",
        "poll_hint_honoured",
        "retry_after_honoured",
        "token_valid_when_sent",
        "within_concurrency_slots",
    }
    with pytest.raises(KeyError, match="no check named 'nope'"):
        CHECKS.select(["nope"])
    registry = CheckRegistry()

    @registry.register(side="client", severity=Severity.WARNING)
    def prompts_are_english(ctx: CheckContext, exchange: Exchange) -> None:
        """Demo check."""
        raise ContractViolation("demo.rule", "always", part="request")

    with pytest.raises(ValueError, match="already registered"):
        registry.register(name="prompts_are_english")(prompts_are_english)
    (violation,) = check_exchange(CheckContext(), Exchange("GET", "http://h/x", 200), registry.select())
    assert (violation.check, violation.severity) == ("prompts_are_english", Severity.WARNING)


def test_every_check_is_documented() -> None:
    for registered in CHECKS:
        assert registered.description, registered.name


def test_report_renders_junit_xml_and_json_that_ci_systems_read() -> None:
    found = check_exchanges(read_recording(RECORDINGS / "defect_status_backwards.jsonl"))
    report = Report("check", cases={"run.jsonl::status_transition_legal": found, "run.jsonl::ids_stable": []})
    root = ET.fromstring(report.to_junit_xml())
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failure = root.find(".//testcase[@name='status_transition_legal']/failure")
    assert failure is not None
    assert failure.get("type") == "lifecycle.monotone"
    data = json.loads(json.dumps(report.to_json()))
    assert data["exit_code"] == 1
    assert data["violations"][0]["json_path"] == "$.status"
    assert copy.deepcopy(data["cases"]["run.jsonl::ids_stable"]) == []


def test_contract_is_the_source_of_the_lifecycle_vocabulary() -> None:
    ctx = CheckContext()
    projection = load_contract().status_projection
    assert ctx.completed == projection["succeeded"]
    assert ctx.terminal == {projection["succeeded"], projection["failed"]}


# -- Kling's own API (the official face) -----------------------------------------------------------

OFFICIAL_RECORDINGS = RECORDINGS / "official"
OFFICIAL = "https://api-singapore.klingai.com"


@pytest.mark.parametrize("name", ["clean.jsonl", "clean.har"])
def test_official_clean_recordings_pass_every_check(name: str) -> None:
    exchanges = read_recording(OFFICIAL_RECORDINGS / name)
    ctx = CheckContext()
    found = [v for exchange in exchanges for v in check_exchange(ctx, exchange)]
    assert found == [], [str(v) for v in found]
    assert ctx.unmatched == 0  # every exchange found its face and operation, mounts included
    assert {ctx.route_of(e)[0].face for e in exchanges} == {"official"}  # type: ignore[index]


OFFICIAL_DEFECTS = [
    pytest.param(
        "defect_wrong_status",
        "schema:properties/data/properties/task_status/enum",
        "$.data.task_status",
        3,
        id="succeeded-not-succeed",
    ),
    pytest.param(
        "defect_task_id_number",
        "schema:properties/data/properties/task_id/type",
        "$.data.task_id",
        1,
        id="task-id-as-number",
    ),
    pytest.param("defect_error_without_code", "schema:required", "$.code", 10, id="error-without-code"),
    pytest.param("defect_error_with_data", "schema:properties/data/type", "$.data", 10, id="error-with-data"),
    pytest.param(
        "defect_url_before_completion",
        "lifecycle.url_when_completed",
        "$.data.task_result.videos[0].url",
        2,
        id="url-before-completion",
    ),
    pytest.param("defect_status_backwards", "lifecycle.monotone", "$.data.task_status", 7, id="status-backwards"),
    pytest.param("defect_timestamp_seconds", "timestamps.unit", "$.data.updated_at", 3, id="seconds-not-milliseconds"),
    pytest.param("defect_unknown_field", "unknown_field", "$.negative_promt", 1, id="unknown-field"),
    pytest.param("defect_expired_token", "client.token_expired", "$.authorization", 6, id="token-not-renewed"),
    pytest.param("defect_over_slots", "client.concurrency_slots", "$", 11, id="over-concurrency-slots"),
    pytest.param("defect_other_task", "ids.stable", "$.data.task_id", 2, id="answer-about-another-task"),
]


@pytest.mark.parametrize("ext", ["jsonl", "har"])
@pytest.mark.parametrize(("stem", "rule", "path", "line"), OFFICIAL_DEFECTS)
def test_each_seeded_official_defect_is_reported_with_its_rule_and_path(
    stem: str, rule: str, path: str, line: int, ext: str
) -> None:
    found = check_exchanges(read_recording(OFFICIAL_RECORDINGS / f"{stem}.{ext}"))
    assert (rule, path) in {(v.rule, v.json_path) for v in found}, [str(v) for v in found]
    where = f"{stem}.jsonl:{line}" if ext == "jsonl" else f"{stem}.har#entry{line}"
    assert {v.where for v in found} == {where}, "only the seeded exchange is blamed"
    assert {v.face for v in found} == {"official"}


def _official_timeline() -> list[Exchange]:
    """An official create -> processing -> succeed, polled by external id, from the fake's journal."""
    service = Service(Engine(clock=VirtualClock(), seed=3))
    now = int(service.engine.clock.now())
    token = jwt.encode({"iss": "ak-test", "exp": now + 1800, "nbf": now - 5}, "sk-test-secret-key-for-kling-testkit")
    auth = (("authorization", f"Bearer {token}"),)
    body = {"model_name": "kling-v2-6", "prompt": "a fox", "external_task_id": "mine"}
    service.handle_simple("POST", "/v1/videos/text2video", json=body, headers=auth, base_url=OFFICIAL)
    for _ in range(2):
        service.engine.advance_clock(2)
        service.handle_simple("GET", "/v1/videos/text2video/mine", headers=auth, base_url=OFFICIAL)
    return [Exchange.from_journal_entry(e) for e in service.engine.journal.entries()]


def _edit_official(index: int, change: Callable[[dict[str, Any]], None]) -> list[Exchange]:
    records = [e.to_record() for e in _official_timeline()]
    change(records[index])
    return [Exchange.from_record(r, source=f"line {i + 1}") for i, r in enumerate(records)]


OFFICIAL_TABLE = [
    pytest.param(1, _set("response.status", 418), "status.documented", "$", id="undocumented-status"),
    pytest.param(
        2, _set("response.body.data.created_at", 1), "timestamps.created_at_stable", "$.data.created_at", id="created"
    ),
    pytest.param(
        2,
        _set("response.body.data.task_result", {"videos": []}),
        "lifecycle.url_when_completed",
        "$.data.task_result.videos[0].url",
        id="succeed-no-url",
    ),
    pytest.param(
        2, _set("response.body.code", 1), "schema:properties/code/const", "$.code", id="success-with-error-code"
    ),
    pytest.param(
        2,
        _set("response.body.request_id", None),
        "schema:properties/request_id/type",
        "$.request_id",
        id="request-id-null",
    ),
    pytest.param(0, _set("request.body.sound", "on"), "sound.requires_pro", "$.sound", id="request-breaks-named-rule"),
    pytest.param(
        0, _set("request.body.duration", "7"), "schema:properties/duration/enum", "$.duration", id="request-enum"
    ),
    pytest.param(
        1,
        _error_answer(404, {"code": 1201, "message": "m", "request_id": "r", "data": None}),
        "error.catalogued",
        "$.code",
        id="code-not-catalogued-for-the-status",
    ),
    pytest.param(
        1,
        _error_answer(404, {"error": {"message": "m", "type": "t", "param": None, "code": "task_not_exist"}}),
        "schema:required",
        "$.code",
        id="gateway-error-on-the-official-face",
    ),
]


@pytest.mark.parametrize(("index", "change", "rule", "path"), OFFICIAL_TABLE)
def test_a_single_official_defect_is_named_by_rule_and_path(
    index: int, change: Callable[[dict[str, Any]], None], rule: str, path: str
) -> None:
    assert check_exchanges(_official_timeline()) == []
    found = check_exchanges(_edit_official(index, change))
    assert (rule, path) in {(v.rule, v.json_path) for v in found}, [str(v) for v in found]
    assert {v.where for v in found} == {f"line {index + 1}"}


def test_a_query_by_external_id_follows_the_task_it_names() -> None:
    exchanges = _official_timeline()
    ctx = CheckContext()
    for exchange in exchanges:
        check_exchange(ctx, exchange)
    task_id = exchanges[0].response_body["data"]["task_id"]
    assert ctx.task_id_of(exchanges[1]) == task_id  # asked for "mine", the answer names the task
    assert [s for s, _ in ctx.timelines[task_id].statuses] == ["submitted", "processing", "succeed"]


@pytest.mark.parametrize(
    ("url", "face", "operation"),
    [
        pytest.param(f"{OFFICIAL}/v1/videos/image2video/123", "official", "image2video.get", id="official-root"),
        pytest.param(
            "http://127.0.0.1:8000/kling/v1/videos/text2video/123", "official", "text2video.get", id="gateway-mount"
        ),
        pytest.param(
            "http://127.0.0.1:8000/proxy/kling/v1/videos/text2video", "official", "text2video.list", id="proxy-mount"
        ),
        pytest.param(f"{OFFICIAL}/__media__/official/123.mp4", "official", "media.get", id="official-media"),
        pytest.param(f"{BASE}/__media__/task_1.mp4", "gateway", "media.get", id="gateway-media"),
        pytest.param(f"{BASE}/v1/video/generations/task_1", "gateway", "video_generations.get", id="gateway"),
    ],
)
def test_each_exchange_finds_its_face_and_operation_by_url(url: str, face: str, operation: str) -> None:
    route = CheckContext().route_of(Exchange("GET", url, 200))
    assert route is not None
    assert (route[0].face, route[1].id) == (face, operation)


def test_a_recorded_face_is_trusted_over_the_url() -> None:
    ctx = CheckContext()
    assert ctx.route_of(Exchange("GET", f"{BASE}/v1/video/generations/task_1", 200, face="official")) is None
    assert ctx.route_of(Exchange("GET", f"{BASE}/v1/video/generations/task_1", 200, face="gateway")) is not None
    only_gateway = CheckContext(load_contract())
    assert only_gateway.route_of(Exchange("GET", f"{OFFICIAL}/v1/videos/text2video/1", 200)) is None


def test_retry_after_is_expected_only_where_the_catalogue_promises_one() -> None:
    official_429 = Exchange(
        "POST",
        f"{OFFICIAL}/v1/videos/text2video",
        429,
        response_body={"code": 1302, "message": "m", "request_id": "r", "data": None},
    )
    assert check_exchanges([official_429]) == []  # Kling sends no Retry-After
    gateway_429 = Exchange(
        "POST",
        f"{BASE}/v1/video/generations",
        429,
        response_body={
            "error": {"message": "m", "type": "new_api_error", "param": None, "code": "rate_limit_exceeded"}
        },
    )
    assert [v.rule for v in check_exchanges([gateway_429])] == ["rate_limit.retry_after_header"]


def test_timestamps_in_the_wrong_unit_are_named_on_every_face() -> None:
    records = [e.to_record() for e in _fake_timeline()]
    records[1]["response"]["body"]["updated_at"] *= 1000  # milliseconds where the gateway answers seconds
    found = check_exchanges([Exchange.from_record(r, source=f"line {i + 1}") for i, r in enumerate(records)])
    assert ("timestamps.unit", "$.updated_at", "line 2") in {(v.rule, v.json_path, v.where) for v in found}


def test_injected_faults_and_other_refusals_are_not_the_clients_token_or_slot_problem() -> None:
    expired = {"code": 1004, "message": "Authorization has expired", "request_id": "r", "data": None}
    url = f"{OFFICIAL}/v1/videos/text2video/1"
    checks = ["token_valid_when_sent", "within_concurrency_slots"]
    assert [v.rule for v in check_exchanges([Exchange("GET", url, 401, response_body=expired)], checks=checks)] == [
        "client.token_expired"
    ]
    assert check_exchanges([Exchange("GET", url, 401, response_body=expired, fault="x")], checks=checks) == []
    bad_signature = {**expired, "code": 1000}
    assert check_exchanges([Exchange("GET", url, 401, response_body=bad_signature)], checks=checks) == []
    not_yet = {**expired, "code": 1003}
    assert [v.rule for v in check_exchanges([Exchange("GET", url, 401, response_body=not_yet)], checks=checks)] == [
        "client.token_not_yet_valid"
    ]


def test_assert_conforms_takes_an_official_operation_and_face() -> None:
    exchanges = _official_timeline()
    ctx = CheckContext(faces=["official"])
    for exchange in exchanges:
        assert_conforms(exchange, context=ctx)
    body = copy.deepcopy(exchanges[2].response_body)
    body["data"]["task_status"] = "completed"  # the gateway's word on Kling's wire
    wrong = Exchange("GET", f"{OFFICIAL}/v1/videos/text2video/1", 200, response_body=body)
    with pytest.raises(ContractViolation) as caught:
        assert_conforms(wrong, "text2video.get", face="official")
    assert (caught.value.rule, caught.value.json_path, caught.value.face) == (
        "schema:properties/data/properties/task_status/enum",
        "$.data.task_status",
        "official",
    )
    with pytest.raises(KeyError, match="no operation 'nope'"):
        assert_conforms(wrong, "nope")


# -- the OpenAI-compatible route ---------------------------------------------------------------

OPENAI_FORM = [("model", "kling-v2-6"), ("prompt", "a fox in snow"), ("seconds", "10"), ("size", "1920x1080")]
OPENAI_HINT = load_contract("openai").poll_hint


def _openai_timeline() -> list[Exchange]:
    """A form create (as the OpenAI SDK sends it), then polls one hint apart until completed,
    then the content: exchanges from the journal of a real fake serving the route."""
    from kling_testkit._strategies.wire import encode_form

    assert OPENAI_HINT is not None
    service = Service(Engine(clock=VirtualClock(), seed=3), faces=["openai"])
    form = encode_form(OPENAI_FORM)
    headers = [*AUTH, ("content-type", form.content_type)]
    created = service.handle(ApiRequest.build("POST", BASE + "/v1/videos", headers, form.data))
    task_id = created.payload["id"]
    for _ in range(3):
        service.engine.advance_clock(max(OPENAI_HINT[1], 2))
        service.handle_simple("GET", f"/v1/videos/{task_id}", headers=AUTH, base_url=BASE)
    return [Exchange.from_journal_entry(e) for e in service.engine.journal.entries()]


def _openai_edit(index: int, change: Callable[[dict[str, Any]], None]) -> list[Exchange]:
    records = [e.to_record() for e in _openai_timeline()]
    change(records[index])
    return [Exchange.from_record(r, source=f"line {i + 1}") for i, r in enumerate(records)]


def test_a_recorded_openai_timeline_passes_every_check() -> None:
    exchanges = _openai_timeline()
    statuses = [e.response_body.get("status") for e in exchanges]
    assert statuses[0] == "queued"
    assert statuses[-1] == "completed"  # the hint while running, then none
    assert exchanges[0].request_body == dict(OPENAI_FORM)  # the form is recorded as its fields
    assert check_exchanges(Exchange.from_record(e.to_record()) for e in exchanges) == []


def _header(name: str, value: str | None) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        pairs = [(h["name"], h["value"]) if isinstance(h, dict) else tuple(h) for h in record["response"]["headers"]]
        headers = [[k, v] for k, v in pairs if k.lower() != name]
        record["response"]["headers"] = headers + ([[name, value]] if value is not None else [])

    return change


def _sooner(seconds: float) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        record["timestamp"] -= seconds

    return change


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        for one in changes:
            one(record)

    return change


assert OPENAI_HINT is not None
OPENAI_DEFECTS = [
    pytest.param(3, _header(OPENAI_HINT[0], "1000"), "lifecycle.poll_hint", "$", id="hint-after-completion"),
    pytest.param(1, _header(OPENAI_HINT[0], None), "lifecycle.poll_hint", "$", id="no-hint-while-running"),
    pytest.param(1, _header(OPENAI_HINT[0], "5"), "lifecycle.poll_hint", "$", id="hint-of-another-value"),
    pytest.param(2, _sooner(2 - OPENAI_HINT[1] / 2), "client.poll_hint", "$", id="polled-before-the-hint"),
    pytest.param(3, _set("response.body.seconds", 10), "schema:properties/seconds/type", "$.seconds", id="seconds-int"),
    pytest.param(3, _set("response.body.id", "task_" + "B" * 32), "ids.stable", "$.id", id="other-video"),
    pytest.param(0, _set("request.body.size", "1024x1792"), "schema:properties/size/enum", "$.size", id="openai-size"),
    # a form the route's own schema takes, breaking a rule of the kling-v2-6 request it maps onto
    pytest.param(
        0,
        _both(_set("request.body.sound", "on"), _set("request.body.size", "1280x720")),
        "sound.requires_pro",
        "$.sound",
        id="openai-mapped-rule",
    ),
]


@pytest.mark.parametrize(("index", "change", "rule", "path"), OPENAI_DEFECTS)
def test_each_defect_of_an_openai_recording_is_named(
    index: int, change: Callable[[dict[str, Any]], None], rule: str, path: str
) -> None:
    found = check_exchanges(_openai_edit(index, change))
    assert (rule, path) in {(v.rule, v.json_path) for v in found}, found
    assert {v.where for v in found} == {f"line {index + 1}"}, "only the edited exchange is blamed"
