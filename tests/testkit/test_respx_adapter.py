"""The respx hooks ``kling_testkit/_respx.py`` overrides still exist and are still called.

These classes override methods respx does not document; if a respx release renames them,
changes their arguments or stops calling them, the fake would silently stop answering (or
record every answer twice, or block an event loop). Each test drives the hook through respx's
public entry points (``router.handler``, ``router.async_handler``) and says which hook broke.
"""

from __future__ import annotations

import asyncio

import httpx
import respx

from kling_testkit._respx import IN_ASYNC, FakeRoute, PassThrough, Router

URL = "https://fake.invalid/v1/x"
BROKEN = "respx {version} changed a hook kling_testkit/_respx.py overrides: {what}"


def _router(seen: list[bool]) -> Router:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(IN_ASYNC.get())
        return httpx.Response(201, request=request)

    router = Router(assert_all_called=False, assert_all_mocked=False, using="httpx")
    router.add(FakeRoute(handler, url__regex=r"^https://fake\.invalid/"), name="fake")
    router.route(name="pass_through").pass_through()
    return router


def test_route_match_calls_the_overridden_resolve_with_the_request() -> None:
    seen: list[bool] = []
    response = _router(seen).handler(httpx.Request("GET", URL))
    assert seen == [False], BROKEN.format(version=respx.__version__, what="Route.match no longer calls Route.resolve")
    assert response.status_code == 201


def test_async_resolution_goes_through_the_overridden_aresolve() -> None:
    seen: list[bool] = []
    router = _router(seen)
    response = asyncio.run(router.async_handler(httpx.Request("GET", URL)))
    assert seen == [True], BROKEN.format(
        version=respx.__version__, what="MockRouter.async_handler no longer calls MockRouter.aresolve"
    )
    assert response.status_code == 201
    assert not IN_ASYNC.get(), "the async mark must not outlive the resolution"


def test_the_fakes_answers_are_not_recorded_by_the_router_but_pass_throughs_are() -> None:
    router = _router([])
    router.handler(httpx.Request("GET", URL))
    assert router.calls.call_count == 0, BROKEN.format(
        version=respx.__version__, what="MockRouter.record(request, *, response, route) is no longer the recorder"
    )
    try:
        router.handler(httpx.Request("GET", "https://elsewhere.invalid/"))
    except PassThrough:
        pass
    else:
        raise AssertionError(BROKEN.format(version=respx.__version__, what="pass-through no longer raises PassThrough"))
    assert router.calls.call_count == 1
