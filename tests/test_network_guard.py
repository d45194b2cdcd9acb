"""The suite cannot leave loopback: the guard in tests/conftest.py refuses before any packet is sent."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import requests
from network_guard import NetworkGuardError, installed

TEST_NET = "192.0.2.1"  # RFC 5737 TEST-NET-1: documentation only, never routed


def test_the_guard_is_installed_for_the_whole_run() -> None:
    assert installed()
    assert socket.socket.connect.__module__ == "network_guard"


@pytest.mark.parametrize(
    ("family", "address"),
    [
        pytest.param(socket.AF_INET, (TEST_NET, 443), id="ipv4-connect"),
        pytest.param(socket.AF_INET, ("example.com", 443), id="hostname"),
        pytest.param(socket.AF_INET, ("0.0.0.0", 80), id="any-address"),
        pytest.param(socket.AF_INET6, ("2001:db8::1", 443, 0, 0), id="ipv6-documentation-range"),
        pytest.param(socket.AF_INET6, (f"::ffff:{TEST_NET}", 443, 0, 0), id="ipv4-mapped-ipv6"),
    ],
)
@pytest.mark.parametrize("method", ["connect", "connect_ex"])
def test_a_connect_outside_loopback_is_refused_without_traffic(
    family: socket.AddressFamily, address: tuple[object, ...], method: str
) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)  # were the guard absent, a connect would start, not hang the test
        with pytest.raises(NetworkGuardError, match=r"network guard: .* only connect to loopback"):
            getattr(sock, method)(address)
        with pytest.raises(OSError, match="not connected"):  # no peer: nothing was sent to one
            sock.getpeername()


@pytest.mark.parametrize(
    "host", [pytest.param("127.0.0.1", id="ipv4"), pytest.param("localhost", id="name"), pytest.param("::1", id="ipv6")]
)
def test_loopback_is_allowed(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0), family=family)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with listener, socket.create_connection((host, listener.getsockname()[1]), timeout=5) as client:
        assert client.getpeername()[1] == listener.getsockname()[1]


def test_unix_sockets_are_allowed() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"


def _guard_in_chain(exc: BaseException | None) -> bool:
    """Whether NetworkGuardError is ``exc`` or among its causes (anyio groups the attempts)."""
    while exc is not None:
        if isinstance(exc, NetworkGuardError):
            return True
        grouped = getattr(exc, "exceptions", ())  # an exception group (built in from 3.11, backport before)
        if any(_guard_in_chain(e) for e in grouped):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def test_the_http_clients_fail_because_of_the_guard() -> None:
    url = f"http://{TEST_NET}/v1/video/generations"
    with pytest.raises(httpx.ConnectError, match="network guard"):
        httpx.get(url, timeout=5)
    with pytest.raises(requests.ConnectionError, match="network guard"):
        requests.get(url, timeout=5)

    async def fetch() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(url)

    # anyio's happy eyeballs says "All connection attempts failed"; the guard is the cause.
    with pytest.raises(httpx.ConnectError) as raised:
        asyncio.run(fetch())
    assert _guard_in_chain(raised.value)
