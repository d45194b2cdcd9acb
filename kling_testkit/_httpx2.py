"""The in-process fake for ``httpx2`` clients (the OpenAI SDK 3.x and other httpx2-based SDKs).

respx patches and routes ``httpx`` only. An ``httpx2`` request is converted into an
``httpx.Request`` and resolved by the same respx router as every ``httpx`` request (so the
mock's routes, side effects, call records, refusals and pass-through apply unchanged), and the
answer is converted back. Two doors, as for ``httpx``:

- injection: :class:`KlingHttpx2Transport` (``api.httpx2_transport()``), for sync and async
  ``httpx2`` clients;
- patching: while a :class:`~kling_testkit.KlingMock` patches, every ``httpx2.Client`` and
  ``httpx2.AsyncClient`` asks the fake first (``Client._transport_for_url`` is wrapped, as
  respx does for ``httpx``); a request the fake passes through reaches the client's own
  transport.

This module imports ``httpx2``; the kit imports it only when a client of it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import httpx2
from respx.models import AllMockedAssertionError, PassThrough

if TYPE_CHECKING:
    from kling_testkit._mock import KlingMock

__all__ = ["KlingHttpx2Transport", "install", "uninstall"]


def to_httpx(request: httpx2.Request) -> httpx.Request:
    """The same request as an ``httpx.Request`` (its body read)."""
    return httpx.Request(request.method, str(request.url), headers=list(request.headers.raw), content=request.content)


def to_httpx2(response: httpx.Response, request: httpx2.Request) -> httpx2.Response:
    """A read ``httpx.Response`` as an ``httpx2.Response`` for ``request``."""
    headers = list(response.headers.raw)
    if response.headers.get("content-encoding"):
        # response.content is decoded: send it as such, with its own length
        headers = [(k, v) for k, v in headers if k.lower() not in (b"content-encoding", b"content-length")]
    return httpx2.Response(
        response.status_code, headers=headers, content=response.content, request=request, extensions=None
    )


def _translated(exc: httpx.RequestError, request: httpx2.Request) -> BaseException:
    """An httpx transport error as the httpx2 error of the same name (SDKs catch those)."""
    kind = getattr(httpx2, type(exc).__name__, None)
    if isinstance(kind, type) and issubclass(kind, httpx2.RequestError):
        return kind(str(exc), request=request)
    return httpx2.TransportError(str(exc), request=request)


def _unserved(mock: KlingMock, request: httpx2.Request) -> httpx2.ConnectError:
    bases = ", ".join(mock.base_urls)
    return httpx2.ConnectError(f"{request.url} is not served by the Kling fake (base URLs: {bases})", request=request)


def resolve(mock: KlingMock, request: httpx2.Request) -> httpx2.Response:
    """Answer ``request`` through ``mock``'s router (raises ``PassThrough`` to let it go by)."""
    try:
        response = mock.router.handler(to_httpx(request))
    except httpx.RequestError as exc:
        raise _translated(exc, request) from exc
    response.read()
    return to_httpx2(response, request)


async def aresolve(mock: KlingMock, request: httpx2.Request) -> httpx2.Response:
    """:func:`resolve` for async clients (injected latency awaited on the engine's clock)."""
    try:
        response = await mock.router.async_handler(to_httpx(request))
    except httpx.RequestError as exc:
        raise _translated(exc, request) from exc
    await response.aread()
    return to_httpx2(response, request)


class KlingHttpx2Transport(httpx2.MockTransport):
    """An ``httpx2`` transport serving a :class:`~kling_testkit.KlingMock` to sync and async
    ``httpx2`` clients (injection: nothing process-wide changes). A request outside the fake's
    base URLs fails with ``httpx2.ConnectError`` naming them.

    >>> from kling_testkit import KlingMock
    >>> api = KlingMock()
    >>> with httpx2.Client(transport=api.httpx2_transport()) as client:
    ...     client.get("https://api.modelstream.ai/openapi.json").status_code
    200
    """

    def __init__(self, mock: KlingMock) -> None:
        super().__init__(lambda request: resolve(mock, request))  # handle_* below answer instead
        self.mock = mock

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if not self.mock.serves(str(request.url)):
            raise _unserved(self.mock, request)
        request.read()
        try:
            return resolve(self.mock, request)
        except PassThrough:
            raise _unserved(self.mock, request) from None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if not self.mock.serves(str(request.url)):
            raise _unserved(self.mock, request)
        await request.aread()
        try:
            return await aresolve(self.mock, request)
        except PassThrough:
            raise _unserved(self.mock, request) from None


# -- patching --------------------------------------------------------------------------------


class _Patched(httpx2.BaseTransport):
    """Ask the patching fakes first, then the client's own transport."""

    def __init__(self, mocks: list[KlingMock], real: httpx2.BaseTransport) -> None:
        self._mocks, self._real = mocks, real

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        refused: AllMockedAssertionError | None = None
        for mock in reversed(self._mocks):
            try:
                return resolve(mock, request)
            except PassThrough:
                return self._real.handle_request(request)
            except AllMockedAssertionError as exc:  # another active fake may serve it
                refused = exc
        if refused is not None:
            raise refused
        return self._real.handle_request(request)

    def close(self) -> None:
        self._real.close()


class _AsyncPatched(httpx2.AsyncBaseTransport):
    def __init__(self, mocks: list[KlingMock], real: httpx2.AsyncBaseTransport) -> None:
        self._mocks, self._real = mocks, real

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        refused: AllMockedAssertionError | None = None
        for mock in reversed(self._mocks):
            try:
                return await aresolve(mock, request)
            except PassThrough:
                return await self._real.handle_async_request(request)
            except AllMockedAssertionError as exc:
                refused = exc
        if refused is not None:
            raise refused
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


_originals: dict[str, Any] = {}


def install(mocks: list[KlingMock]) -> None:
    """Route every httpx2 client through ``mocks`` (the live list of patching fakes)."""
    if _originals:
        return
    sync_for_url = httpx2.Client._transport_for_url
    async_for_url = httpx2.AsyncClient._transport_for_url

    def transport_for_url(self: httpx2.Client, url: httpx2.URL) -> httpx2.BaseTransport:
        return _Patched(mocks, sync_for_url(self, url))

    def async_transport_for_url(self: httpx2.AsyncClient, url: httpx2.URL) -> httpx2.AsyncBaseTransport:
        return _AsyncPatched(mocks, async_for_url(self, url))

    _originals["sync"], _originals["async"] = sync_for_url, async_for_url
    httpx2.Client._transport_for_url = transport_for_url  # type: ignore[method-assign]
    httpx2.AsyncClient._transport_for_url = async_transport_for_url  # type: ignore[method-assign]


def uninstall() -> None:
    """Undo :func:`install`."""
    if _originals:
        httpx2.Client._transport_for_url = _originals.pop("sync")  # type: ignore[method-assign]
        httpx2.AsyncClient._transport_for_url = _originals.pop("async")  # type: ignore[method-assign]
