"""Callback delivery out of process: the retry schedule in clock time, HTTP failures, and the
allow-list checked again when a delivery is made (face-neutral: any face with callbacks)."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from mockserver import Engine, Service, VirtualClock, load_contract
from mockserver.callbacks import deliver_due, http_send

PAIR = load_contract("official").index["auth"]["default_keys"][0]
RETRIES = load_contract("official").callback_retry_delays
T2V = "/v1/videos/text2video"


def _create(service: Service, callback_url: str) -> str:
    now = service.engine.clock.now()
    token = jwt.encode({"iss": PAIR["access_key"], "exp": now + 86_400, "nbf": now - 5}, PAIR["secret_key"])
    body = {"model_name": "kling-v2-6", "prompt": "a fox", "callback_url": callback_url}
    answer = service.handle_simple("POST", T2V, json=body, headers=[("authorization", f"Bearer {token}")])
    assert answer.status == 200, answer.body
    return str(answer.payload["data"]["task_id"]) if answer.payload else ""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def failing_receiver() -> Iterator[str]:
    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreachable_receiver_is_retried_on_the_contracts_schedule_then_given_up() -> None:
    service = Service(Engine(clock=VirtualClock()))
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    _create(service, url)
    send = http_send(timeout=2)
    [first] = deliver_due(service, send)
    assert isinstance(first.attempts[0][1], str)
    assert first.attempts[0][1].startswith("error: ")
    assert not first.delivered
    assert not first.given_up
    for delay in RETRIES:
        assert deliver_due(service, send) == []  # not due before its time on the clock
        service.engine.advance_clock(delay)
        [again] = deliver_due(service, send)
    assert len(again.attempts) == len(RETRIES) + 1
    assert again.given_up
    assert again.to_json()["next_at"] is None


def test_a_non_2xx_answer_is_recorded_with_its_status_and_retried(failing_receiver: str) -> None:
    service = Service(Engine(clock=VirtualClock()))
    _create(service, failing_receiver)
    [attempt] = deliver_due(service, http_send())
    assert [result for _, result in attempt.attempts] == [503]
    assert attempt.next_at == service.engine.clock.now() + RETRIES[0]


def test_a_host_dropped_from_the_allow_list_gets_no_request() -> None:
    service = Service(Engine(clock=VirtualClock()), callback_hosts=["*"])
    _create(service, "http://hooks.example/kling")
    service.configure(callback_hosts=["127.0.0.1"])
    sent: list[str] = []

    def send(url: str, body: bytes) -> int:
        sent.append(url)
        return 200

    [refused] = deliver_due(service, send)
    assert sent == []
    assert refused.given_up
    assert str(refused.attempts[0][1]).startswith("refused: host not in the callback allow-list")


def test_the_http_sender_is_built_by_its_first_callback_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A live server that is never sent a callback URL never builds the opener (it reads the
    # environment's proxy settings: a third of a live server's start).
    import urllib.request

    built: list[object] = []
    real = urllib.request.build_opener

    def counting(*handlers: Any) -> urllib.request.OpenerDirector:
        built.append(handlers)
        return real(*handlers)

    monkeypatch.setattr(urllib.request, "build_opener", counting)
    with socket.socket() as probe:  # a loopback port nothing listens on: refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    send = http_send(timeout=0.5)
    assert built == []
    for _ in range(2):  # a refused connection is an error result, not an exception
        assert str(send(f"http://127.0.0.1:{port}/cb", b"{}")).startswith("error:")
    assert len(built) == 1


@pytest.mark.parametrize("url", ["http://[", "nonsense"])
def test_a_url_urllib_cannot_read_is_a_failed_attempt_not_an_exception(url: str) -> None:
    # the sender runs on the thread that delivers every callback: it must not raise
    assert str(http_send(timeout=0.5)(url, b"{}")).startswith("error: ValueError")
