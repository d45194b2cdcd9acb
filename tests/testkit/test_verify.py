"""``verify`` against the fake as a live server, and against a deliberately broken server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from kling_testkit.verify import Case, Verifier, build_cases, omitted_cases
from mockserver import Engine, Progression, Service, SystemClock, create_app, load_contract
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
        verdict = validate_create(contract, case.body) if case.method == "POST" and case.auth else None
        if case.expect is None:
            assert not isinstance(verdict, Violation), name
        elif name.startswith("invalid:"):
            assert isinstance(verdict, Violation)
            assert f"invalid:{verdict.rule}" == name
            assert contract.errors[verdict.error].http_status == case.expect.status


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
