"""The Starlette door: ``create_app(service)`` serves the fake over ASGI.

Starlette's router has no routes of its own: its default, an ASGI adapter, turns every request
into an :class:`ApiRequest` and hands it to :meth:`Service.handle`, so routing, 404s and 405s
are the service's (identical in every door), not Starlette's. The body is read as a stream and
abandoned past the contract's limit: a client announcing or sending too much gets 413 without
the server holding the whole body.

Bodies share one budget (:attr:`Service.max_body_bytes_in_flight`, 128 MiB): a request whose
body does not fit waits for room up to :attr:`Service.body_wait_seconds`, then gets the face's
503 ``server_busy``; a body that sends nothing for :attr:`Service.body_idle_seconds` gets 408
``request_timeout``. Once large bodies end, freed heap memory is returned to the system.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
from collections import deque
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mockserver.http import ApiRequest, ApiResponse, decode_headers
from mockserver.service import Service


class _BodyBudget:
    """Request body bytes held at once, over every request of one event loop.

    A request that announces its length reserves all of it before reading (FIFO, waiting up to
    ``wait`` seconds for room, so the bodies that are admitted always finish); a chunked one
    takes room chunk by chunk and is refused at once when none is left (it cannot wait while
    holding part of its body without risking a standstill).
    """

    def __init__(self) -> None:
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def try_take(self, size: int, limit: int) -> bool:
        if self._waiters or self.used + size > limit:
            return size == 0
        self.used += size
        return True

    async def take(self, size: int, limit: int, wait: float) -> bool:
        if size > limit:
            return False
        if self.try_take(size, limit):
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), wait)
        except asyncio.TimeoutError:
            if future.done():  # room was made for it just as the wait ran out: keep it
                return True
            self._waiters.remove(entry)
            self._wake(limit)
            return False
        except BaseException:
            if future.done() and not future.cancelled():
                self.used -= size
            elif entry in self._waiters:
                self._waiters.remove(entry)
            raise
        return True

    def give(self, size: int, limit: int) -> None:
        self.used -= size
        self._wake(limit)

    def _wake(self, limit: int) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= limit:
            size, future = self._waiters.popleft()
            if not future.done():
                self.used += size
                future.set_result(None)


class _Refusal(Exception):
    def __init__(self, key: str, detail: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.key, self.detail, self.headers = key, detail, headers


async def _receive(receive: Receive, idle: float) -> Message:
    try:
        return await asyncio.wait_for(receive(), idle)
    except asyncio.TimeoutError:
        raise _Refusal("request_timeout", f"no byte of the body arrived for {idle:g} s") from None


#: HTTP versions whose request bodies are announced by Content-Length or Transfer-Encoding
_LENGTH_FRAMED = frozenset({"1.0", "1.1"})


class _Body:
    """Reads one request body within its face's limit and the door's in-flight budget."""

    def __init__(self, service: Service, budget: _BodyBudget) -> None:
        self.service = service
        self.budget = budget
        self.held = 0

    async def read(self, scope: Scope, receive: Receive, limit: int) -> tuple[bytes, bool] | None:
        """(body, oversize), or None when the client went away mid-body; raises _Refusal."""
        service, budget = self.service, self.budget
        budget_limit = service.max_body_bytes_in_flight
        declared: int | None = None
        length_seen = chunked = False  # a Content-Length or Transfer-Encoding says a body follows
        for name, value in scope["headers"]:
            if name == b"content-length" and not length_seen:
                length_seen = True
                if value.isdigit():
                    declared = int(value)
                    if declared > limit:
                        return b"", True
            elif name == b"transfer-encoding":
                chunked = True
        if not length_seen and not chunked and scope.get("http_version") in _LENGTH_FRAMED:
            # HTTP/1 says a request with neither has no body (RFC 9112 6.3): nothing to wait for
            # (a poll, a download), as a bare endpoint that never reads one waits for nothing.
            # (HTTP/2 and 3 frame bodies without either: those are read as they come.)
            return b"", False
        if declared:
            # Room at once is the usual case: taken without the coroutine take() would cost.
            taken = declared <= budget_limit and budget.try_take(declared, budget_limit)
            if not taken and not await budget.take(declared, budget_limit, service.body_wait_seconds):
                raise _Refusal(
                    "server_busy",
                    f"{budget_limit} bytes of bodies in flight at most",
                    (("retry-after", "1"),),
                )
            self.held = declared
        chunks: list[bytes] = []
        size = 0
        message = await receive()  # the first part of a body usually came with the head
        while True:
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    return b"", True
                if declared is None:  # chunked: room as it arrives, refused at once when none is left
                    if not budget.try_take(len(chunk), budget_limit):
                        raise _Refusal(
                            "server_busy",
                            f"{budget_limit} bytes of bodies in flight at most",
                            (("retry-after", "1"),),
                        )
                    self.held += len(chunk)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
            message = await _receive(receive, service.body_idle_seconds)
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), False

    def release(self) -> None:
        if self.held:
            held, self.held = self.held, 0
            self.budget.give(held, self.service.max_body_bytes_in_flight)
            if held >= _TRIM_AFTER and self.budget.used == 0:
                _trim_heap()


#: after a body this large ends and no other is held, freed heap memory goes back to the system
_TRIM_AFTER = 1024 * 1024


def _trim_heap() -> None:
    """glibc keeps freed large blocks in its heap (486 MB stayed after 20 uploads ended);
    ``malloc_trim`` returns them. A no-op where there is no glibc."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=64)  # a door answers on a handful of addresses; every request asks
def _bound_base(scheme: str, server: tuple[str, int | None] | None) -> str:
    """The base URL of the address the connection arrived on (the ASGI ``server``), for doors
    whose service names no public base URL: a bound address, never the client's Host header."""
    if not server or not server[0] or "/" in server[0]:  # a Unix socket: no address a link could name
        return f"{scheme}://localhost"
    host, port = server  # port None: the scheme's default (httpx's ASGI transport says so)
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if port is None or _DEFAULT_PORTS.get(scheme) == port else f":{port}")


def _messages(answer: ApiResponse) -> tuple[Message, Message]:
    """The ASGI messages that send ``answer``: its start, then its whole body."""
    start = {
        "type": "http.response.start",
        "status": answer.status,
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers],
    }
    return start, {"type": "http.response.body", "body": answer.body}


class ServiceAdapter:
    """An ASGI app that answers every HTTP request through a :class:`Service`.

    It speaks raw ASGI (no Starlette ``Request``/``Response`` objects): this door's own cost
    is what the throughput benchmark compares against a bare Starlette endpoint.
    """

    def __init__(self, service: Service, *, lifespan: ASGIApp | None = None) -> None:
        self.service = service
        #: where ``lifespan`` events go (the app's router, which runs its lifespan handlers)
        self.lifespan = lifespan
        self._budget = _BodyBudget()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.lifespan is not None:
                await self.lifespan(scope, receive, send)
            return  # websockets are not part of the API
        # One coroutine per request (no helper coroutines to create and await on the way).
        body_reader = _Body(self.service, self._budget)
        try:
            # The limit of the face that will answer (routes are known from method and path alone).
            try:
                read = await body_reader.read(scope, receive, self.service.body_limit(scope["method"], scope["path"]))
            except _Refusal as refusal:
                body_reader.release()
                request = self._request(scope, b"", oversize=False)
                answer = self.service.door_error(
                    request, refusal.key, refusal.detail, rule=f"door.{refusal.key}", headers=refusal.headers
                )
                start, content = _messages(answer)
                await send(start)
                await send(content)
                return
            if read is None:
                return
            body, oversize = read
            answer = self.service.handle(self._request(scope, body, oversize=oversize))
            del body
            body_reader.release()  # the service is done with the body: its room goes to the next
            if answer.delay:
                await self.service.engine.clock.asleep(answer.delay)
            start, content = _messages(answer)
            await send(start)
            await send(content)
        finally:
            body_reader.release()

    def _request(self, scope: Scope, body: bytes, *, oversize: bool) -> ApiRequest:
        headers = decode_headers(scope["headers"])
        for name, value in headers:
            if name == "host":
                host = value
                break
        else:
            bound = scope.get("server") or ("127.0.0.1", 80)
            host = f"{bound[0]}:{bound[1]}"
        raw_path: bytes | None = scope.get("raw_path")
        query: bytes | None = scope.get("query_string")
        scheme = scope.get("scheme", "http")
        client = scope.get("client")
        server = scope.get("server")
        # positional, in field order: keywords cost a name lookup each on every request
        return ApiRequest(
            scope["method"],
            scheme,
            host,
            raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope["path"],
            query.decode("latin-1") if query else "",
            headers,
            body,
            oversize,
            client[0] if client else None,
            server[0] if server else None,
            self.service.public_base_url or _bound_base(scheme, tuple(server) if server else None),
        )


class _FakeApp(Starlette):
    """A Starlette application whose router has no routes: every request goes to the adapter.

    Starlette's stack puts its ``ExceptionMiddleware`` and router between the middleware and
    that default; with no routes and no handler for any exception but a 500 they only pass each
    request on (a ``Request`` object, closures and a route walk per request, ~3 us of a poll).
    The stack here is Starlette's ``ServerErrorMiddleware`` and any middleware a user adds, then
    the adapter; with neither middleware, an error handler nor ``debug``, it is the adapter
    alone. Add a route, an exception handler or a body size limit and it is Starlette's own
    stack again.
    """

    def build_middleware_stack(self) -> ASGIApp:
        handlers = self.exception_handlers
        if self.router.routes or getattr(self, "max_body_size", None) is not None or handlers.keys() - {500, Exception}:
            return super().build_middleware_stack()
        error_handler = handlers.get(500, handlers.get(Exception))
        if error_handler is None and not self.debug and not self.user_middleware:
            # ServerErrorMiddleware would answer a bug's exception 500 and raise it on to the
            # server, which logs it; an ASGI server answers an exception raised before the
            # response starts 500 itself (uvicorn, httpx's ASGITransport: tested). With no
            # handler or debug page to render, it would only wrap each send in a coroutine.
            return self.router.default
        middleware = [Middleware(ServerErrorMiddleware, handler=error_handler, debug=self.debug), *self.user_middleware]
        app: ASGIApp = self.router.default
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        return app


def create_app(service: Service | None = None) -> Starlette:
    """The fake as a Starlette application (pass a :class:`Service` to share an engine).

    >>> import asyncio, httpx
    >>> async def status(path: str) -> int:
    ...     async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url="http://t") as c:
    ...         return (await c.get(path)).status_code
    >>> asyncio.run(status("/openapi.json")), asyncio.run(status("/v1/video/generations/task_x"))  # no key
    (200, 401)
    """
    service = service if service is not None else Service()
    # No Starlette routes: its router hands every request (any path, %0A in it or not, and a
    # target that is no path, ``OPTIONS *``) to its default, the adapter, so routing, 404 and 405
    # stay the service's, in the face's format. No slash redirects: the service decides on every
    # path itself. (A catch-all route did the same for ~3 % more work per request.) _FakeApp's
    # stack goes straight to the adapter while the router has nothing else to do.
    app = _FakeApp()
    adapter = ServiceAdapter(service, lifespan=app.router)
    app.router.redirect_slashes = False
    app.router.default = adapter
    app.state.service = service
    return app
