"""Request bodies in flight share a bounded budget (issue 13): excess requests wait, then get
the face's 503; a stalled body gets 408 and gives its room back; memory returns to the system
once large uploads end; and SIGTERM stops a loaded server within its grace period."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from reliability_helpers import AUTH, CREATE, FACE_CASES, JSON, Live, encode, request_head
from sample_payloads import t2v

from mockserver.service import BODY_IDLE_SECONDS, BODY_WAIT_SECONDS, MAX_BODY_BYTES_IN_FLIGHT

GATEWAY = FACE_CASES["gateway"]


@pytest.fixture
def small_budget(live: Live) -> Iterator[Live]:
    service = live.service
    saved = service.max_body_bytes_in_flight, service.body_wait_seconds, service.body_idle_seconds
    service.max_body_bytes_in_flight, service.body_wait_seconds, service.body_idle_seconds = 1_000_000, 0.3, 1.0
    try:
        yield live
    finally:
        service.max_body_bytes_in_flight, service.body_wait_seconds, service.body_idle_seconds = saved


def _padded(size: int) -> bytes:
    """A valid create of exactly ``size`` bytes (the padding is an unknown field's value)."""
    body = encode(t2v(padding=""))
    return encode(t2v(padding="p" * (size - len(body))))


def _stalled(live: Live, declared: int, sent: int, target: str = CREATE) -> socket.socket:
    sock = live.door.connect(timeout=10)
    sock.sendall(request_head("POST", target, "127.0.0.1", [AUTH, JSON, ("content-length", str(declared))]))
    sock.sendall(b"{" + b" " * (sent - 1))
    return sock


def test_the_defaults_are_documented_bounds() -> None:
    assert MAX_BODY_BYTES_IN_FLIGHT == 128 * 1024 * 1024
    assert (BODY_WAIT_SECONDS, BODY_IDLE_SECONDS) == (10.0, 30.0)


def test_a_body_that_does_not_fit_waits_then_gets_the_faces_503(small_budget: Live) -> None:
    live = small_budget
    with _stalled(live, 800_000, 100_000):
        time.sleep(0.05)
        reply = live.door.send("POST", CREATE, [AUTH, JSON], _padded(500_000))
        GATEWAY.assert_error(reply, "server_busy")
        assert reply.header("retry-after") == "1"
    # the stalled client left: its room is back
    time.sleep(0.1)
    assert live.door.send("POST", CREATE, [AUTH, JSON], _padded(500_000)).status == 200


def test_a_waiting_body_is_admitted_when_room_is_made(small_budget: Live) -> None:
    live = small_budget
    live.service.body_wait_seconds = 5.0
    first = _stalled(live, 600_000, 100_000)
    results: list[int] = []
    thread = threading.Thread(
        target=lambda: results.append(live.door.send("POST", CREATE, [AUTH, JSON], _padded(500_000)).status)
    )
    thread.start()
    time.sleep(0.2)
    assert results == [], "admitted although the budget was held"
    first.close()  # the first upload ends: room for the second
    thread.join(10)
    assert results == [200]


def test_a_stalled_body_gets_408_and_gives_its_room_back(small_budget: Live) -> None:
    live = small_budget
    with _stalled(live, 900_000, 10_000) as sock:
        reply = live.door.read_reply(sock)
    GATEWAY.assert_error(reply, "request_timeout")
    assert live.door.send("POST", CREATE, [AUTH, JSON], _padded(900_000)).status == 200


def test_a_chunked_body_past_the_budget_is_refused_at_once(small_budget: Live) -> None:
    live = small_budget
    with live.door.connect() as sock:
        sock.sendall(request_head("POST", CREATE, "127.0.0.1", [AUTH, JSON, ("transfer-encoding", "chunked")]))
        chunk = b"x" * 400_000
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(4):
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        reply = live.door.read_reply(sock)
    GATEWAY.assert_error(reply, "server_busy")


@pytest.mark.parametrize("face_name", sorted(FACE_CASES))
def test_busy_is_answered_in_each_faces_format(small_budget: Live, face_name: str) -> None:
    live, face = small_budget, FACE_CASES[face_name]
    with _stalled(live, 900_000, 10_000, target=face.create):
        time.sleep(0.05)
        reply = live.door.send("POST", face.create, [face.auth, JSON], b"{" + b" " * 500_000 + b"}")
    face.assert_error(reply, "server_busy")


# -- a server process: memory after uploads, SIGTERM under load -----------------------------


@contextlib.contextmanager
def _serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = 0
        for line in process.stdout:
            found = re.search(r"fake at http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
            if line.strip() == "ready":
                break
        assert port, "the server did not start"
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_memory_returns_after_large_uploads_end() -> None:
    """20 stalled 30 MiB uploads took a server from 94 MB to 694 MB and 486 MB stayed after the
    clients left. Now at most the budget is held, and the heap is trimmed when bodies end."""
    with _serve() as (process, port):
        baseline = _rss(process.pid)
        socks = []
        part = b"{" + b" " * (24 * 1024 * 1024)

        def upload(sock: socket.socket) -> None:
            head = request_head("POST", CREATE, "127.0.0.1", [AUTH, JSON, ("content-length", str(30 * 1024 * 1024))])
            with contextlib.suppress(OSError):  # a waiting upload is not read: its send times out
                sock.sendall(head + part)

        threads = []
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", port), timeout=3)
            socks.append(sock)
            threads.append(threading.Thread(target=upload, args=(sock,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        loaded = _rss(process.pid)
        for sock in socks:
            sock.close()
        time.sleep(1.0)
        after = _rss(process.pid)
    assert loaded - baseline < MAX_BODY_BYTES_IN_FLIGHT + 64 * 1024 * 1024, (baseline, loaded)
    assert after - baseline < 48 * 1024 * 1024, f"{(after - baseline) / 1e6:.0f} MB stayed after the uploads ended"


def test_sigterm_stops_a_loaded_server_within_its_grace_period() -> None:
    """A stalled upload, a head that never ends and a client that never reads its answer used to
    keep the process alive after SIGTERM."""
    with _serve("--shutdown-grace", "1") as (process, port):
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(request_head("POST", CREATE, "127.0.0.1", [AUTH, JSON, ("content-length", "1000000")]) + b"{")
        slow_head = socket.create_connection(("127.0.0.1", port))
        slow_head.sendall(b"GET /openapi.json HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
        reader = socket.create_connection(("127.0.0.1", port))
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for _ in range(200):  # answers pile up unread
            reader.sendall(b"GET /openapi.json HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        time.sleep(0.3)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(15)
        took = time.monotonic() - started
        for sock in (stalled, slow_head, reader):
            sock.close()
    assert code == 0
    assert took < 1 + 2.0, f"SIGTERM took {took:.1f} s with a 1 s grace period"


def test_serve_takes_a_public_url_and_allowed_host_names() -> None:
    with _serve("--public-url", "https://fake.example:9443/", "--allowed-host", "fake.internal") as (_, port):

        def get(path: str, host: str) -> tuple[int, bytes]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(request_head("GET", path, host, [("connection", "close")]))
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            return int(head.split(b" ", 2)[1]), body

        status, body = get("/openapi.json", "127.0.0.1")
        assert status == 200
        assert b'"servers":[{"url":"https://fake.example:9443"' in body
        assert get("/__mock__/tasks", "fake.internal:8000")[0] == 200
        assert get("/__mock__/tasks", "fake.example")[0] == 200  # the public URL's host
        assert get("/__mock__/tasks", "evil.example")[0] == 403
