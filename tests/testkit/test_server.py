"""The live server: any client over loopback, the same controls, errors surfaced, fast stop."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests

from kling_testkit import AdminClient, LiveServer, ServerError
from mockserver import ApiRequest, ApiResponse, VirtualClock, load_contract
from mockserver.faces.gateway import GatewayFace

AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a red fox in snow", "duration": 5}]}
CREATE = "/v1/video/generations"


def test_a_requests_client_creates_polls_and_downloads(kling_server: LiveServer) -> None:
    with requests.Session() as session:
        session.headers.update(AUTH)
        created = session.post(kling_server.base_url + CREATE, json=BODY, timeout=10)
        assert created.status_code == 200
        task_id = created.json()["task_id"]
        statuses = [session.get(f"{kling_server.base_url}{CREATE}/{task_id}", timeout=10).json() for _ in range(2)]
        video = session.get(statuses[-1]["url"], timeout=10)
    assert [s["status"] for s in statuses] == ["in_progress", "completed"]
    assert statuses[-1]["url"].startswith(kling_server.base_url + "/__media__/")
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert kling_server.task(task_id).polls == 2
    assert [e.operation for e in kling_server.journal.entries()] == [
        "video_generations.create",
        "video_generations.get",
        "video_generations.get",
        "media.get",
    ]


def test_the_server_listens_on_loopback_and_adds_no_date_or_server_header(kling_server: LiveServer) -> None:
    assert kling_server.base_url.startswith("http://127.0.0.1:")
    response = requests.get(kling_server.base_url + "/openapi.json", timeout=10)
    assert response.status_code == 200
    assert "date" not in response.headers
    assert "server" not in response.headers


def test_each_test_starts_from_a_clean_server(kling_server: LiveServer) -> None:
    # Whatever earlier tests did, the fixture reset the engine and restored the defaults.
    assert kling_server.tasks() == []
    assert kling_server.journal.entries() == []
    assert kling_server.faults() == []
    assert kling_server.policies()["progression"] == {"mode": "polls", "polls": 1, "seconds": 30.0}


@pytest.mark.kling(keys=["sk-mine"], strict=True, progression="immediate", outcome="failed")
def test_the_marker_configures_the_live_server_for_one_test(kling_server: LiveServer) -> None:
    url = kling_server.base_url + CREATE
    assert httpx.post(url, json=BODY, headers=AUTH).status_code == 401
    mine = {"Authorization": "Bearer sk-mine"}
    assert httpx.post(url, json={**BODY, "extra": 1}, headers=mine).status_code == 400
    assert httpx.post(url, json=BODY, headers=mine).json()["status"] == "failed"


def test_configure_then_default_restores_keys_and_mode() -> None:
    server = LiveServer()
    server.configure(keys=["sk-mine"], strict=True)
    gateway = server.service.faces["gateway"]
    assert isinstance(gateway, GatewayFace)
    assert (gateway.keys, gateway.strict) == (("sk-mine",), True)
    server.configure()
    gateway = server.service.faces["gateway"]
    assert isinstance(gateway, GatewayFace)
    assert gateway.keys == tuple(load_contract().index["auth"]["default_keys"])
    assert not gateway.strict


def test_the_admin_api_drives_the_same_engine(kling_server: LiveServer) -> None:
    with AdminClient(kling_server.base_url) as admin:
        now = admin.advance_clock(90)
        assert now == kling_server.clock.now()
        admin.set_progression("manual")
        fault = admin.arm_fault(operation="video_generations.create", error="rate_limited", retry_after=3)
        assert admin.faults()[0]["id"] == fault
        limited = httpx.post(kling_server.base_url + CREATE, json=BODY, headers=AUTH)
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
        task_id = httpx.post(kling_server.base_url + CREATE, json=BODY, headers=AUTH).json()["task_id"]
        assert admin.task(task_id)["status"] == "submitted"
        assert admin.advance(task_id)["status"] == "processing"
        admin.set_outcome("failed:timeout", task_id=task_id)
        assert kling_server.task(task_id).outcome.reason == "timeout"
        assert [e["response"]["status"] for e in admin.journal()] == [429, 200]
        admin.reset()
    assert kling_server.tasks() == []


def _raising(request: ApiRequest) -> ApiResponse:
    raise RuntimeError("boom in the fake")


def test_an_error_in_the_server_thread_surfaces_at_the_next_control_call(monkeypatch: pytest.MonkeyPatch) -> None:
    with LiveServer() as server:
        monkeypatch.setattr(server.service, "handle", _raising)
        assert httpx.get(server.base_url + "/openapi.json").status_code == 500
        with pytest.raises(ServerError, match="RuntimeError: boom in the fake") as raised:
            server.tasks()
        assert isinstance(raised.value.__cause__, RuntimeError)
        server.tasks()  # raised once, then cleared


def test_an_error_in_the_server_thread_surfaces_when_the_server_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    server = LiveServer().start()
    monkeypatch.setattr(server.service, "handle", _raising)
    httpx.get(server.base_url + "/openapi.json")
    with pytest.raises(ServerError, match="boom"), server:
        pass


class _HangingClock(VirtualClock):
    """Injected latency that never ends: the request is still in flight when the server stops."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()

    async def asleep(self, seconds: float) -> None:  # noqa: ARG002 - the Clock protocol's signature
        self.entered.set()
        await asyncio.Event().wait()


def test_requests_cancelled_by_stop_are_not_reported_as_server_errors() -> None:
    clock = _HangingClock()
    server = LiveServer(clock=clock).start()
    server.arm_fault(operation="video_generations.create", error="rate_limited", latency=5)
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(httpx.post(server.base_url + CREATE, json=BODY, headers=AUTH, timeout=10).status_code)
        except httpx.HTTPError as exc:  # the connection may close before any answer
            outcome.append(exc)

    client = threading.Thread(target=call)
    client.start()
    assert clock.entered.wait(10), "the request never reached the injected latency"
    server.stop()
    client.join(10)
    assert len(outcome) == 1
    assert outcome != [429], "the request should have been cut short by stop()"
    server.check()  # shutdown's CancelledError is the server stopping, not a fault of the fake


def test_stop_closes_the_port_and_ends_the_thread() -> None:
    server = LiveServer().start()
    port = server.port
    assert server.running
    server.stop()
    assert not server.running
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_a_busy_port_is_reported_by_start() -> None:
    with LiveServer() as running, pytest.raises(OSError, match="in use"):
        LiveServer(port=running.port).start()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param({"seed": 5}, "same ids for the same seed", id="seed"),
        pytest.param({"progression": "immediate"}, "completed", id="progression"),
    ],
)
def test_constructor_options(options: dict[str, Any], expected: str) -> None:
    with LiveServer(**options) as first, LiveServer(**options) as second:
        answers = [httpx.post(s.base_url + CREATE, json=BODY, headers=AUTH).json() for s in (first, second)]
    if "seed" in options:
        assert answers[0]["task_id"] == answers[1]["task_id"]
    else:
        assert answers[0]["status"] == expected


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda admin: admin.task(""), id="task"),
        pytest.param(lambda admin: admin.advance(""), id="advance"),
        pytest.param(lambda admin: admin.set_progression("manual", task_id=""), id="set_progression"),
        pytest.param(lambda admin: admin.set_outcome("failed", task_id=""), id="set_outcome"),
    ],
)
def test_an_empty_task_id_is_refused_not_read_as_the_default(kling_server: LiveServer, call: Any) -> None:
    with AdminClient(kling_server.base_url) as admin, pytest.raises(ValueError, match="task_id"):
        call(admin)
    assert kling_server.policies()["progression"]["mode"] == "polls"  # the default was not changed
    assert kling_server.journal.entries() == []


@pytest.mark.parametrize(
    "task_id",
    [
        pytest.param("../reset", id="dot-dot"),
        pytest.param("x/advance", id="slash"),
        pytest.param("x?y=1", id="query"),
        pytest.param("x#frag", id="fragment"),
    ],
)
def test_task_ids_are_quoted_into_one_path_segment(kling_server: LiveServer, task_id: str) -> None:
    kling_server.set_progression("manual")
    created = httpx.post(kling_server.base_url + CREATE, json=BODY, headers=AUTH).json()["task_id"]
    before = kling_server.task(created).status
    with AdminClient(kling_server.base_url) as admin:
        for call in (admin.task, admin.advance):
            with pytest.raises(httpx.HTTPStatusError) as raised:
                call(task_id)
            assert raised.value.response.json()["error"]["code"] == "task_not_exist"
            assert f"/tasks/{quote(task_id, safe='')}" in str(raised.value.request.url)
    # Nothing else was reached: the real task did not move and the state was not reset.
    assert kling_server.task(created).status == before
    assert len(kling_server.tasks()) == 1


def test_a_tls_live_server_serves_https_with_a_ca_bundle_for_clients() -> None:
    with LiveServer(tls=True) as server:
        assert server.base_url.startswith("https://127.0.0.1:")
        assert server.ca_bundle is not None
        with httpx.Client(verify=ssl.create_default_context(cafile=server.ca_bundle)) as client:
            answer = client.get(server.base_url + "/v1/videos/text2video/1")
        assert (answer.status_code, answer.json()["code"]) == (401, 1001)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA refuses it
            httpx.get(server.base_url + "/openapi.json")


CONTROLS: list[Any] = [
    pytest.param(lambda s: s.advance_clock(1), id="advance_clock"),
    pytest.param(lambda s: s.set_progression("instant"), id="set_progression"),
    pytest.param(lambda s: s.set_outcome("failed"), id="set_outcome"),
    pytest.param(lambda s: s.add_outcome_rule({"match": {}, "outcome": "failed"}), id="add_outcome_rule"),
    pytest.param(lambda s: s.arm_fault(operation="video_generations.create", error="rate_limited"), id="arm_fault"),
    pytest.param(lambda s: s.clear_faults(), id="clear_faults"),
    pytest.param(lambda s: s.journal, id="journal"),
    pytest.param(lambda s: s.entries(), id="entries"),
    pytest.param(lambda s: s.warnings(), id="warnings"),
    pytest.param(lambda s: s.task("task_x"), id="task"),
    pytest.param(lambda s: s.advance("task_x"), id="advance"),
]


@pytest.mark.parametrize("control", CONTROLS)
def test_every_control_call_reports_a_server_thread_error_before_it_acts(
    monkeypatch: pytest.MonkeyPatch, control: Any
) -> None:
    # A test that drives the fake only through its controls must still learn the fake crashed.
    with LiveServer() as server:
        monkeypatch.setattr(server.service, "handle", _raising)
        httpx.get(server.base_url + "/openapi.json")
        with pytest.raises(ServerError, match="boom in the fake"):
            control(server)
