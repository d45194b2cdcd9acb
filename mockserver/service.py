"""The transport-neutral handler: ``Service.handle(ApiRequest) -> ApiResponse``.

Every door calls this and only this: the Starlette app (server and ASGI), and the respx
routes of ``kling_testkit`` (in-process, sync and async). Routing, auth, fault injection,
journaling and the admin API live here once, so the doors cannot drift apart.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from mockserver import admin
from mockserver.contract import Operation
from mockserver.contract.openapi import build_openapi
from mockserver.engine import Engine
from mockserver.engine.journal import MAX_STRING, shorten
from mockserver.faces.gateway import GatewayFace, Handled
from mockserver.http import ApiRequest, ApiResponse, dump_json

ADMIN_TOKEN_HEADER = "x-mock-admin-token"
_ADMIN_PREFIX = admin.PREFIX + "/"


def _headless(request: ApiRequest, response: ApiResponse) -> ApiResponse:
    """A HEAD answer: the GET answer's status and headers, no content (RFC 9110 9.3.2)."""
    if request.method != "HEAD" or not response.body:
        return response
    return ApiResponse(response.status, response.headers, b"", None, response.delay)


def _loopback_origin(origin: str) -> bool:
    host = urlsplit(origin).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Service:
    """The fake as a function from request to response.

    ``admin``: serve ``/__mock__/`` (the control plane); ``admin_token``: when set, admin calls
    must send it in ``X-Mock-Admin-Token``. ``keys`` and ``strict`` go to the face.

    >>> from mockserver import Engine, VirtualClock
    >>> service = Service(Engine(clock=VirtualClock()))
    >>> service.handle_simple("GET", "/openapi.json").status
    200
    """

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        keys: Collection[str] | None = None,
        strict: bool = False,
        admin: bool = True,
        admin_token: str | None = None,
    ) -> None:
        self.engine = engine if engine is not None else Engine()
        self.contract = self.engine.contract
        self.face = GatewayFace(self.contract, keys=keys, strict=strict)
        self.admin = admin
        self.admin_token = admin_token
        self.max_body_bytes = self.contract.max_body_bytes
        self._openapi: bytes | None = None
        ops = self.contract.operations
        self._routes: tuple[tuple[Operation, Callable[[ApiRequest, dict[str, str]], Handled]], ...] = (
            (ops["video_generations.create"], lambda r, p: self.face.create(self.engine, r)),
            (
                ops["video_generations.get"],
                lambda r, p: self.face.get(self.engine, r, p["task_id"]),
            ),
            (ops["media.get"], lambda r, p: self.face.media(self.engine, r, p["file"])),
        )

    def configure(self, *, keys: Collection[str] | None = None, strict: bool = False) -> None:
        """Replace the accepted keys and the unknown-field mode (same meaning as the constructor's).

        A session-wide live server serves tests that each want their own settings; the routes
        look the face up on every call, so the change applies to the next request.

        >>> from mockserver import Engine, VirtualClock
        >>> service = Service(Engine(clock=VirtualClock()))
        >>> service.configure(keys=["*"], strict=True)
        >>> service.face.strict, service.face.keys
        (True, ('*',))
        """
        self.face = GatewayFace(self.contract, keys=keys, strict=strict)

    @property
    def openapi_bytes(self) -> bytes:
        if self._openapi is None:
            self._openapi = dump_json(build_openapi(self.contract))
        return self._openapi

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one request. Never raises for anything a client can send."""
        path = request.path
        if path.startswith(_ADMIN_PREFIX) and self.admin:
            return _headless(request, self._admin(request))
        if path == "/openapi.json":
            if request.method not in ("GET", "HEAD"):  # 405 like every other route, not a 404
                detail = f"{request.method[:20]} not allowed on /openapi.json; allowed: GET, HEAD"
                return self.face.error("method_not_allowed", detail=detail, headers=(("allow", "GET, HEAD"),))
            body = self.openapi_bytes
            headers = (("content-type", "application/json"), ("content-length", str(len(body))))
            return _headless(request, ApiResponse(200, headers, body))
        handled = self._route(request)
        if request.method == "HEAD" and handled.response.body:
            handled = replace(handled, response=_headless(request, handled.response))
        self._record(request, handled)
        return handled.response

    def handle_simple(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: Iterable[tuple[str, str]] = (),
        base_url: str = "http://127.0.0.1",
    ) -> ApiResponse:
        """Convenience for tests and docs: build the request, JSON-encode ``json``."""
        body = b"" if json is None else dump_json(json)
        pairs = list(headers)
        if json is not None:
            pairs.append(("content-type", "application/json"))
        return self.handle(ApiRequest.build(method, base_url + path, pairs, body))

    # -- internals ---------------------------------------------------------------------------

    def _route(self, request: ApiRequest) -> Handled:
        allowed: list[str] = []
        for op, call in self._routes:
            params = op.match(request.path)
            if params is None:
                continue
            methods = (op.method, "HEAD") if op.method == "GET" else (op.method,)
            if request.method not in methods:
                allowed.extend(methods)
                continue
            if request.oversize or len(request.body) > self.max_body_bytes:
                return Handled(self.face.error("body_too_large", detail=str(self.max_body_bytes)), op.id)
            if op.auth and (denied := self.face.authenticate(request)):
                return Handled(denied, op.id)
            plan = self.engine.take_fault(op.id)
            if plan is not None and (injected := self.face.fault_response(plan)):
                return Handled(injected.with_delay(plan.latency), op.id, fault=plan.error)
            handled = call(request, params)
            if plan is not None:
                return Handled(
                    handled.response.with_delay(plan.latency),
                    handled.operation,
                    handled.task_id,
                    handled.request_json,
                    handled.warnings,
                    fault="latency",
                )
            return handled
        if request.oversize or len(request.body) > self.max_body_bytes:
            return Handled(self.face.error("body_too_large", detail=str(self.max_body_bytes)), None)
        if allowed:
            detail = f"{request.method} not allowed on {request.path[:200]}; allowed: {', '.join(allowed)}"
            return Handled(
                self.face.error("method_not_allowed", detail=detail, headers=(("allow", ", ".join(allowed)),)),
                None,
            )
        return Handled(self.face.error("not_found", detail=f"{request.method} {request.path[:200]}"), None)

    def _admin(self, request: ApiRequest) -> ApiResponse:
        origin = request.header("origin")
        if self.admin_token is None and origin is not None and not _loopback_origin(origin):
            # A web page the developer visits may POST here (no preflight for text/plain), and a
            # DNS-rebound one would look same-origin; browsers always name their Origin on POSTs.
            return self.face.error("admin_cross_origin", detail=repr(origin[:100]))
        if self.admin_token is not None:
            sent = request.header(ADMIN_TOKEN_HEADER) or ""
            if not hmac.compare_digest(
                sent.encode("utf-8", "surrogatepass"),
                self.admin_token.encode("utf-8", "surrogatepass"),
            ):
                return self.face.error("admin_forbidden")
        if request.oversize or len(request.body) > self.max_body_bytes:
            return self.face.error("body_too_large", detail=str(self.max_body_bytes))
        return admin.dispatch(self.engine, request, self.face.error)

    def _record(self, request: ApiRequest, handled: Handled) -> None:
        response = handled.response
        # JSON bodies are kept as the bytes that crossed the wire and parsed when the journal is
        # read: bytes are invisible to the cyclic GC, while thousands of retained dicts made
        # every collection (and so every request) slower as the journal filled.
        request_body: Any
        if handled.request_json is None:
            request_body = shorten(request.body[:4096].decode("utf-8", "replace")) if request.body else None
        elif len(request.body) <= MAX_STRING:  # too short to hold a long string: no marker needed
            request_body = request.body
        else:
            request_body = dump_json(shorten(handled.request_json))
        if response.payload is not None:
            response_body: Any = response.body
        elif response.body:
            response_body = f"<{len(response.body)} bytes {response.header('content-type') or ''}>".replace(" >", ">")
        else:
            response_body = None
        self.engine.journal.record(
            self.engine.clock.now(),
            handled.operation,
            request.method,
            request.scheme,
            request.host,
            request.path,
            request.query,
            request.headers,
            request_body,
            response.status,
            response.headers,
            response_body,
            handled.task_id,
            handled.warnings,
            handled.fault,
        )
