"""Fixtures of the reliability suite: a service on a virtual clock, and a live server.

The live server is uvicorn in a daemon thread on a port-0 socket from ``mockserver.serve.bind``
(session-scoped: starting and stopping uvicorn costs far more than a reset), and each test that
asks for it gets the engine reset first. The doors (``in_process``, ``live``) are what the
battery is parametrised over.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from reliability_helpers import Door, InProcessDoor, Live

from mockserver import Engine, Service, VirtualClock, create_app
from mockserver.serve import bind


class _Server(uvicorn.Server):
    """uvicorn that signals an event once it accepts connections (no polling, no sleeping)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@pytest.fixture(scope="session")
def live_server() -> Iterator[Live]:
    service = Service(Engine(clock=VirtualClock(), seed=11))
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(create_app(service), log_level="warning", lifespan="off", access_log=False)
    server = _Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="reliability-live")
    thread.start()
    if not server.ready.wait(30):
        raise RuntimeError("the live fake did not start within 30 s")
    host, port = sock.getsockname()[:2]
    try:
        yield Live(service, host, port)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def live(live_server: Live) -> Live:
    """The session's live fake, reset (tasks, policies, faults, journal, clock) for this test."""
    live_server.service.engine.reset()
    return live_server


@pytest.fixture
def service() -> Service:
    return Service(Engine(clock=VirtualClock(), seed=7))


@pytest.fixture(params=["in_process", "live"])
def door(request: pytest.FixtureRequest, service: Service) -> Door:
    """Each door into a freshly reset fake."""
    if request.param == "in_process":
        return InProcessDoor(service)
    live: Live = request.getfixturevalue("live")
    return live.door
