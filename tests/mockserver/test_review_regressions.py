"""Regression tests for defects a review found: each fails on the code before its fix."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from mock_bodies import AUTH, CREATE, t2v

from mockserver import Engine, FaultPlan, Outcome, Progression, Service, VideoSpec, VirtualClock, media
from mockserver.contract import load_contract


def test_an_outcome_rule_with_a_remote_ref_is_refused_without_connecting(service: Service) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        rule = {"when": {"$ref": f"http://127.0.0.1:{port}/schema.json"}, "outcome": {"status": "failed"}}
        response = service.handle_simple("POST", "/__mock__/outcome/rules", rule)
        assert response.status == 400
        assert "never fetches" in response.payload["error"]["message"]
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        pytest.param("http://evil.example", 403, id="foreign-site"),
        pytest.param("null", 403, id="opaque-origin"),
        pytest.param("http://127.0.0.1:8000", 200, id="loopback"),
        pytest.param("http://localhost:5173", 200, id="localhost"),
        pytest.param(None, 200, id="no-origin-non-browser-client"),
    ],
)
def test_admin_refuses_browser_requests_from_foreign_origins(origin: str | None, status: int, service: Service) -> None:
    headers = (("origin", origin),) if origin else ()
    response = service.handle_simple("POST", "/__mock__/reset", None, headers)
    assert response.status == status
    if status == 403:
        assert response.payload["error"]["code"] == "admin_forbidden"


def test_the_admin_token_admits_any_origin() -> None:
    service = Service(Engine(clock=VirtualClock()), admin_token="t")
    headers = (("origin", "http://ci.example"), ("x-mock-admin-token", "t"))
    assert service.handle_simple("POST", "/__mock__/reset", None, headers).status == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/__media__/task_" + "x" * 32 + ".mp4", 404, id="unknown-media"),
        pytest.param(CREATE + "/task_nope", 400, id="unknown-task"),
        pytest.param("/openapi.json", 200, id="openapi"),
        pytest.param("/__mock__/tasks", 200, id="admin"),
    ],
)
def test_head_answers_have_headers_but_no_content(path: str, status: int, service: Service) -> None:
    response = service.handle_simple("HEAD", path, None, AUTH)
    assert response.status == status
    assert response.body == b""
    assert int(response.header("content-length") or 0) > 0, "Content-Length is the GET answer's"


def test_head_on_a_task_is_a_poll_with_no_content_and_the_journal_records_no_body(service: Service) -> None:
    task_id = service.handle_simple("POST", CREATE, t2v(), AUTH).payload["task_id"]
    response = service.handle_simple("HEAD", f"{CREATE}/{task_id}", None, AUTH)
    assert (response.status, response.body) == (200, b"")
    assert service.engine.journal.entries()[-1].response_body is None


def test_reset_can_install_new_defaults_in_one_step() -> None:
    engine = Engine(clock=VirtualClock())
    engine.reset(progression=Progression.immediate(), outcome=Outcome.fail("timeout"))
    task = engine.create_task(model="kling-v2-6", kind="text2video", request={}, video=media_spec())
    assert (task.status.value, task.outcome.reason) == ("failed", "timeout")
    engine.reset()
    assert engine.policies()["progression"]["mode"] == "immediate", "the installed defaults stay"


def media_spec() -> VideoSpec:
    return VideoSpec(5, 1920, 1080)


def test_arming_a_fault_does_not_shift_the_task_ids_that_follow() -> None:
    def ids(arm: bool) -> list[str]:
        service = Service(Engine(clock=VirtualClock(), seed=5))
        if arm:
            service.engine.arm_fault(FaultPlan(operation="media.get", error="upstream_error", probability=0.5))
        return [service.handle_simple("POST", CREATE, t2v(), AUTH).payload["task_id"] for _ in range(3)]

    assert ids(arm=True) == ids(arm=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--port", "70000"], "port must be 0..65535", id="port-too-big"),
        pytest.param(["--port", "-1"], "port must be 0..65535", id="negative-port"),
        pytest.param(["--outcome", "failed:bogus"], "outcome reason must be one of", id="unknown-reason"),
    ],
)
def test_serve_refuses_bad_arguments_with_a_message(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kling_testkit.cli", "serve", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_every_video_the_contract_can_ask_for_has_an_asset() -> None:
    for model in load_contract().models.values():
        sizes = {tuple(size) for by_aspect in model.output["frame_sizes"].values() for size in by_aspect.values()}
        durations = set(
            model.form["fields"][[f["name"] for f in model.form["fields"]].index("duration")]["limits"]["enum"]
        )
        assert sizes <= set(media.video_sizes())
        assert durations <= set(media.video_durations())
        assert model.output["fps"] == media.VIDEO_FPS
