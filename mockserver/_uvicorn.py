"""The one place the kit overrides uvicorn's ``Server`` beyond its documented API.

:class:`~kling_testkit.LiveServer` runs uvicorn in a thread for a whole session and resets it
per test (``kling-testkit serve`` overrides ``startup`` too, to print its ``ready`` line).
uvicorn's public way to stop a server (``should_exit = True``) is noticed by its ``main_loop``
on a 0.1 s tick, and its ``shutdown`` then pauses 0.1 s for graceful close: up to 0.2 s per
stop for nothing, since the server stops only after the tests that used it finished; and it
has no "ready" signal a thread can wait on. So :class:`ThreadServer` overrides:

- ``startup(sockets)``: set :attr:`ThreadServer.ready` once listening (or failed) and call
  ``on_ready`` once listening;
- ``main_loop()``: wait on an event instead of ticking (one ``on_tick(0)`` sets the headers);
- ``shutdown(sockets)``: close ``servers``, ``server_state.connections`` and cancel
  ``server_state.tasks`` at once.

``tests/mockserver/test_uvicorn_adapter.py`` checks that uvicorn still calls these hooks with
these arguments and still has the attributes they use, and fails naming this module when a
uvicorn release changes them (``pyproject.toml`` also caps uvicorn below 1.0).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import uvicorn

__all__ = ["ThreadServer"]


class ThreadServer(uvicorn.Server):
    """uvicorn without its polling loop and its graceful-shutdown pause.

    ``main_loop`` waits on an event instead of waking every 0.1 s, and ``shutdown`` closes
    connections at once: the server stops only after the tests that used it finished, so the
    0.1 s grace (plus up to 0.1 s of tick) would be paid for nothing.
    """

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._on_ready = on_ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Event | None = None
        self._stop = False

    async def startup(self, sockets: list[Any] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit = asyncio.Event()
        try:
            await super().startup(sockets)
            if self.started and self._on_ready is not None:
                self._on_ready()
        finally:
            self.ready.set()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default headers once (no Date header: see LiveServer)
        assert self._exit is not None
        if not (self.should_exit or self._stop):
            await self._exit.wait()
        self.should_exit = True

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for task in list(self.server_state.tasks):
            task.cancel()
        for server in self.servers:
            # A client holding a connection open must not hang the run.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=1.0)

    def request_exit(self) -> None:
        # Not should_exit itself: set while startup is still returning, uvicorn would skip
        # shutdown and leave the listeners open; the main loop turns this into should_exit.
        self._stop = True
        if self._loop is not None and self._exit is not None:
            self._loop.call_soon_threadsafe(self._exit.set)
