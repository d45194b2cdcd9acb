"""Fixtures of the reliability suite: a service on a virtual clock, and a live server.

The live server is the kit's own ``LiveServer`` (uvicorn in a daemon thread on a free port),
session-scoped because starting uvicorn costs far more than a reset; each test that asks for it
gets the engine reset first. The doors (``in_process``, ``live``) are what the
battery is parametrised over.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from reliability_helpers import Door, InProcessDoor, Live

from kling_testkit.server import LiveServer
from mockserver import Engine, Service, VirtualClock


@pytest.fixture(scope="session")
def live_server() -> Iterator[Live]:
    with LiveServer(seed=11) as server:
        yield Live(server.service, server.host, server.port)


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
