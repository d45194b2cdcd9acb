"""The Starlette door: ``create_app(service)`` serves the fake over ASGI.

A single catch-all ASGI endpoint turns the request into an :class:`ApiRequest` and hands it to
:meth:`Service.handle`, so routing, 404s and 405s are the service's (identical in every door),
not Starlette's. The body is read as a stream and abandoned past the contract's limit: a
client announcing or sending too much gets 413 without the server holding the whole body.
"""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from mockserver.http import ApiRequest, ApiResponse
from mockserver.service import Service


async def _read_body(scope: Scope, receive: Receive, limit: int) -> tuple[bytes, bool] | None:
    """(body, oversize), or None when the client went away mid-body."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                return b"", True
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return b"", True
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), False


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _bound_base(scheme: str, server: tuple[str, int | None] | None) -> str:
    """The base URL of the address the connection arrived on (the ASGI ``server``), for doors
    whose service names no public base URL: a bound address, never the client's Host header."""
    if not server or not server[0] or "/" in server[0]:  # a Unix socket: no address a link could name
        return f"{scheme}://localhost"
    host, port = server  # port None: the scheme's default (httpx's ASGI transport says so)
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if port is None or _DEFAULT_PORTS.get(scheme) == port else f":{port}")


class ServiceAdapter:
    """An ASGI app that answers every HTTP request through a :class:`Service`.

    It speaks raw ASGI (no Starlette ``Request``/``Response`` objects): this door's own cost
    is what the throughput benchmark compares against a bare Starlette endpoint.
    """

    def __init__(self, service: Service) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets are not part of the API
            return
        # The limit of the face that will answer (routes are known from method and path alone).
        read = await _read_body(scope, receive, self.service.body_limit(scope["method"], scope["path"]))
        if read is None:
            return
        body, oversize = read
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        host = next((v for k, v in headers if k == "host"), None)
        if host is None:
            server = scope.get("server") or ("127.0.0.1", 80)
            host = f"{server[0]}:{server[1]}"
        raw_path: bytes | None = scope.get("raw_path")
        scheme = scope.get("scheme", "http")
        client = scope.get("client")
        server = scope.get("server")
        answer: ApiResponse = self.service.handle(
            ApiRequest(
                method=scope["method"],
                scheme=scheme,
                host=host,
                path=raw_path.decode("latin-1").split("?", 1)[0] if raw_path else scope["path"],
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
                oversize=oversize,
                client=client[0] if client else None,
                server=server[0] if server else None,
                public_base_url=self.service.public_base_url or _bound_base(scheme, server),
            )
        )
        if answer.delay:
            await self.service.engine.clock.asleep(answer.delay)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})


def create_app(service: Service | None = None) -> Starlette:
    """The fake as a Starlette application (pass a :class:`Service` to share an engine).

    >>> app = create_app()
    >>> type(app).__name__
    'Starlette'
    """
    service = service if service is not None else Service()
    mount = Mount("/", app=ServiceAdapter(service))
    # Starlette's pattern is "^/(?P<path>.*)$" without DOTALL: a path holding an encoded newline
    # (%0A) matched no route and got Starlette's text/plain 404 instead of the service's error.
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    app = Starlette(routes=[mount])
    # A request target that is not a path (``OPTIONS *``, RFC 9110 7.1) matches no mount: the
    # service answers it too, in the face's format, instead of Starlette's text/plain 404.
    app.router.default = mount.app
    app.state.service = service
    return app
