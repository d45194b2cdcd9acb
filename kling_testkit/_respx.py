"""The one place the kit leans on respx beyond its documented API.

respx's public API has no way for a route's side effect to learn whether it is being resolved
for a sync or an async client, and it calls ``inspect.getfullargspec`` on a side effect at
every call (a third of the in-process fake's own cost per request). So the kit subclasses two
respx classes here, and nowhere else:

- :class:`FakeRoute` overrides ``Route.resolve(request, **context)``, the method ``Route.match``
  calls once a pattern matched, to call the fake directly;
- :class:`Router` overrides ``MockRouter.aresolve(request)`` to mark async resolution (in
  :data:`IN_ASYNC`) and ``MockRouter.record(request, *, response, route)`` so that the fake's
  answers are recorded once (on their :class:`~kling_testkit.KlingRoute`), not twice.

``tests/testkit/test_respx_adapter.py`` exercises exactly these hooks and fails with a message
naming this module when a respx release changes them (``pyproject.toml`` also caps respx below
the next minor release for that reason).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

import httpx
import respx
from respx.models import PassThrough

__all__ = ["IN_ASYNC", "FakeRoute", "PassThrough", "Router"]

#: Set while respx resolves a request for an async client: the one place that tells the side
#: effect whether it may return an awaitable (to spend latency with ``await clock.asleep``).
IN_ASYNC: contextvars.ContextVar[bool] = contextvars.ContextVar("kling_in_async", default=False)


class FakeRoute(respx.Route):
    """A respx route whose side effect is the fake, called without respx's per-call
    ``inspect.getfullargspec`` of the side effect. Everything else (matching, pass-through,
    async resolution, error wrapping) is respx's."""

    def __init__(self, handler: Callable[[httpx.Request], Any], **lookups: Any) -> None:
        super().__init__(**lookups)
        self._handler = handler

    def resolve(self, request: httpx.Request, **_context: Any) -> Any:
        return self._handler(request)


class Router(respx.MockRouter):
    """A respx router that marks async resolution (see :data:`IN_ASYNC`) and records in
    ``router.calls`` only the requests it passes through: the fake's own answers are recorded
    once, on their :class:`~kling_testkit.KlingRoute`."""

    def record(
        self, request: httpx.Request, *, response: httpx.Response | None = None, route: respx.Route | None = None
    ) -> None:
        # A second respx Call per answered request kept every request and response alive
        # twice; with thousands of them each GC pass, and so each request, got slower.
        if not isinstance(route, FakeRoute):
            super().record(request, response=response, route=route)

    async def aresolve(self, request: httpx.Request) -> Any:
        token = IN_ASYNC.set(True)
        try:
            return await super().aresolve(request)
        finally:
            IN_ASYNC.reset(token)
