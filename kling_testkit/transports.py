"""Transport injection: hand the in-process fake to an ``httpx`` (or ``httpx2``) client explicitly.

Injection changes nothing process-wide (no patching), so nothing leaks between tests or
threads; it is the integration to prefer whenever the code under test accepts a client or a
transport. The same transport serves sync and async clients::

    api = kling_testkit.mock()
    httpx.Client(transport=kling_testkit.transport(api), base_url=api.base_url)
    httpx.AsyncClient(transport=kling_testkit.transport(api), base_url=api.base_url)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from kling_testkit._respx import PassThrough, Router

if TYPE_CHECKING:
    from kling_testkit._httpx2 import KlingHttpx2Transport
    from kling_testkit._mock import KlingMock

__all__ = ["KlingTransport", "httpx2_transport", "transport"]


class KlingTransport(httpx.MockTransport):
    """An ``httpx.MockTransport`` over a :class:`~kling_testkit.KlingMock`'s respx router.

    Async clients are resolved asynchronously, so injected latency is awaited on the engine's
    clock instead of blocking the event loop. A request outside the fake's base URLs fails with
    ``httpx.ConnectError`` naming the base URLs (this transport has no network behind it).

    >>> from kling_testkit import KlingMock
    >>> api = KlingMock()
    >>> with httpx.Client(transport=KlingTransport(api)) as client:
    ...     client.get("https://api.modelstream.ai/openapi.json").status_code
    200
    """

    def __init__(self, mock: KlingMock) -> None:
        self.mock = mock
        router = mock.router
        assert isinstance(router, Router)  # the mock's own router: it answers the fake's URLs directly
        super().__init__(router.handler)
        self._router = router

    def _unserved(self, request: httpx.Request) -> httpx.ConnectError:
        bases = ", ".join(self.mock.base_urls)
        return httpx.ConnectError(
            f"{request.url} is not served by the Kling fake (base URLs: {bases})", request=request
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        # The usual request is the fake's: answered without a second look at its URL.
        response = self._router.fake_answer(request)
        if response is not None:
            return response
        if not self.mock.serves(request.url):
            raise self._unserved(request)
        try:
            return self._router.handler(request)
        except PassThrough:
            raise self._unserved(request) from None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = await self._router.async_fake_answer(request)
        if response is not None:
            return response
        if not self.mock.serves(request.url):
            raise self._unserved(request)
        try:
            return await self._router.async_handler(request)
        except PassThrough:
            raise self._unserved(request) from None


def transport(mock: KlingMock) -> KlingTransport:
    """The transport to inject into ``httpx.Client`` / ``httpx.AsyncClient`` for ``mock``.

    >>> from kling_testkit import mock
    >>> api = mock()
    >>> with httpx.Client(transport=transport(api), base_url=api.base_url) as client:
    ...     client.get("/v1/video/generations/task_x").status_code
    401
    """
    return KlingTransport(mock)


def httpx2_transport(mock: KlingMock) -> KlingHttpx2Transport:
    """The transport to inject into ``httpx2.Client`` / ``httpx2.AsyncClient`` (the clients the
    OpenAI SDK 3.x is built on) for ``mock``; imports ``httpx2``.

    >>> import httpx2
    >>> from kling_testkit import mock
    >>> api = mock()
    >>> with httpx2.Client(transport=httpx2_transport(api), base_url=api.base_url) as client:
    ...     client.get("/v1/videos/task_x").status_code
    401
    """
    from kling_testkit._httpx2 import KlingHttpx2Transport

    return KlingHttpx2Transport(mock)
