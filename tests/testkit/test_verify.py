"""``verify`` against the fake as a live server, and against a deliberately broken server."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import time as now_seconds
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from kling_testkit import LiveServer
from kling_testkit.verify import Case, Verifier, build_cases, omitted_cases
from mockserver import Engine, Progression, Service, SystemClock, create_app, load_contract
from mockserver.faces import face_names
from mockserver.serve import bind
from mockserver.validation import Violation, validate_create


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """``app`` under uvicorn in a thread on 127.0.0.1:<free port>; yields the base URL."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.002)  # waits for start-up, not for the behaviour under test
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        sock.close()


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, Service]]:
    service = Service(Engine(clock=SystemClock(), seed=11))
    with serving(create_app(service)) as url:
        yield url, service


class FakeTime:
    """Injected time: sleeping moves a counter, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def _verifier(url: str, time: FakeTime, **options: Any) -> Verifier:
    return Verifier(url, "sk-test", sleep=time.sleep, monotonic=time.monotonic, **options)


def test_verify_passes_against_the_fake_as_a_live_server(fake: tuple[str, Service]) -> None:
    url, service = fake
    service.engine.reset()
    time = FakeTime()
    result = _verifier(url, time, poll_interval=5).run()
    report = result.report
    assert report.violations == [], report.render_text()
    assert report.skipped == {}
    assert report.exit_code() == 0
    assert result.requests_sent == len(result.exchanges) <= 50
    assert {t.status.value for t in service.engine.tasks()} == {"succeeded"}
    assert time.slept
    assert set(time.slept) == {5}


@pytest.mark.parametrize("budget", [1, 3, 33])
def test_the_request_budget_is_never_exceeded(fake: tuple[str, Service], budget: int) -> None:
    url, service = fake
    service.engine.reset()
    before = len(service.engine.journal)
    result = _verifier(url, FakeTime(), max_requests=budget, poll_interval=0).run()
    assert result.requests_sent == budget
    assert len(service.engine.journal) - before == budget  # what the server saw, not what we counted
    assert any("budget" in reason for reason in result.report.skipped.values())
    assert result.report.exit_code() == 0  # running out of budget is not a contract violation


def test_a_task_that_never_finishes_fails_at_the_timeout(fake: tuple[str, Service]) -> None:
    url, service = fake
    service.engine.reset()
    service.engine.set_progression(Progression.manual())
    try:
        cases = [c for c in build_cases() if c.name == "valid:text2video"]
        time = FakeTime()
        result = _verifier(url, time, cases=cases, poll_interval=10, timeout=30).run()
    finally:
        service.engine.set_progression(Progression())
    rules = [(name, v.rule) for name, found in result.report.cases.items() for v in found]
    assert rules == [("valid:text2video::follow", "verify.terminal_within_timeout")]
    assert sum(time.slept) == 30


def test_dry_run_sends_nothing() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"dry run sent {request.method} {request.url}")

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    verifier = Verifier("https://api.modelstream.ai", "sk-live", client=client)
    text = verifier.dry_run()
    assert "nothing is sent" in text
    assert "invalid:sound.requires_pro" in text
    assert "sk-live" not in text
    assert verifier.sent == 0


def test_every_named_rule_has_a_case_that_breaks_it_alone() -> None:
    contract = load_contract()
    model = contract.models["kling-v2-6"]
    cases = {c.name: c for c in build_cases(contract)}
    covered = {name.removeprefix("invalid:") for name in cases} | {
        name.removeprefix("invalid:") for name in omitted_cases(contract)
    }
    assert {r.id for r in model.rules} <= covered
    assert set(omitted_cases(contract)) == {"invalid:image.max_bytes", "invalid:image_tail.max_bytes"}
    for name, case in cases.items():
        if case.encoded is not None and case.body is None:
            continue  # no body to judge: test_each_unreadable_body_is_a_case_of_its_rule
        verdict = validate_create(contract, case.body) if case.method == "POST" and case.auth else None
        if case.expect is None:
            assert not isinstance(verdict, Violation), name
        elif name.startswith("invalid:"):
            assert isinstance(verdict, Violation)
            assert f"invalid:{verdict.rule}" == name
            assert contract.errors[verdict.error].http_status == case.expect.status


@pytest.mark.parametrize("face", face_names())
def test_each_unreadable_body_is_a_case_of_its_rule(face: str) -> None:
    # A body cut short, a JSON value that is no object, a content type the create does not
    # take: each a create case expecting its request rule's catalogued error, on every face.
    contract = load_contract(face)
    cases = {c.name: c for c in build_cases(contract)}
    for key in ("body_json", "body_object", "content_type"):
        rule = contract.request_rules[key]
        case = cases[f"invalid:{rule.id}"]
        assert case.encoded is not None
        assert case.body is None
        assert case.expect is not None
        assert (case.expect.rule, case.expect.error) == (rule.id, rule.error)
        assert case.expect.status == contract.errors[str(rule.error)].http_status
        assert case.operation is not None
        assert contract.operations[case.operation].verb == "task.create"
    json_body = cases["invalid:body.json"].encoded
    assert json_body is not None
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        json.loads(json_body.data)


# -- a deliberately broken server -------------------------------------------------------------------


def _broken_app() -> Starlette:
    """Spells a status wrong, omits task_id, and answers 500 to bad input."""
    task = "task_" + "Z" * 32

    async def create(request: Request) -> JSONResponse:
        body = await request.json()
        if request.headers.get("authorization") != "Bearer sk-test":
            return JSONResponse(
                {"error": {"message": "no key", "type": "new_api_error", "param": None, "code": "invalid_api_key"}},
                401,
            )
        if validate_create(load_contract(), body) is not None and isinstance(
            validate_create(load_contract(), body), Violation
        ):
            return JSONResponse({"detail": "Internal Server Error"}, 500)
        return JSONResponse(
            {"id": task, "object": "video", "model": "kling-v2-6", "status": "queued", "progress": 0, "created_at": 1}
        )

    async def get(request: Request) -> JSONResponse:
        if request.path_params["task_id"] != task:
            return JSONResponse(
                {"error": {"message": "gone", "type": "new_api_error", "param": "task_id", "code": "task_not_exist"}},
                400,
            )
        return JSONResponse(
            {
                "task_id": task,
                "status": "succeeded",
                "url": "http://x/v.mp4",
                "format": "mp4",
                "metadata": {"duration": 5, "fps": 24, "width": 1920, "height": 1080, "seed": 1},
                "error": None,
                "progress": 100,
                "created_at": 1,
                "updated_at": 2,
            }
        )

    return Starlette(
        routes=[
            Route("/v1/video/generations", create, methods=["POST"]),
            Route("/v1/video/generations/{task_id}", get, methods=["GET"]),
        ]
    )


def test_verify_fails_against_a_broken_server_and_names_each_defect() -> None:
    contract = load_contract()
    wanted = {"valid:text2video", "invalid:sound.requires_pro", "invalid:schema:properties/mode/enum"}
    cases = [c for c in build_cases(contract) if c.name in wanted]
    mode_enum = {**cases[0].body, "mode": "turbo"}
    found = validate_create(contract, mode_enum)
    assert isinstance(found, Violation)
    cases.append(
        Case(
            f"invalid:{found.rule}",
            "POST",
            "/v1/video/generations",
            mode_enum,
            expect=next(c for c in cases if c.expect is not None).expect,
        )
    )
    with serving(_broken_app()) as url:
        result = _verifier(url, FakeTime(), cases=cases, poll_interval=1).run()
    report = result.report
    assert report.exit_code() == 1
    named = {(name, v.rule, v.json_path) for name, found_ in report.cases.items() for v in found_}
    assert ("valid:text2video", "schema:required", "$.task_id") in named  # missing task_id
    assert ("valid:text2video::follow", "schema:properties/status/enum", "$.status") in named  # wrong spelling
    assert ("invalid:sound.requires_pro", "verify.invalid_rejected", "$") in named  # 500 on bad input
    assert ("invalid:sound.requires_pro", "body.json", "$") not in named
    rejected = next(v for v in report.cases["invalid:sound.requires_pro"] if v.rule == "verify.invalid_rejected")
    assert (rejected.expected, rejected.actual) == ("400 invalid_request (param sound)", 500)
    assert ("invalid:sound.requires_pro", "schema:required", "$.error") in named  # the 500 body is no error object
    text = report.render_text()
    for rule in ("verify.invalid_rejected", "schema:required", "schema:properties/status/enum"):
        assert rule in text


# -- Kling's own API (the official face) -------------------------------------------------------------

ACCESS, SECRET = "ak-test", "sk-test-secret-key-for-kling-testkit"


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    # The fake checks exp/nbf on its clock and the verifier signs on the wall clock: system clock.
    with LiveServer(clock=SystemClock(), seed=12) as server:
        yield server


def _official(url: str, time: FakeTime, **options: Any) -> Verifier:
    return Verifier(
        url,
        face="official",
        access_key=ACCESS,
        secret_key=SECRET,
        sleep=time.sleep,
        monotonic=time.monotonic,
        **options,
    )


def test_verify_official_passes_against_the_fake_as_a_live_server(live_server: LiveServer) -> None:
    live_server.reset()
    result = _official(live_server.base_url, FakeTime(), poll_interval=5).run()
    report = result.report
    assert report.violations == [], report.render_text()
    assert report.skipped == {}
    assert report.exit_code() == 0
    assert result.requests_sent == len(result.exchanges) <= 50
    assert {t.status.value for t in live_server.engine.tasks()} == {"succeeded"}
    assert {"auth:missing_api_key", "auth:invalid_api_key", "auth:auth_failed", "auth:token_expired"} <= set(
        report.cases
    )
    codes = {e.source: (e.status, e.response_body["code"]) for e in result.exchanges}
    assert sorted(set(codes.values()) - {(200, 0)}) == [
        (400, 1200),  # the unreadable bodies
        (400, 1201),
        (401, 1000),
        (401, 1001),
        (401, 1002),
        (401, 1003),
        (401, 1004),
        (404, 1203),
    ]
    # each task is followed on its own kind's query path, with a freshly signed token each time
    query = re.compile(r"(/v1/videos/\w+)/\d+")
    polled = {m.group(1) for e in result.exchanges if e.status == 200 and (m := query.fullmatch(e.path))}
    assert polled == {"/v1/videos/text2video", "/v1/videos/image2video"}
    assert len({e.request_header("authorization") for e in result.exchanges}) > 2


def test_verify_official_through_a_gateways_mount_with_an_sk_key(live_server: LiveServer) -> None:
    live_server.reset()
    result = Verifier(
        live_server.base_url + "/kling", "sk-test", face="official", poll_interval=0, sleep=FakeTime().sleep
    ).run()
    assert result.report.violations == [], result.report.render_text()
    assert set(result.report.skipped) == {"auth:auth_failed", "auth:token_expired", "auth:token_not_yet_valid"}
    assert all("--access-key" in reason for reason in result.report.skipped.values())


def test_every_official_named_rule_has_a_case_that_breaks_it_alone() -> None:
    contract = load_contract("official")
    model = contract.models["kling-v2-6"]
    cases = {c.name: c for c in build_cases(contract)}
    omitted = omitted_cases(contract)
    assert {f"invalid:{r.id}" for r in model.rules if not r.warning} <= set(cases) | set(omitted)
    assert {"invalid:image.max_bytes", "invalid:image_tail.max_bytes"} <= set(omitted)
    assert len(omitted) <= 4, omitted
    for name, case in cases.items():
        if case.method != "POST" or (case.encoded is not None and case.body is None):
            continue
        verdict = validate_create(contract, case.body, mode=case.kind)
        if case.expect is None:
            assert not isinstance(verdict, Violation), name
        else:
            assert isinstance(verdict, Violation), name
            assert f"invalid:{verdict.rule}" == name
            assert (contract.errors[verdict.error].http_status, contract.errors[verdict.error].code) == (
                case.expect.status,
                case.expect.code,
            )
            assert case.path == next(op.path for op in contract.operations.values() if op.id == case.operation)
    images = [c.body["image"] for c in cases.values() if isinstance(c.body, dict) and "image" in c.body]
    assert images
    assert not any(i.startswith("data:") for i in images)  # Kling takes raw base64


def test_official_dry_run_needs_no_key_and_prints_no_secret() -> None:
    text = Verifier(
        "https://api-singapore.klingai.com", face="official", access_key="ak-live", secret_key="sk-live"
    ).dry_run()
    assert "cases (official face)" in text
    assert "auth:token_expired" in text
    assert "(expired credentials)" in text
    assert "omitted invalid:image.max_bytes" in text
    assert "sk-live" not in text


def _broken_official_app() -> Starlette:
    """Kling's API gone wrong: a numeric task id, 'succeeded', seconds, an expired token
    accepted, an error without code, an error with data."""
    task = "123456789012345678"
    ok = {"code": 0, "message": "SUCCEED", "request_id": "r"}

    def claims(request: Request) -> dict[str, Any] | None:
        value = request.headers.get("authorization", "")
        if not value.startswith("Bearer "):
            return None
        return dict(jwt.decode(value[7:], options={"verify_signature": False}))

    async def create(request: Request) -> JSONResponse:
        if claims(request) is None:
            return JSONResponse({**ok, "code": 1001, "message": "empty", "data": None}, 401)
        body = await request.json()
        if body.get("sound") == "on":
            return JSONResponse({"message": "bad request", "request_id": "r"}, 400)  # no code
        kind = request.path_params["kind"]
        task_id: Any = int(task) if kind == "text2video" else task  # a JSON number loses precision
        data = {"task_id": task_id, "task_info": {}, "task_status": "submitted", "created_at": 1, "updated_at": 1}
        return JSONResponse({**ok, "data": data})

    async def get(request: Request) -> JSONResponse:
        if request.path_params["task_id"] != task:
            return JSONResponse({**ok, "code": 1203, "message": "gone", "data": {}}, 404)
        now = int(now_seconds())  # seconds where Kling answers milliseconds
        data = {"task_id": task, "task_status": "succeeded", "task_info": {}, "created_at": now, "updated_at": now}
        return JSONResponse({**ok, "data": data})

    async def listing(request: Request) -> JSONResponse:
        if claims(request) is None:
            return JSONResponse({**ok, "code": 1001, "message": "empty", "data": None}, 401)
        return JSONResponse({**ok, "data": []})  # never looks at exp

    return Starlette(
        routes=[
            Route("/v1/videos/{kind}", create, methods=["POST"]),
            Route("/v1/videos/{kind}", listing, methods=["GET"]),
            Route("/v1/videos/{kind}/{task_id}", get, methods=["GET"]),
        ]
    )


def test_verify_official_names_each_defect_of_a_broken_server() -> None:
    wanted = {
        "valid:text2video",
        "valid:image2video",
        "auth:token_expired",
        "get:task_not_exist",
        "invalid:sound.requires_pro",
    }
    cases = [c for c in build_cases(load_contract("official")) if c.name in wanted]
    with serving(_broken_official_app()) as url:
        result = _official(url, FakeTime(), cases=cases, poll_interval=1).run()
    report = result.report
    assert report.exit_code() == 1
    named = {(name, v.rule, v.json_path) for name, found in report.cases.items() for v in found}
    for expected in [
        ("valid:text2video", "schema:properties/data/properties/task_id/type", "$.data.task_id"),
        ("valid:image2video::follow", "schema:properties/data/properties/task_status/enum", "$.data.task_status"),
        ("auth:token_expired", "verify.invalid_rejected", "$"),
        ("get:task_not_exist", "schema:properties/data/type", "$.data"),
        ("invalid:sound.requires_pro", "schema:required", "$.code"),
    ]:
        assert expected in named, sorted(named)
    assert "valid:text2video::follow" in report.skipped  # a numeric id cannot be polled
    created = {(name, v.rule) for name, found in report.cases.items() for v in found if v.rule == "timestamps.unit"}
    assert ("valid:image2video", "timestamps.unit") in created  # 1 ms after 1970 is no Kling time
    assert {v.face for v in report.violations} == {"official"}


def test_a_refusal_with_the_wrong_code_or_param_is_named_field_by_field() -> None:
    async def create(request: Request) -> JSONResponse:
        error = {"message": "no", "type": "invalid_request_error", "param": "mode", "code": "bad_request"}
        return JSONResponse({"error": error}, 400)

    app = Starlette(routes=[Route("/v1/video/generations", create, methods=["POST"])])
    cases = [c for c in build_cases(load_contract()) if c.name == "invalid:sound.requires_pro"]
    with serving(app) as url:
        report = _verifier(url, FakeTime(), cases=cases, poll_interval=1).run().report
    found = {v.rule: (v.json_path, v.expected, v.actual) for v in report.cases["invalid:sound.requires_pro"]}
    assert found["verify.error_code"] == ("$.error.code", "invalid_request", "bad_request")
    assert found["verify.error_param"] == ("$.error.param", "sound", "mode")


# -- the OpenAI-compatible route (the openai face) ---------------------------------------------------


def _openai(url: str, time: FakeTime, **options: Any) -> Verifier:
    return Verifier(url, "sk-test", face="openai", sleep=time.sleep, monotonic=time.monotonic, **options)


def test_verify_openai_passes_against_the_fake_as_a_live_server(live_server: LiveServer) -> None:
    live_server.reset()
    result = _openai(live_server.base_url, FakeTime(), poll_interval=5).run()
    report = result.report
    assert report.violations == [], report.render_text()
    assert (report.skipped, report.exit_code()) == ({}, 0)
    assert result.requests_sent == len(result.exchanges) <= 50
    assert {t.status.value for t in live_server.engine.tasks()} == {"succeeded"}
    creates = [e for e in result.exchanges if e.method == "POST" and e.status == 200]
    sent_as = sorted((e.request_header("content-type") or "").split(";")[0] for e in creates)
    assert sent_as == ["application/json", "multipart/form-data", "multipart/form-data"]  # as the SDK, and JSON
    downloads = [e for e in result.exchanges if e.path.endswith("/content")]
    assert len(downloads) == len(creates)
    assert all(e.status == 200 and e.response_header("content-type") == "video/mp4" for e in downloads)


def test_every_openai_rule_has_a_case_the_fake_refuses_with_that_rule_alone(live_server: LiveServer) -> None:
    contract = load_contract("openai")
    cases = {c.name: c for c in build_cases(contract)}
    target = load_contract("official").models["kling-v2-6"]
    mapping = contract.form_mapping
    assert mapping is not None
    carried = {mapping.fields[n][0] for n in mapping.fields} | set(mapping.passthrough)
    # kling-v2-6's rules on fields a form carries, and the form's own multipart rules
    wanted = {f"invalid:{r.id}" for r in target.rules if not r.warning and r.kind == "image" and r.param in carried} | {
        "invalid:sound.requires_pro"
    }
    wanted |= {
        f"invalid:{contract.request_rules[key].id}"
        for key in ("multipart", "multipart_parts", "multipart_part_size", "duplicate_field", "file_content_type")
    }
    wanted.add("invalid:input_reference.file_id")
    assert wanted <= set(cases) | set(omitted_cases(contract))
    assert omitted_cases(contract) == {"invalid:image.max_bytes": "needs an upload over the size limit"}
    live_server.reset()
    invalid = [c for c in cases.values() if c.name.startswith("invalid:")]
    result = _openai(live_server.base_url, FakeTime(), cases=invalid, max_requests=len(invalid)).run()
    assert result.report.violations == [], result.report.render_text()
    refused = {(e.rule, e.param) for e in live_server.engine.journal.entries()}
    for case in invalid:
        assert case.expect is not None
        assert (case.name.removeprefix("invalid:"), case.expect.param) in refused, case.name
        assert case.expect.param is None or case.expect.param.split(".")[0] in {*mapping.fields, *mapping.passthrough}


def test_openai_dry_run_sends_nothing_and_prints_no_secret() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"dry run sent {request.method} {request.url}")

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    verifier = Verifier("https://api.modelstream.ai", "sk-live-secret", face="openai", client=client)
    text = verifier.dry_run()
    assert "cases (openai face)" in text.splitlines()[0]
    assert "sent as multipart/form-data" in text
    assert "invalid:form.duplicate_field" in text
    assert "omitted invalid:image.max_bytes" in text
    assert "sk-live-secret" not in text
    assert verifier.sent == 0


def _broken_openai_app() -> Starlette:
    """The route gone wrong: a video without its object field, 'succeeded' for completed (the
    form's task), a refusal naming Kling's field instead of the form's, and HTML for the MP4 (the
    JSON create's task, which completes)."""
    form_task, json_task = "task_" + "Z" * 32, "task_" + "Y" * 32
    video = {
        "id": form_task,
        "model": "kling-v2-6",
        "status": "queued",
        "progress": 0,
        "created_at": 1,
        "completed_at": None,
        "expires_at": None,
        "prompt": "p",
        "seconds": "5",
        "size": "1280x720",
        "remixed_from_video_id": None,
        "error": None,
    }

    async def create(request: Request) -> JSONResponse:
        if request.headers["content-type"] == "application/json":
            return JSONResponse({**video, "object": "video", "id": json_task})
        form = await request.form()
        if "sound" in form:
            error = {"message": "no", "type": "invalid_request_error", "param": "mode", "code": "invalid_request"}
            return JSONResponse({"error": error}, 400)
        return JSONResponse(video)  # no "object": "video"

    async def get(request: Request) -> JSONResponse:
        task = request.path_params["task_id"]
        status = "succeeded" if task == form_task else "completed"
        ended = {"progress": 100, "completed_at": 2, "expires_at": 3}
        return JSONResponse({**video, "object": "video", "id": task, "status": status, **ended})

    async def content(request: Request) -> HTMLResponse:
        return HTMLResponse("<p>not a video</p>")

    return Starlette(
        routes=[
            Route("/v1/videos", create, methods=["POST"]),
            Route("/v1/videos/{task_id}", get, methods=["GET"]),
            Route("/v1/videos/{task_id}/content", content, methods=["GET"]),
        ]
    )


def test_verify_openai_names_each_defect_of_a_broken_server() -> None:
    wanted = {"valid:text2video", "valid:text2video:json", "invalid:sound.requires_pro"}
    cases = [c for c in build_cases(load_contract("openai")) if c.name in wanted]
    with serving(_broken_openai_app()) as url:
        report = _openai(url, FakeTime(), cases=cases, poll_interval=1).run().report
    assert report.exit_code() == 1
    named = {(name, v.rule, v.json_path) for name, found in report.cases.items() for v in found}
    for expected in [
        ("valid:text2video", "schema:required", "$.object"),  # a field missing
        ("valid:text2video::follow", "schema:properties/status/enum", "$.status"),  # a wrong spelling
        ("invalid:sound.requires_pro", "verify.error_param", "$.error.param"),  # Kling's field, not the form's
        ("valid:text2video:json::content", "verify.result_downloaded", "$.content-type"),  # no MP4
    ]:
        assert expected in named, sorted(named)
    param = next(v for v in report.cases["invalid:sound.requires_pro"] if v.rule == "verify.error_param")
    assert (param.expected, param.actual) == ("sound", "mode")
    assert {v.face for v in report.violations} == {"openai"}
