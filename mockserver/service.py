"""The transport-neutral handler: ``Service.handle(ApiRequest) -> ApiResponse``.

Every door calls this and only this: the Starlette app (server and ASGI), and the respx
routes of ``kling_testkit`` (in-process, sync and async). Routing, auth, fault injection,
journaling and the admin API live here once, so the doors cannot drift apart.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from mockserver import admin
from mockserver._frozen import fast_init
from mockserver.contract import Operation, load_contract
from mockserver.contract.openapi import build_openapi
from mockserver.engine import Engine, FaultPlan
from mockserver.engine.journal import MAX_STRING, marker_scope, shorten
from mockserver.faces.base import Face, FaceSettings, Handled, Handler, Mount, Refused, face_names, make_face
from mockserver.http import ApiRequest, ApiResponse, dump_json, kept

ADMIN_TOKEN_HEADER = "x-mock-admin-token"
#: request body bytes the Starlette door holds at once (two of the largest official bodies)
MAX_BODY_BYTES_IN_FLIGHT = 128 * 1024 * 1024
#: how long a request waits for room in that budget before its 503
BODY_WAIT_SECONDS = 10.0
#: how long a body may send nothing before its 408
BODY_IDLE_SECONDS = 30.0
_ADMIN_PREFIX = admin.PREFIX + "/"


def journaled_json(value: Any, wire_bytes: int) -> bytes:
    """``value`` (read from a body of ``wire_bytes``) as the journal keeps it: compact JSON with
    every string over :data:`MAX_STRING` characters as its marker, exactly sized.

    A small body's value rendered in at most ``MAX_STRING`` bytes holds no string that long, so
    the usual request skips the shortening walk (a form's file grows by a third as base64: the
    rendering's length, not the body's, decides).

    >>> journaled_json({"prompt": "a fox"}, 40), journaled_json({"image": "A" * 2000}, 2000)[:26]
    (b'{"prompt":"a fox"}', b'{"image":"<2000 chars sha2')
    """
    if wire_bytes <= MAX_STRING:
        data = dump_json(value)
        if len(data) <= MAX_STRING:
            return kept(data)
    return kept(dump_json(shorten(value)))


def _headless(request: ApiRequest, response: ApiResponse) -> ApiResponse:
    """A HEAD answer: the GET answer's status and headers, no content (RFC 9110 9.3.2)."""
    if request.method != "HEAD" or not response.body:
        return response
    return ApiResponse(response.status, response.headers, b"", None, response.delay)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, IPv6 with or without brackets) is loopback.

    >>> [is_loopback(h) for h in ("127.0.0.2", "[::1]", "localhost", "0.0.0.0", "127.0.0.1.evil.example")]
    [True, True, True, False, False]
    """
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _loopback_origin(origin: str) -> bool:
    return is_loopback(urlsplit(origin).hostname or "")


def host_name(host: str) -> str:
    """The name part of a ``Host`` value: no port, no IPv6 brackets, lower case.

    >>> host_name("[::1]:8000"), host_name("Example.COM:80"), host_name("127.0.0.1")
    ('::1', 'example.com', '127.0.0.1')
    """
    host = host.strip().lower().split("/", 1)[0]  # an in-process door's host may carry a path prefix
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class AdminExposed(ValueError):
    """The admin API would be served on a non-loopback address without a token."""


def admin_exposure(host: str, *, admin: bool, admin_token: str | None) -> str | None:
    """The one rule of every door that binds a socket: the admin API on a non-loopback address
    needs a token. Returns why ``host`` is refused, or None.

    >>> admin_exposure("0.0.0.0", admin=True, admin_token=None)[:45]
    'refusing to serve the admin API on non-loopba'
    >>> admin_exposure("0.0.0.0", admin=True, admin_token="t") is None
    True
    """
    if not admin or admin_token or is_loopback(host):
        return None
    return (
        f"refusing to serve the admin API on non-loopback address {host}: "
        "pass --admin-token TOKEN or --no-admin (LiveServer: admin_token=...)"
    )


@fast_init  # a service builds its ~30 routes at every configure (each KlingMock, each live server)
@dataclass(frozen=True, slots=True)
class _Route:
    prefix: str
    face: Face
    operation: Operation
    handler: Handler
    methods: tuple[str, ...]
    #: the face whose auth guards this route (the face itself, or another for a prefix mount
    #: that a contract says is authenticated differently)
    guard: Face
    #: the literal start of the route's path (prefix and template up to its first parameter):
    #: a path without it cannot match, and ``startswith`` is cheaper than the template's regex
    head: str = ""


def _slashes(path: str) -> int:
    # A template parameter matches one segment ([^/]+): a path matches a route only if it has
    # the same number of slashes as the route's prefix and template together.
    return path.count("/")


def _nearness(path: str, template: str) -> tuple[int, int, int]:
    """How near ``path`` comes to a path template, walking segments from the left: (segments
    matched, a parameter matching any, characters shared with the first literal that differs,
    literal segments matched).

    >>> _nearness("/v1/videos/x/remix", "/v1/videos/{task_id}/content")
    (3, 0, 2)
    >>> _nearness("/v1/video/generationz", "/v1/video/generations")
    (2, 10, 2)
    """
    literal = wildcard = 0
    for got, want in zip(path.strip("/").split("/"), template.strip("/").split("/"), strict=False):
        if want.startswith("{"):
            wildcard += 1
        elif got == want:
            literal += 1
        else:
            return literal + wildcard, _common(got, want), literal
    return literal + wildcard, 0, literal


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Service:
    """The fake as a function from request to response, over every mounted face.

    ``faces``: face names or :class:`~mockserver.faces.Mount` values (default: every registered
    face at the root, plus the path prefixes their contracts declare). ``keys``, ``key_pairs``,
    ``strict`` and ``slots`` become each face's :class:`~mockserver.faces.FaceSettings` (a
    ``Mount`` may carry its own). ``admin``: serve ``/__mock__/`` (the control plane);
    ``admin_token``: when set, admin calls must send it in ``X-Mock-Admin-Token``.

    >>> from mockserver import Engine, VirtualClock
    >>> service = Service(Engine(clock=VirtualClock()))
    >>> service.handle_simple("GET", "/openapi.json").status
    200
    >>> service.face.name  # the first mounted face renders errors no face claims
    'gateway'
    """

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        faces: Sequence[str | Mount] | None = None,
        keys: Collection[str] | None = None,
        key_pairs: Mapping[str, str] | None = None,
        strict: bool = False,
        slots: int | None = None,
        callback_hosts: Collection[str] | None = None,
        admin: bool = True,
        admin_token: str | None = None,
        allowed_hosts: Collection[str] = (),
        public_base_url: str | None = None,
    ) -> None:
        self.engine = engine if engine is not None else Engine()
        self.admin = admin
        self._admin_token: str | None = None
        self.admin_token = admin_token
        self._openapi: bytes | None = None
        self._public_base_url = public_base_url
        #: host names an admin request's ``Host`` may carry besides loopback names, the bound
        #: address, the public base URL's and the faces' provider hosts (DNS-rebinding guard)
        self.allowed_hosts: set[str] = {host_name(h) for h in allowed_hosts}
        #: bytes of request bodies the Starlette door holds at once, over every request
        #: (excess requests wait up to ``body_wait_seconds``, then get the face's 503)
        self.max_body_bytes_in_flight = MAX_BODY_BYTES_IN_FLIGHT
        self.body_wait_seconds = BODY_WAIT_SECONDS
        #: a body that sends nothing for this long is answered 408 and its budget released
        self.body_idle_seconds = BODY_IDLE_SECONDS
        #: called after an answer whenever callbacks are owed (doors deliver them: the kit
        #: through its router, a live server from a worker thread it starts on first use)
        self.on_deliveries: Callable[[], object] | None = None
        self._mounts = self._mounts_for(faces)
        self.configure(keys=keys, key_pairs=key_pairs, strict=strict, slots=slots, callback_hosts=callback_hosts)
        self.engine.fault_check = self.check_fault

    @staticmethod
    def _mounts_for(faces: Sequence[str | Mount] | None) -> tuple[Mount, ...]:
        if faces is None:
            mounts: list[Mount] = []
            for name in face_names():
                mounts.append(Mount(name))
                # A contract may list prefixes it is also served under (Kling's native routes
                # under /kling on a gateway), each optionally authenticated as another face.
                # (A face's contract is its folder's: read here without building the face.)
                for entry in load_contract(name).index.get("mounts", {}).get("prefixes", []):
                    if entry.get("prefix") and entry.get("default", True):
                        mounts.append(
                            Mount(name, prefix=str(entry["prefix"]), options={"auth": entry.get("auth", name)})
                        )
            return tuple(mounts)
        out = tuple(Mount(f) if isinstance(f, str) else f for f in faces)
        if not out:
            raise ValueError("mount at least one face")
        for mount in out:
            if mount.prefix and (not mount.prefix.startswith("/") or mount.prefix.endswith("/")):
                raise ValueError(f"mount prefix {mount.prefix!r} must start with '/' and not end with one")
        return out

    def configure(
        self,
        *,
        keys: Collection[str] | None = None,
        key_pairs: Mapping[str, str] | None = None,
        strict: bool = False,
        slots: int | None = None,
        callback_hosts: Collection[str] | None = None,
    ) -> None:
        """Replace every face's settings (same meaning as the constructor's arguments).

        A session-wide live server serves tests that each want their own settings; the route
        table is rebuilt, so the change applies to the next request.

        >>> from mockserver import Engine, VirtualClock
        >>> service = Service(Engine(clock=VirtualClock()))
        >>> service.configure(keys=["*"], strict=True)
        >>> service.face.settings.strict, service.face.settings.keys
        (True, ('*',))
        """
        base = FaceSettings(
            keys=tuple(keys) if keys is not None else None,
            key_pairs=dict(key_pairs) if key_pairs is not None else None,
            strict=strict,
            slots=slots,
        )
        if callback_hosts is not None:
            base = replace(base, callback_hosts=tuple(callback_hosts))
        self.settings = base
        mounted: list[tuple[Mount, Face]] = []
        built: dict[tuple[str, int], Face] = {}

        def face_of(name: str, settings: FaceSettings) -> Face:
            # one face per (name, settings object): a mount with its own settings gets its own
            face = built.get((name, id(settings)))
            if face is None:
                face = built[(name, id(settings))] = make_face(name, settings)
                face.attach(self.engine)
            return face

        for mount in self._mounts:
            mounted.append((mount, face_of(mount.face, mount.settings or base)))
        routes = []
        for mount, face in mounted:
            handlers = face.handlers()
            auth_name = str(mount.options.get("auth", face.name))
            guard = face if auth_name == face.name else face_of(auth_name, mount.settings or base)
            for op in face.contract.operations.values():
                methods = (op.method, "HEAD") if op.method == "GET" else (op.method,)
                head = mount.prefix + op.path.split("{", 1)[0]
                routes.append(_Route(mount.prefix, face, op, handlers[op.id], methods, guard, head))
        self._routes: tuple[_Route, ...] = tuple(routes)
        # Routing is the first work of every request (twice, for a door that asks the body
        # limit first): only routes whose path has as many segments are tried, in table order.
        by_slashes: dict[int, list[_Route]] = {}
        for route in routes:
            by_slashes.setdefault(_slashes(route.prefix + route.operation.path), []).append(route)
        self._by_slashes: dict[int, tuple[_Route, ...]] = {n: tuple(rs) for n, rs in by_slashes.items()}
        self._last_match: tuple[Any, str, str, tuple[_Route, Mapping[str, str]] | None] | None = None
        self._mounted = tuple(mounted)
        #: the faces by name (the first mount of each)
        self.faces: dict[str, Face] = {}
        for _, face in mounted:
            self.faces.setdefault(face.name, face)
        # Every key and secret any mounted face accepts is redacted wherever it appears.
        self.engine.journal.add_secrets(secret for face in built.values() for secret in face.secrets())
        #: the first mounted face: it renders the errors of requests no face claims
        self.face: Face = mounted[0][1]
        self.contract = self.face.contract
        #: the largest body any mounted face accepts (each route applies its own face's limit)
        self.max_body_bytes = max(f.contract.max_body_bytes for f in self.faces.values())
        self.engine.max_json_depth = min(f.contract.max_json_depth for f in self.faces.values())
        self.engine.max_json_values = min(f.contract.max_json_values for f in self.faces.values())
        #: request header fields and their bytes (names and values), checked for every door
        self.max_headers = min(f.contract.max_headers for f in self.faces.values())
        self.max_header_bytes = min(f.contract.max_header_bytes for f in self.faces.values())
        self._provider_hosts = frozenset(
            host_name(urlsplit(url).netloc) for f in self.faces.values() for url in f.contract.base_urls
        )
        self._openapi = None

    @staticmethod
    def callback_retries(face: Face) -> tuple[float, ...]:
        """Seconds to wait before each retry of a failed callback (the face's contract)."""
        return face.contract.callback_retry_delays

    @property
    def admin_token(self) -> str | None:
        """The token admin calls must send in ``X-Mock-Admin-Token`` (None: loopback only)."""
        return self._admin_token

    @admin_token.setter
    def admin_token(self, token: str | None) -> None:
        self._admin_token = token
        if token:
            self.engine.journal.add_secrets([token])

    @property
    def public_base_url(self) -> str | None:
        """Where result links point when a door vouches for no address of its own, and the
        OpenAPI document's first ``servers`` entry (a live server sets its bound or configured
        URL; the Host header is never used for links)."""
        return self._public_base_url

    @public_base_url.setter
    def public_base_url(self, url: str | None) -> None:
        if url != self._public_base_url:
            self._public_base_url = url
            self._openapi = None

    @property
    def head_limit(self) -> int:
        """Bytes a door reads of a request head (request line and headers) before it answers
        ``headers_too_large`` without reading on: the header bound plus each field's ``: `` and
        CRLF plus 8 KiB for the request line."""
        return self.max_header_bytes + 4 * self.max_headers + 8192

    def check_bind(self, host: str) -> None:
        """Raise :class:`AdminExposed` when serving this service on ``host`` would expose the
        admin API without a token (:func:`admin_exposure`: every door that binds asks this)."""
        reason = admin_exposure(host, admin=self.admin, admin_token=self.admin_token)
        if reason is not None:
            raise AdminExposed(reason)

    def bound(self, base_url: str) -> None:
        """A door now listens at ``base_url``: its host is recognised in admin ``Host``
        headers, and it becomes the public base URL unless one was configured."""
        if self.public_base_url is None:
            self.public_base_url = base_url
        self.allowed_hosts.add(host_name(urlsplit(base_url).netloc))

    def recognised_host(self, host: str, server: str | None = None) -> bool:
        """Whether an admin request's ``Host`` names this server: loopback, the address the
        request arrived on (``server``), the bound address, the public base URL's host, a
        configured name, or a face's provider host (a rebinding attacker controls none)."""
        name = host_name(host)
        if is_loopback(name) or name in self.allowed_hosts or name in self._provider_hosts:
            return True
        if server is not None and name == host_name(server if ":" not in server else f"[{server}]"):
            return True
        public = self.public_base_url
        return public is not None and name == host_name(urlsplit(public).netloc)

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """What is served where: the face of each mount, and its path prefix."""
        return self._mounts

    def check_fault(self, plan: FaultPlan) -> None:
        """Refuse a fault plan no mounted face can carry out, naming what would work."""
        matching = [
            (face, ops) for face in self.faces.values() if (ops := face.contract.operations_for(plan.operation))
        ]
        if not matching:
            known = sorted(
                {n for f in self.faces.values() for op in f.contract.operations.values() for n in (op.id, op.verb)}
            )
            raise ValueError(f"unknown operation {plan.operation!r}; known: '*', {', '.join(known)}")
        if plan.error is None:
            return
        # A plan fires on the faces that can render its error; at least one must.
        if not any(face.contract.resolve_error(plan.error) is not None for face, _ in matching):
            known = sorted({n for face, _ in matching for n in (*face.contract.errors, *face.contract.faults)})
            faces = ", ".join(face.name for face, _ in matching)
            raise ValueError(
                f"unknown error {plan.error!r} for operation {plan.operation!r} (faces {faces}); "
                f"known: {', '.join(known)}"
            )

    @property
    def openapi_bytes(self) -> bytes:
        if self._openapi is None:
            mounted = [(m.prefix, f.contract) for m, f in self._mounted]
            self._openapi = dump_json(build_openapi(mounted, server_url=self.public_base_url))
        return self._openapi

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one request. Never raises for anything a client can send."""
        headers = request.headers
        size = 0
        for name, value in headers:
            size += len(name) + len(value)
        if len(headers) > self.max_headers or size > self.max_header_bytes:
            return self.refuse_head(request, fields=len(headers), size=size)
        if request.public_base_url is None and self.public_base_url is not None:
            request = replace(request, public_base_url=self.public_base_url)
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
        if len(request.body) > MAX_STRING:  # long strings: the store and the journal hash each once
            with marker_scope():
                handled = self._answer(request, size)
        else:
            handled = self._answer(request, size)
        if self.on_deliveries is not None and self.engine.has_open_deliveries():
            self.on_deliveries()
        return handled.response

    def _answer(self, request: ApiRequest, header_bytes: int) -> Handled:
        handled, face = self._route(request)
        if request.method == "HEAD" and handled.response.body:
            handled = replace(handled, response=_headless(request, handled.response))
        self._record(request, handled, face, long_headers=header_bytes > MAX_STRING)
        return handled

    def refuse_head(self, request: ApiRequest, *, fields: int, size: int, partial: bool = False) -> ApiResponse:
        """The face's ``headers_too_large`` for a head past the bounds (journaled with its
        headers cut to the bound and shortened). ``partial``: the door stopped reading it."""
        bound = f"(at most {self.max_headers} fields and {self.max_header_bytes} bytes of names and values)"
        if partial:
            detail = f"a request head of over {size} bytes, not read further {bound}"
        else:
            detail = f"{fields} fields and {size} bytes of names and values {bound}"
        return self.door_error(request, "headers_too_large", detail, rule="door.headers")

    def door_error(
        self,
        request: ApiRequest,
        key: str,
        detail: str,
        *,
        rule: str,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> ApiResponse:
        """A door's refusal before the service could read the request (a head past its bound,
        a body over the in-flight budget or stalled): the catalogue entry ``key`` in the face
        nearest the path, with ``connection: close``, journaled with ``rule`` (the request's
        headers cut to the bound and shortened; its body, never read whole, left out)."""
        face = self.face_for(request)
        response = face.error(key, detail=detail, headers=(*headers, ("connection", "close")))
        kept = replace(request, headers=request.headers[: self.max_headers], body=b"")
        self._record(kept, Handled(response, None, rule=rule), face, long_headers=True)
        return response

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

    def body_limit(self, method: str, path: str) -> int:
        """The body size the face answering ``method path`` accepts (its contract's limit)."""
        if path.startswith(_ADMIN_PREFIX):
            return self.face.contract.max_body_bytes
        found = self._find(method, path)
        face = found[0].face if found is not None else self._fallback(path, "")
        return face.contract.max_body_bytes

    def face_for(self, request: ApiRequest) -> Face:
        """The face that renders an answer no route claims: the longest mount prefix, then a face
        whose contract names the host, then the nearest path template, else the first face.

        >>> from mockserver import Engine, VirtualClock
        >>> service = Service(Engine(clock=VirtualClock()))
        >>> [service.face_for(ApiRequest.build("POST", "http://127.0.0.1" + p, [], b"")).name
        ...  for p in ("/v1/video/generationz", "/v1/videos/text2video/1/x", "/v1/videos/task_1/remix")]
        ['gateway', 'official', 'openai']
        """
        return self._fallback(request.path, request.host.split("/", 1)[0])

    def _fallback(self, path: str, host: str) -> Face:
        best, best_score = self.face, (-1, -1, -1, -1, -1)
        for mount, face in self._mounted:
            if mount.prefix and not path.startswith(mount.prefix + "/"):
                continue
            rest = path[len(mount.prefix) :]
            own_host = any(urlsplit(url).netloc == host for url in face.contract.base_urls)
            near = max((_nearness(rest, op.path) for op in face.contract.operations.values()), default=(0, 0, 0))
            score = (len(mount.prefix), int(own_host), *near)
            if score > best_score:
                best, best_score = face, score
        return best

    def match(self, method: str, path: str) -> tuple[Face, Operation, dict[str, str]] | None:
        """The face and operation that would answer ``method path`` (None: no route does).

        >>> from mockserver import Engine, VirtualClock
        >>> face, op, params = Service(Engine(clock=VirtualClock())).match("GET", "/v1/video/generations/t1")
        >>> face.name, op.id, params
        ('gateway', 'video_generations.get', {'task_id': 't1'})
        """
        found = self._find(method, path)
        return None if found is None else (found[0].face, found[0].operation, dict(found[1]))

    def _find(self, method: str, path: str) -> tuple[_Route, Mapping[str, str]] | None:
        """The route answering ``method path`` and its path parameters (None: no route does).

        Every door routes twice (for the body limit or the kit's own route, then to answer):
        the last match is kept, with the table it came from, so the second lookup is one
        comparison. It is one tuple, replaced whole, so threads see an old match or a new one."""
        table = self._by_slashes
        last = self._last_match
        if last is not None and last[0] is table and last[1] == path and last[2] == method:
            return last[3]
        found = None
        for route in table.get(_slashes(path), ()):
            if not path.startswith(route.head):
                continue
            params = route.operation.match(path[len(route.prefix) :] if route.prefix else path)
            if params is not None and method in route.methods:
                found = (route, params)
                break
        self._last_match = (table, path, method, found)
        return found

    # -- internals ---------------------------------------------------------------------------

    def _route(self, request: ApiRequest) -> tuple[Handled, Face]:
        path = request.path
        size = len(request.body)
        found = self._find(request.method, path)
        if found is not None:
            route, params = found
            limit = route.face.contract.max_body_bytes
            return self._call(route, request, params, request.oversize or size > limit), route.face
        allowed: list[str] = []  # no route takes the method: the routes that take the path say which do
        for route in self._by_slashes.get(_slashes(path), ()):
            if path.startswith(route.head) and route.operation.match(path[len(route.prefix) :]) is not None:
                allowed.extend(m for m in route.methods if m not in allowed)
        face = self.face_for(request)
        limit = face.contract.max_body_bytes
        if request.oversize or size > limit:
            return Handled(face.error("body_too_large", detail=str(limit)), None), face
        if allowed:
            detail = f"{request.method} not allowed on {request.path[:200]}; allowed: {', '.join(allowed)}"
            response = face.error("method_not_allowed", detail=detail, headers=(("allow", ", ".join(allowed)),))
            return Handled(response, None), face
        return Handled(face.error("not_found", detail=f"{request.method} {request.path[:200]}"), None), face

    def _call(self, route: _Route, request: ApiRequest, params: Mapping[str, str], oversize: bool) -> Handled:
        face, op = route.face, route.operation
        if oversize:
            return Handled(face.error("body_too_large", detail=str(face.contract.max_body_bytes)), op.id)
        account = ""
        if op.auth:
            found = route.guard.authenticate(request, self.engine)
            if isinstance(found, Refused):
                if route.guard is not face:  # refused in the guard's words, answered in this face's
                    status = found.response.status
                    # The catalogues share these keys: a missing header is answered as missing
                    # (Kling's 1001), any other refused key as invalid (1002), not as the first
                    # 401 of the face's catalogue.
                    wanted = "missing_api_key" if not request.header_values("authorization") else "invalid_api_key"
                    errors = face.contract.errors
                    key = (
                        wanted
                        if wanted in errors and errors[wanted].http_status == status
                        else next((k for k, e in errors.items() if e.http_status == status), "invalid_api_key")
                    )
                    return Handled(face.error(key, detail="the key is not accepted"), op.id, rule=found.rule)
                return Handled(found.response, op.id, rule=found.rule, param=found.param)
            account = found
        plan = self.engine.take_fault(op.id, op.verb, face.contract.resolve_error)
        if plan is not None and (injected := face.fault_response(plan, op)):
            return Handled(injected.with_delay(plan.latency), op.id, fault=plan.error)
        handled = route.handler(self.engine, request, params, account)
        if plan is not None:
            return replace(handled, response=handled.response.with_delay(plan.latency), fault="latency")
        return handled

    def _admin(self, request: ApiRequest) -> ApiResponse:
        face = self.face
        if self.admin_token is not None:
            # The token is the proof: only who was given it can send it, whatever the address.
            sent = request.header(ADMIN_TOKEN_HEADER) or ""
            if not hmac.compare_digest(
                sent.encode("utf-8", "surrogatepass"),
                self.admin_token.encode("utf-8", "surrogatepass"),
            ):
                return face.error("admin_forbidden")
        else:
            # Without a token, the admin API answers only this machine's own clients: a peer on
            # another address (a server bound beyond loopback by any door) gets no control.
            if request.client is not None and not is_loopback(request.client):
                return face.error("admin_forbidden")
            origin = request.header("origin")
            if origin is not None and not _loopback_origin(origin):
                # A web page the developer visits may POST here (no preflight for text/plain);
                # browsers always name their Origin on POSTs.
                return face.error("admin_cross_origin", detail=repr(origin[:100]))
            if not self.recognised_host(request.host, request.server):
                # DNS rebinding: a page on evil.example re-resolved to 127.0.0.1 reads as
                # same-origin (no Origin on its GETs), but its Host still says evil.example.
                return face.error("admin_unknown_host", detail=repr(request.host[:100]))
        limit = face.contract.max_body_bytes
        if request.oversize or len(request.body) > limit:
            return face.error("body_too_large", detail=str(limit))
        return admin.dispatch(self.engine, request, face.error)

    def _record(self, request: ApiRequest, handled: Handled, face: Face, *, long_headers: bool = False) -> None:
        response = handled.response
        headers = request.headers
        host = request.host
        if long_headers:  # values cut like body strings: the journal's per-string bound holds
            headers = tuple([(shorten(name), shorten(value)) for name, value in headers])
            host = shorten(host)
        # JSON bodies are kept as the bytes that crossed the wire and parsed when the journal is
        # read: bytes are invisible to the cyclic GC, while thousands of retained dicts made
        # every collection (and so every request) slower as the journal filled.
        request_body: Any
        if handled.request_json is None:
            request_body = shorten(request.body[:4096].decode("utf-8", "replace")) if request.body else None
        elif len(request.body) <= MAX_STRING and "json" in (request.header("content-type") or ""):
            # JSON too short to hold a long string: no marker needed (a form is journaled as
            # the fields the face read from it, below)
            request_body = request.body
        else:  # a form is journaled as the fields the face read from it
            request_body = journaled_json(handled.request_json, len(request.body))
        if response.payload is not None:  # rendered by ApiResponse.json: already exactly sized
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
            host,
            request.path,
            request.query,
            headers,
            request_body,
            response.status,
            response.headers,
            response_body,
            handled.task_id,
            handled.warnings,
            handled.fault,
            face.name,
            handled.rule,
            handled.param,
        )
