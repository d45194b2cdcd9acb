"""The Starlette door: ``create_app(service)`` serves the fake over ASGI.

A single catch-all endpoint turns the ASGI request into an :class:`ApiRequest` and hands it to
:meth:`Service.handle`, so routing, 404s and 405s are the service's (identical in every door),
not Starlette's. The body is read as a stream and abandoned past the contract's limit: a
client announcing or sending too much gets 413 without the server holding the whole body.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from mockserver.http import ApiRequest, ApiResponse
from mockserver.service import Service


async def _read_body(request: Request, limit: int) -> tuple[bytes, bool]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return b"", True
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False


class ServiceAdapter:
    """An ASGI app that answers every HTTP request through a :class:`Service`."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets are not part of the API
            return
        request = Request(scope, receive)
        body, oversize = await _read_body(request, self.service.max_body_bytes)
        raw_path: bytes | None = scope.get("raw_path")
        path = raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope["path"]
        server = request.headers.get("host") or "{}:{}".format(*(scope.get("server") or ("127.0.0.1", 80)))
        api_request = ApiRequest(
            method=scope["method"],
            scheme=scope.get("scheme", "http"),
            host=server,
            path=path,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]),
            body=body,
            oversize=oversize,
        )
        answer: ApiResponse = self.service.handle(api_request)
        if answer.delay:
            await self.service.engine.clock.asleep(answer.delay)
        response = Response(content=answer.body, status_code=answer.status)
        # Starlette computes content-length itself; keep the service's headers otherwise verbatim.
        response.raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers if k.lower() != "content-length"
        ] + [(b"content-length", (answer.header("content-length") or str(len(answer.body))).encode())]
        await response(scope, receive, send)


def create_app(service: Service | None = None) -> Starlette:
    """The fake as a Starlette application (pass a :class:`Service` to share an engine).

    >>> app = create_app()
    >>> type(app).__name__
    'Starlette'
    """
    service = service if service is not None else Service()
    app = Starlette(routes=[Mount("/", app=ServiceAdapter(service))])
    app.state.service = service
    return app
