"""A guard that keeps the test suite on loopback: no test may reach the real provider, or anything.

``install()`` replaces ``socket.socket.connect`` and ``connect_ex`` (every client goes through
them: httpx/httpcore, requests/urllib3, asyncio, ssl) with versions that refuse an AF_INET or
AF_INET6 address outside loopback before any packet is sent. AF_UNIX and other families pass.
``tests/conftest.py`` installs it for the whole run.

    >>> install()
    >>> with socket.socket() as sock:
    ...     try:
    ...         sock.connect(("192.0.2.1", 443))
    ...     except NetworkGuardError as refused:
    ...         print(refused)
    network guard: the test suite may only connect to loopback, not 192.0.2.1:443
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from typing import Any

import mockserver.http

__all__ = ["NetworkGuardError", "install", "installed", "is_loopback", "uninstall"]

_INET = (socket.AF_INET, socket.AF_INET6)
_ORIGINALS: dict[str, Callable[..., Any]] = {}


class NetworkGuardError(ConnectionError):
    """A test tried to connect outside loopback.

    A ``ConnectionError`` (an ``OSError``) so that every client cleans up as for any failed
    connect (``socket.create_connection``, asyncio and anyio close the socket only on
    ``OSError``); they wrap it (``httpx.ConnectError``, ``requests.ConnectionError``) and the
    message, which starts with "network guard", stays in theirs.
    """


def is_loopback(host: object) -> bool:
    """Whether ``host`` (an address tuple's first item) is loopback: 127.0.0.0/8, ::1, localhost.

    >>> [is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "localhost", "::ffff:127.0.0.1")]
    [True, True, True, True, True]
    >>> [is_loopback(h) for h in ("192.0.2.1", "0.0.0.0", "", "example.com", "::ffff:192.0.2.1")]
    [False, False, False, False, False]
    """
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    # Any other name would need a resolver and could leave the machine: not loopback.
    return isinstance(host, str) and mockserver.http.is_loopback(host)


def _guard(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def guarded(self: socket.socket, address: Any, /) -> Any:
        if self.family in _INET:
            host = address[0] if isinstance(address, tuple) and address else address
            if not is_loopback(host):
                port = address[1] if isinstance(address, tuple) and len(address) > 1 else "?"
                raise NetworkGuardError(
                    f"network guard: the test suite may only connect to loopback, not {host}:{port}"
                )
        return original(self, address)

    guarded.__name__ = name
    return guarded


def install() -> None:
    """Patch ``socket.socket.connect``/``connect_ex`` (idempotent)."""
    for name in ("connect", "connect_ex"):
        if name not in _ORIGINALS:
            original = getattr(socket.socket, name)
            _ORIGINALS[name] = original
            setattr(socket.socket, name, _guard(name, original))


def uninstall() -> None:
    """Restore the original methods."""
    for name, original in list(_ORIGINALS.items()):
        setattr(socket.socket, name, original)
        del _ORIGINALS[name]


def installed() -> bool:
    """Whether the guard is in place.

    >>> install(); installed()
    True
    """
    return bool(_ORIGINALS)
