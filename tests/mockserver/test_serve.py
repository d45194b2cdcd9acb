"""``kling-testkit serve``: a real server process, its ready line, and its safe defaults."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from served import read_until_ready, serve

from mockserver.app import create_app
from mockserver.serve import bind

SERVE = [sys.executable, "-m", "kling_testkit.cli", "serve"]


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    with serve("--clock", "virtual", "--seed", "1") as running:
        yield running


def test_serve_prints_its_base_url_and_a_ready_line_then_answers(server: tuple[str, list[str]]) -> None:
    base, lines = server
    assert lines[-1] == "ready"
    headers = {"authorization": "Bearer sk-test"}
    created = httpx.post(
        f"{base}/v1/video/generations",
        json={"model": "kling-v2-6", "multi_prompt": [{"prompt": "x", "duration": 5}]},
        headers=headers,
    )
    assert created.status_code == 200
    # The virtual clock starts at the wall clock's second (signed tokens must be valid on it).
    started = httpx.get(f"{base}/__mock__/clock").json()["now"]
    assert started == created.json()["created_at"]
    assert httpx.post(f"{base}/__mock__/clock/advance", json={"seconds": 5}).json()["now"] == started + 5
    assert httpx.get(f"{base}/openapi.json").json()["openapi"] == "3.1.0"


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--host", "192.0.2.1"]])
def test_admin_on_a_non_loopback_address_needs_a_token(args: list[str]) -> None:
    result = subprocess.run([*SERVE, *args, "--port", "0"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "refusing to serve the admin API" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--progression", "sometimes"], "bad progression"),
        (["--outcome", "maybe"], "bad outcome"),
        (["--clock", "sundial"], "invalid choice"),
        (["--official-key", "ak-only"], "use ACCESS_KEY:SECRET_KEY"),
        (["--face", "nonesuch", "--port", "0"], "unknown face 'nonesuch'"),
    ],
)
def test_bad_options_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr


def test_default_bind_is_loopback() -> None:
    import argparse

    from mockserver.serve import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).host == "127.0.0.1"


def test_serve_options_reach_every_face() -> None:
    import argparse

    from mockserver.serve import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    faces = ["--face", "official", "--official-key", "ak-1:s1", "--official-key", "ak-2:s2", "--slots", "2"]
    args = parser.parse_args([*faces, "--callback-allow", "hooks.internal", "--tls"])
    assert (args.faces, args.key_pairs, args.slots) == (["official"], [("ak-1", "s1"), ("ak-2", "s2")], 2)
    assert (args.callback_hosts, args.tls) == (["hooks.internal"], True)


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [*SERVE, "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=read_until_ready, args=(process.stdout, lines), daemon=True)
    reader.start()
    reader.join(30)
    found = re.search(r"at http://127\.0\.0\.1:(\d+)", "\n".join(lines))
    if not lines or lines[-1] != "ready" or not found:
        process.kill()
        process.wait(10)
        pytest.fail(f"the server did not start: {lines}")
    return process, found.group(1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_an_idle_server_cleanly(sig: signal.Signals) -> None:
    process, _ = _start()
    process.send_signal(sig)
    assert process.wait(10) == 0  # not killed by the signal (uvicorn re-raises it: exit status 143)
    assert process.stdout is not None
    assert "Traceback" not in process.stdout.read()
    process.stdout.close()


def test_a_signal_lets_the_request_in_flight_finish_first() -> None:
    process, port = _start("--clock", "virtual")
    body = json.dumps({"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}).encode()
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/video/generations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        # The fake reads the body as a stream: "100 Continue" means the request is in its hands.
        assert conn.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        process.send_signal(signal.SIGTERM)
        conn.sendall(body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:200]
    assert b'"status":"queued"' in answer.replace(b" ", b"")
    assert process.wait(10) == 0
    assert process.stdout is not None
    process.stdout.close()


def test_stopping_an_idle_server_waits_for_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # What "exits at once" means without timing it: no tick and no grace pause to wait out.
    from mockserver.serve import _Server
    from mockserver.service import Service

    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float, result: object = None) -> object:
        waits.append(delay)
        return await real_sleep(delay, result)

    sock = bind("127.0.0.1", 0)
    server = _Server(uvicorn.Config(create_app(Service()), lifespan="off", log_level="warning"), "http://x")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.01)
    server.handle_exit(signal.SIGTERM, None)
    thread.join(10)
    sock.close()
    assert not thread.is_alive()
    assert [w for w in waits if w >= 0.01] == []


def test_a_busy_port_suggests_port_0() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*SERVE, "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: " in result.stderr
    assert "--port 0 (the chosen port is printed)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "http"], "port must be a number, got 'http'"),
        (["--port", "70000"], "port must be 0..65535"),
        (["--outcome", "failed:bored"], "outcome reason must be one of"),
        (["--progression", "polls:x"], "polls:N"),
        (["--official-key", ":secret"], "use ACCESS_KEY:SECRET_KEY"),
    ],
)
def test_every_serve_option_is_checked_when_parsed(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from mockserver.serve import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(args)
    assert refused.value.code == 2
    assert message in capsys.readouterr().err


def test_a_stop_asked_for_as_startup_returns_still_shuts_the_listeners() -> None:
    # uvicorn skips shutdown when should_exit is already set as startup returns, leaving the
    # listeners open (uvloop then warned as the loop closed, and the thread once outlived its
    # test): a stop asked for at that moment must still close them.
    from mockserver._uvicorn import ThreadServer
    from mockserver.serve import _Server
    from mockserver.service import Service

    class StoppedAtStartup(_Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            self.handle_exit(signal.SIGTERM, None)

    class ThreadStoppedAtStartup(ThreadServer):
        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            self.request_exit()

    config = uvicorn.Config(create_app(Service()), lifespan="off", log_level="warning")
    for server in (StoppedAtStartup(config, "http://x"), ThreadStoppedAtStartup(config)):
        sock = bind("127.0.0.1", 0)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        thread.join(60)  # the stop is honoured, not lost (the bound turns a hang into a failure)
        sock.close()
        assert not thread.is_alive(), f"{type(server).__name__} never stopped"
        assert server.started
        assert server.servers
        assert not any(listener.is_serving() for listener in server.servers)
