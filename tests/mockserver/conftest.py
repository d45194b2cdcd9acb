"""Fixtures for the mockserver tests: a service on a virtual clock, and create/poll callers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mock_bodies import AUTH, CREATE

from mockserver import Engine, Service, VirtualClock


@pytest.fixture
def service() -> Service:
    return Service(Engine(clock=VirtualClock(), seed=7))


@pytest.fixture
def create(service: Service) -> Callable[..., Any]:
    def _create(body: Any, headers: tuple[tuple[str, str], ...] = AUTH) -> Any:
        return service.handle_simple("POST", CREATE, body, headers)

    return _create


@pytest.fixture
def poll(service: Service) -> Callable[[str], Any]:
    def _poll(task_id: str) -> Any:
        return service.handle_simple("GET", f"{CREATE}/{task_id}", None, AUTH)

    return _poll
