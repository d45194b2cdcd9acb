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
        # as the fake answers: an unread stream (respx pre-reads it)
        return httpx.Response(201, request=request, stream=httpx.ByteStream(b"{}"))

    router = Router(assert_all_called=False, assert_all_mocked=False, using="httpx")
    router.add(FakeRoute(handler, r"^https://fake\.invalid/"), name="fake")
    router.route(name="pass_through").pass_through()
    return router


def test_route_match_calls_the_overridden_resolve_with_the_request() -> None:
    seen: list[bool] = []
    # respx's own resolution (what Router.handler falls back to when the fake is not first)
    response = respx.MockRouter.handler(_router(seen), httpx.Request("GET", URL))
    assert seen == [False], BROKEN.format(version=respx.__version__, what="Route.match no longer calls Route.resolve")
    assert response.status_code == 201


def test_async_resolution_goes_through_the_overridden_aresolve() -> None:
    seen: list[bool] = []
    router = _router(seen)
    response = asyncio.run(respx.MockRouter.async_handler(router, httpx.Request("GET", URL)))
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


def test_the_fake_answers_directly_exactly_when_respx_would_resolve_to_it() -> None:
    seen: list[bool] = []
    router = _router(seen)
    request = httpx.Request("GET", URL)
    direct = router.fake_answer(request)
    assert direct is not None
    assert direct.status_code == 201
    assert direct.is_stream_consumed, "respx pre-reads a mocked body; the direct answer must too"
    assert router.handler(request).status_code == 201
    assert seen == [False, False]
    # another URL: respx's resolution (here, the pass-through route)
    assert router.fake_answer(httpx.Request("GET", "https://elsewhere.invalid/")) is None


def test_a_fake_route_set_to_pass_through_is_passed_through() -> None:
    router = _router([])
    router["fake"].pass_through()
    assert router.fake_answer(httpx.Request("GET", URL)) is None
    try:
        router.handler(httpx.Request("GET", URL))
    except PassThrough:
        pass
    else:
        raise AssertionError("a pass-through fake route answered")


def test_a_route_ahead_of_the_fake_is_resolved_by_respx_first() -> None:
    seen: list[bool] = []
    router = Router(assert_all_called=False, assert_all_mocked=False, using="httpx")
    router.get(URL).respond(418)
    router.add(FakeRoute(lambda request: httpx.Response(201, request=request), r"^https://fake\.invalid/"))
    assert router.fake_answer(httpx.Request("GET", URL)) is None
    assert router.handler(httpx.Request("GET", URL)).status_code == 418
    assert asyncio.run(router.async_handler(httpx.Request("GET", URL))).status_code == 418
    assert seen == []


def test_the_direct_async_answer_marks_async_and_awaits_the_fake() -> None:
    seen: list[bool] = []

    async def later(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        return httpx.Response(202, request=request, content=b"late")

    def handler(request: httpx.Request) -> object:
        seen.append(IN_ASYNC.get())
        return later(request)

    router = Router(assert_all_called=False, assert_all_mocked=False, using="httpx")
    router.add(FakeRoute(handler, r"^https://fake\.invalid/"), name="fake")
    response = asyncio.run(router.async_handler(httpx.Request("GET", URL)))
    assert (response.status_code, response.content, seen) == (202, b"late", [True])
    assert not IN_ASYNC.get(), "the async mark must not outlive the answer"
