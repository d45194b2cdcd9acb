"""The one place the kit leans on respx beyond its documented API.

respx's public API has no way for a route's side effect to learn whether it is being resolved
for a sync or an async client, and it calls ``inspect.getfullargspec`` on a side effect at
every call (a third of the in-process fake's own cost per request). So the kit subclasses two
respx classes here, and nowhere else:

- :class:`FakeRoute` overrides ``Route.resolve(request, **context)``, the method ``Route.match``
  calls once a pattern matched, to call the fake directly;
- :class:`Router` overrides ``MockRouter.aresolve(request)`` to mark async resolution (in
  :data:`IN_ASYNC`) and ``MockRouter.record(request, *, response, route)`` so that the fake's
  answers are recorded once (on their :class:`~kling_testkit.KlingRoute`), not twice;
- :class:`Router` also overrides the public ``handler`` and ``async_handler`` (what
  ``httpx.MockTransport`` and respx's own patching call) to answer a request for the fake's URLs
  straight from the fake while its route is the router's first: respx's resolution would find
  that route first anyway, and walking it (a context manager, the pattern objects, the
  recording hook) cost a quarter of an in-process create over a static route.

``tests/testkit/test_respx_adapter.py`` exercises exactly these hooks and fails with a message
naming this module when a respx release changes them (``pyproject.toml`` also caps respx below
the next minor release for that reason).
"""

from __future__ import annotations

import contextvars
import inspect
import re
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
    """A respx route on every URL ``served`` (a regular expression) matches, whose side effect
    is the fake, called without respx's per-call ``inspect.getfullargspec`` of the side effect.
    Everything else (matching, pass-through, async resolution, error wrapping) is respx's."""

    def __init__(self, handler: Callable[[httpx.Request], Any], served: str) -> None:
        super().__init__(url__regex=served)
        self._handler = handler
        self._served = re.compile(served)

    def serves(self, request: httpx.Request) -> bool:
        """Whether the route's pattern matches ``request`` (what respx's match would decide)."""
        return self._served.match(str(request.url)) is not None

    def resolve(self, request: httpx.Request, **_context: Any) -> Any:
        return self._handler(request)


class Router(respx.MockRouter):
    """A respx router that marks async resolution (see :data:`IN_ASYNC`), records in
    ``router.calls`` only the requests it passes through (the fake's own answers are recorded
    once, on their :class:`~kling_testkit.KlingRoute`), and answers the fake's URLs from the
    fake directly while its :class:`FakeRoute` comes first."""

    def _first_fake(self, request: httpx.Request) -> FakeRoute | None:
        # Exactly when respx's resolution would stop at the fake: it is the first route, it is
        # not set to pass through, and its pattern matches.
        routes = self.routes
        if not routes:
            return None
        first = routes[0]
        if isinstance(first, FakeRoute) and not first.is_pass_through and first.serves(request):
            return first
        return None

    def fake_answer(self, request: httpx.Request) -> httpx.Response | None:
        """The fake's answer when respx would resolve ``request`` to the fake's route (None:
        it would not, and :meth:`handler` resolves it as respx does)."""
        route = self._first_fake(request)
        if route is None:
            return None
        response: httpx.Response = route.resolve(request)
        if isinstance(response.stream, httpx.ByteStream):
            response.read()  # as respx's resolution pre-reads a mocked body
        return response

    async def async_fake_answer(self, request: httpx.Request) -> httpx.Response | None:
        """:meth:`fake_answer` for an async client (the fake may await injected latency)."""
        route = self._first_fake(request)
        if route is None:
            return None
        token = IN_ASYNC.set(True)
        try:
            response = route.resolve(request)
            if inspect.isawaitable(response):
                response = await response
        finally:
            IN_ASYNC.reset(token)
        assert isinstance(response, httpx.Response)
        if isinstance(response.stream, httpx.ByteStream):
            await response.aread()
        return response

    def handler(self, request: httpx.Request) -> httpx.Response:
        response = self.fake_answer(request)
        return response if response is not None else super().handler(request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        response = await self.async_fake_answer(request)
        return response if response is not None else await super().async_handler(request)

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
