"""The fake in-process: an :class:`Engine` and a :class:`Service` behind respx routes.

No socket and no ASGI: a respx route's side effect turns the ``httpx.Request`` into an
:class:`~mockserver.ApiRequest`, calls :meth:`Service.handle` (the one handler every door
calls) and turns the :class:`~mockserver.ApiResponse` back into an ``httpx.Response``. That
works for sync ``httpx.Client`` and async ``httpx.AsyncClient`` alike, which an ASGI transport
cannot (a sync client cannot drive an ASGI app). Injected latency is spent on the engine's
clock: ``clock.sleep`` for sync clients, ``await clock.asleep`` for async ones, so a virtual
clock just moves and nothing really waits.

Two ways in, injection first (nothing process-wide changes)::

    api = KlingMock()
    client = httpx.Client(transport=api.transport(), base_url=api.base_url)

and patching, for code that builds its own client (respx's ``httpx`` mocker: every
``httpx.Client``/``AsyncClient`` sees the fake on the gateway's base URLs while the block runs;
other hosts pass through untouched unless ``assert_all_mocked=True``)::

    with KlingMock() as api:
        httpx.get("https://api.modelstream.ai/openapi.json")
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import httpx
import respx
from respx.models import Call, CallList

from kling_testkit._respx import IN_ASYNC as _IN_ASYNC
from kling_testkit._respx import FakeRoute as _FakeRoute
from kling_testkit._respx import Router as _Router
from mockserver import (
    ApiRequest,
    ApiResponse,
    Clock,
    Contract,
    Engine,
    FaultPlan,
    Journal,
    JournalEntry,
    Outcome,
    OutcomeRule,
    Progression,
    Service,
    TaskView,
    VirtualClock,
)
from mockserver.engine.journal import ContractWarning

if TYPE_CHECKING:
    from kling_testkit.transports import KlingTransport

__all__ = [
    "DEFAULT",
    "EngineControls",
    "KlingMock",
    "KlingRoute",
    "as_outcome",
    "as_progression",
    "mock",
]


class _Default:
    """The type of :data:`DEFAULT` (one instance; compares by identity)."""

    _instance: _Default | None = None

    def __new__(cls) -> _Default:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "kling_testkit.DEFAULT"

    def __reduce__(self) -> str:
        return "DEFAULT"


#: A side effect that means "let the fake answer". Not ``None``: in respx a side effect that
#: returns ``None`` means "this route did not match", and reusing it would mislead respx users.
DEFAULT: Final = _Default()

#: What a route's ``side_effect`` may be: a response, an exception (class or instance), a
#: callable ``(request, **path_params) -> response | DEFAULT`` (async callables too, for async
#: clients), :data:`DEFAULT`, or a sequence of those consumed one per call.
SideEffect = httpx.Response | BaseException | type[BaseException] | Callable[..., Any] | _Default | Iterable[Any]


def as_progression(value: Progression | str) -> Progression:
    """A :class:`Progression` from itself or its CLI spelling (``polls:2``, ``seconds:30``,
    ``manual``, ``immediate``).

    >>> as_progression("polls:3").polls
    3
    """
    return value if isinstance(value, Progression) else Progression.parse(value)


def as_outcome(value: Outcome | str) -> Outcome:
    """An :class:`Outcome` from itself or its CLI spelling (``succeeded``, ``failed``,
    ``failed:content_policy``).

    >>> as_outcome("failed:content_policy").reason
    'content_policy'
    """
    return value if isinstance(value, Outcome) else Outcome.parse(value)


def build_service(
    *,
    progression: Progression | str | None,
    outcome: Outcome | str | None,
    strict: bool,
    keys: Sequence[str] | None,
    seed: int | None,
    clock: Clock | None,
    journal_limit: int,
    admin_token: str | None = None,
) -> Service:
    """The engine and service behind every door of the kit, from the options they share."""
    engine = Engine(
        clock=clock if clock is not None else VirtualClock(),
        seed=seed,
        progression=as_progression(progression) if progression is not None else None,
        outcome=as_outcome(outcome) if outcome is not None else None,
        journal_limit=journal_limit,
    )
    return Service(engine, keys=keys, strict=strict, admin_token=admin_token)


class EngineControls:
    """The engine's controls under the admin API's names; shared by :class:`KlingMock` and the
    live server (which runs the same engine in this process).

    ``set_progression``/``set_outcome`` take values or their CLI spellings; ``arm_fault`` takes a
    :class:`FaultPlan` or its fields.

    >>> api = KlingMock()
    >>> api.set_progression("manual")
    >>> api.arm_fault(operation="video_generations.create", error="rate_limited", retry_after=5)
    1
    >>> client = api.client(headers={"Authorization": "Bearer sk-test"})
    >>> body = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
    >>> refused = client.post("/v1/video/generations", json=body)
    >>> refused.status_code, refused.headers["retry-after"], api.faults()[0]["exhausted"]
    (429, '5', True)
    >>> task_id = client.post("/v1/video/generations", json=body).json()["task_id"]
    >>> client.get(f"/v1/video/generations/{task_id}").json()["status"]  # manual: polls do not move it
    'queued'
    >>> api.advance(task_id).status.value, api.task(task_id).polls
    ('processing', 1)
    """

    engine: Engine

    @property
    def clock(self) -> Clock:
        """The engine's clock (a :class:`VirtualClock` unless one was passed in)."""
        return self.engine.clock

    @property
    def contract(self) -> Contract:
        return self.engine.contract

    @property
    def journal(self) -> Journal:
        """Every exchange the fake answered (``journal.entries(operation=, task_id=)``)."""
        return self.engine.journal

    def entries(self, *, operation: str | None = None, task_id: str | None = None) -> list[JournalEntry]:
        """Shorthand for ``journal.entries(...)``."""
        return self.engine.journal.entries(operation=operation, task_id=task_id)

    def warnings(self) -> list[tuple[JournalEntry, ContractWarning]]:
        """Every contract warning with the exchange that raised it (admin ``GET /warnings``)."""
        return self.engine.journal.warnings()

    def reset(self) -> None:
        """Forget tasks, policies, faults and the journal; rewind a virtual clock."""
        self.engine.reset()

    def advance_clock(self, seconds: float) -> float:
        """Move the virtual clock forward (admin ``POST /clock/advance``); returns the new time."""
        return self.engine.advance_clock(seconds)

    def set_progression(self, progression: Progression | str, task_id: str | None = None) -> None:
        """The default progression, or one task's (``"polls:2"``, ``Progression.manual()``...)."""
        self.engine.set_progression(as_progression(progression), task_id=task_id)

    def set_outcome(self, outcome: Outcome | str, task_id: str | None = None) -> None:
        """The default outcome, or one unfinished task's (``"failed:content_policy"``...)."""
        self.engine.set_outcome(as_outcome(outcome), task_id=task_id)

    def add_outcome_rule(self, rule: OutcomeRule | Mapping[str, Any]) -> None:
        """Tasks whose request matches ``rule.when`` (a JSON Schema) end with ``rule.outcome``."""
        self.engine.add_outcome_rule(rule if isinstance(rule, OutcomeRule) else OutcomeRule.from_json(rule))

    def policies(self) -> dict[str, Any]:
        """The default progression and outcome and the outcome rules in force, as JSON."""
        return self.engine.policies()

    def arm_fault(self, plan: FaultPlan | None = None, /, **fields: Any) -> int:
        """Arm a fault plan (or build one from ``fields``); returns its id."""
        if plan is None:
            plan = FaultPlan(**fields)
        elif fields:
            raise TypeError("pass a FaultPlan or its fields, not both")
        return self.engine.arm_fault(plan)

    def faults(self) -> list[dict[str, Any]]:
        """The armed fault plans with their ids and seen/fired counts, as JSON."""
        return self.engine.faults()

    def clear_faults(self) -> None:
        """Disarm every fault plan (tasks, policies and the journal stay)."""
        self.engine.clear_faults()

    def tasks(self) -> list[TaskView]:
        """Every task, oldest first (reading does not count as a poll)."""
        return self.engine.tasks()

    def task(self, task_id: str) -> TaskView:
        """One task (reading does not count as a poll); ``TaskNotFound`` if unknown."""
        return self.engine.task(task_id)

    def advance(self, task_id: str) -> TaskView:
        """Move one task a step now, whatever its progression (the ``manual`` verb)."""
        return self.engine.advance(task_id)


class KlingRoute:
    """Calls of one operation, respx-style, and their side effect.

    ``side_effect`` answers instead of the fake: an ``httpx.Response``, an exception (class or
    instance; ``httpx.ConnectError`` simulates a dropped connection), a callable
    ``(request, **path_params)``, or a list of those used one per call. :data:`DEFAULT`
    (returned, or as a list item) lets the fake answer. Answers that bypass the fake are not
    in the journal; use :meth:`KlingMock.arm_fault` for faults the journal should see.

    >>> api = KlingMock()
    >>> route = api.routes["video_generations.create"]
    >>> route.side_effect = [httpx.Response(503), DEFAULT]  # an outage, then the fake answers
    >>> client = api.client(headers={"Authorization": "Bearer sk-test"})
    >>> body = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
    >>> [client.post("/v1/video/generations", json=body).status_code for _ in range(2)]
    [503, 200]
    >>> route.call_count, route.calls.last.response.json()["status"], len(api.entries())
    (2, 'queued', 1)
    """

    def __init__(self, operation: str) -> None:
        self.operation = operation
        self.return_value: httpx.Response | None = None
        self._side_effect: Any = None
        self._calls: CallList | None = None  # respx's CallList costs ~35 µs: built on first use

    @property
    def side_effect(self) -> Any:
        return self._side_effect

    @side_effect.setter
    def side_effect(self, value: SideEffect | None) -> None:
        if isinstance(value, (Sequence, Iterator)) and not isinstance(value, (str, bytes)):
            value = iter(value)
        self._side_effect = value

    @property
    def calls(self) -> CallList:
        """respx ``CallList``: ``calls.last.request``, ``calls.last.response``, ``call_count``."""
        if self._calls is None:
            self._calls = CallList(name=self.operation)
        return self._calls

    @property
    def call_count(self) -> int:
        return len(self._calls) if self._calls is not None else 0

    @property
    def called(self) -> bool:
        return self.call_count > 0

    def reset(self) -> None:
        """Forget calls, side effect and return value."""
        self._calls = None
        self._side_effect = None
        self.return_value = None

    def __repr__(self) -> str:
        return f"<KlingRoute {self.operation} calls={self.call_count}>"

    def _record(self, request: httpx.Request, response: httpx.Response | None) -> None:
        self.calls.append(Call(request, response))

    def _effect(self) -> Any:
        effect = self._side_effect
        if isinstance(effect, Iterator):
            try:
                return next(effect)
            except StopIteration:
                raise AssertionError(f"side_effect list of {self.operation} is exhausted") from None
        return effect


class _Namespace:
    """``api.video_generations.create`` for ``api.routes["video_generations.create"]``."""

    def __init__(self, routes: Mapping[str, KlingRoute], resource: str) -> None:
        self._routes = routes
        self._resource = resource

    def __getattr__(self, action: str) -> KlingRoute:
        try:
            return self._routes[f"{self._resource}.{action}"]
        except KeyError:
            raise AttributeError(f"no operation {self._resource}.{action}") from None


_TRANSPORT_ERRORS = (httpx.RequestError,)


def _normalise_base(url: str) -> tuple[str, str, str]:
    """(scheme, netloc, path prefix) of a base URL, as httpx spells a request's URL."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"base URL must be http(s)://host[:port][/prefix], got {url!r}")
    if parsed.query or parsed.fragment:
        raise ValueError(f"base URL must not have a query or fragment, got {url!r}")
    return parsed.scheme, parsed.netloc.decode("ascii"), parsed.raw_path.decode("ascii").rstrip("/")


class KlingMock(EngineControls):
    """The Kling fake in-process: engine, service, respx router and per-operation routes.

    Cheap to build (well under a millisecond), so a ``@given`` test can make one per example::

        with kling_testkit.mock(progression="polls:2") as api:
            ...

    ``base_urls``: where the fake answers (default: the contract's, ``https://api.modelstream.ai``;
    a base may carry a path prefix). ``progression``/``outcome``: defaults for new tasks.
    ``strict``: refuse unknown request fields (400) instead of dropping them with a warning.
    ``keys``: accepted API keys (default ``sk-test``; ``["*"]`` accepts any). ``seed``: task
    ids and video seeds (fixed by default, so runs are reproducible). ``clock``: default a
    fresh :class:`VirtualClock`. ``assert_all_mocked``: while patching, refuse requests to other
    hosts instead of letting them through.

    >>> api = KlingMock(progression="immediate")
    >>> with httpx.Client(transport=api.transport(), base_url=api.base_url) as client:
    ...     created = client.post("/v1/video/generations", headers={"Authorization": "Bearer sk-test"},
    ...                           json={"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]})
    >>> created.json()["status"], api.video_generations.create.call_count
    ('completed', 1)
    """

    def __init__(
        self,
        *,
        base_urls: str | Sequence[str] | None = None,
        progression: Progression | str | None = None,
        outcome: Outcome | str | None = None,
        strict: bool = False,
        keys: Sequence[str] | None = None,
        seed: int | None = 0,
        clock: Clock | None = None,
        journal_limit: int = 10_000,
        assert_all_mocked: bool = False,
    ) -> None:
        self.service = build_service(
            progression=progression,
            outcome=outcome,
            strict=strict,
            keys=keys,
            seed=seed,
            clock=clock,
            journal_limit=journal_limit,
        )
        self.engine = self.service.engine
        contract = self.engine.contract
        if base_urls is None:
            base_urls = contract.index["base_urls"]
        if isinstance(base_urls, str):
            base_urls = [base_urls]
        if not base_urls:
            raise ValueError("base_urls must name at least one base URL")
        self._bases = tuple(_normalise_base(url) for url in base_urls)
        self.base_urls = tuple(f"{s}://{n}{p}" for s, n, p in self._bases)
        self._operations = [(op.id, op.method, op) for op in contract.operations.values()]
        self.routes: dict[str, KlingRoute] = {op_id: KlingRoute(op_id) for op_id, _, _ in self._operations}
        #: requests under a base URL that match no operation (admin, /openapi.json, 404s)
        self.routes["*"] = KlingRoute("*")
        self.assert_all_mocked = assert_all_mocked
        self._router: _Router | None = None
        self._started = False

    # -- wiring ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The first base URL (what a client under test should be configured with)."""
        return self.base_urls[0]

    @property
    def router(self) -> respx.MockRouter:
        """The respx router (one route over every base URL; built on first use)."""
        if self._router is None:
            pattern = "^(?:" + "|".join(re.escape(url) for url in self.base_urls) + ")(?:[/?#]|$)"
            router = _Router(assert_all_called=False, assert_all_mocked=self.assert_all_mocked, using="httpx")
            router.add(_FakeRoute(self._side_effect, url__regex=pattern), name="kling")
            if not self.assert_all_mocked:
                router.route(name="pass_through").pass_through()
            self._router = router
        return self._router

    def transport(self) -> KlingTransport:
        """An ``httpx.MockTransport`` serving this fake to a sync or async client (injection)."""
        from kling_testkit.transports import KlingTransport

        return KlingTransport(self)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An ``httpx.Client`` on the fake (``base_url`` defaults to :attr:`base_url`)."""
        kwargs.setdefault("base_url", self.base_url)
        return httpx.Client(transport=self.transport(), **kwargs)

    def async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` on the fake (``base_url`` defaults to :attr:`base_url`)."""
        kwargs.setdefault("base_url", self.base_url)
        return httpx.AsyncClient(transport=self.transport(), **kwargs)

    def __getattr__(self, resource: str) -> _Namespace:
        # Only reached for unknown attributes: route namespaces such as ``api.video_generations``.
        if resource.startswith("_"):
            raise AttributeError(resource)
        routes = self.__dict__.get("routes", {})
        if any(op_id.startswith(resource + ".") for op_id in routes):
            return _Namespace(routes, resource)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {resource!r}")

    # -- patching ----------------------------------------------------------------------------

    def start(self) -> KlingMock:
        """Patch httpx (respx) so every client sees the fake on the base URLs."""
        if not self._started:
            self.router.start()
            self._started = True
        return self

    def stop(self) -> None:
        """Undo :meth:`start`; call records and the journal stay readable."""
        if self._started:
            self._started = False
            self.router.stop(clear=False, reset=False, quiet=True)

    def __enter__(self) -> KlingMock:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> KlingMock:
        return self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Reset the engine (tasks, policies, faults, journal, clock) and every route's calls
        and side effects."""
        super().reset()
        for route in self.routes.values():
            route.reset()

    def __repr__(self) -> str:
        # engine.tasks() would take the lock and bring every task up to the clock (a repr in a
        # debugger or a log line must not change state); the store's size is the count wanted.
        return f"<KlingMock {', '.join(self.base_urls)} tasks={len(self.engine._tasks)}>"

    # -- the door ----------------------------------------------------------------------------

    def _api_request(self, request: httpx.Request) -> ApiRequest:
        url = request.url
        scheme = url.scheme
        netloc = url.netloc.decode("ascii")
        raw = url.raw_path.decode("ascii")
        path, _, query = raw.partition("?")
        host = netloc
        for base_scheme, base_netloc, prefix in self._bases:
            if prefix and base_scheme == scheme and base_netloc == netloc and path.startswith(prefix):
                # The prefix travels in ``host`` so that media URLs and the journal keep it.
                path = path[len(prefix) :] or "/"
                host = netloc + prefix
                break
        return ApiRequest(
            method=request.method,
            scheme=scheme,
            host=host,
            path=path or "/",
            query=query,
            headers=tuple(
                [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in request.headers.raw]
            ),
            body=request.content,
        )

    def _route_for(self, api_request: ApiRequest) -> tuple[KlingRoute, dict[str, str]]:
        for op_id, method, op in self._operations:
            params = op.match(api_request.path)
            if params is not None and (
                api_request.method == method or (method == "GET" and api_request.method == "HEAD")
            ):
                return self.routes[op_id], params
        return self.routes["*"], {}

    def _side_effect(self, request: httpx.Request) -> httpx.Response | Awaitable[httpx.Response]:
        api_request = self._api_request(request)
        route, params = self._route_for(api_request)
        in_async = _IN_ASYNC.get()
        try:
            outcome = self._user_effect(route, request, params)
        except BaseException:
            route._record(request, None)
            raise
        if outcome is DEFAULT:
            return self._answer(route, request, api_request, in_async)
        if isinstance(outcome, httpx.Response):
            route._record(request, outcome)
            return outcome
        if not in_async:
            raise TypeError(f"side effect of {route.operation} returned an awaitable to a sync client")
        return self._await_effect(route, request, api_request, outcome)

    async def _await_effect(
        self, route: KlingRoute, request: httpx.Request, api_request: ApiRequest, awaitable: Awaitable[Any]
    ) -> httpx.Response:
        try:
            result = _checked(route, request, await awaitable, allow_awaitable=False)
        except BaseException:
            route._record(request, None)
            raise
        if result is DEFAULT:
            answer = self._answer(route, request, api_request, True)
            return await answer if not isinstance(answer, httpx.Response) else answer
        assert isinstance(result, httpx.Response)
        route._record(request, result)
        return result

    def _user_effect(self, route: KlingRoute, request: httpx.Request, params: dict[str, str]) -> Any:
        effect = route._effect()
        if effect is None:
            if route.return_value is not None:
                return _bind(route.return_value, request)
            return DEFAULT
        if effect is DEFAULT:
            return DEFAULT
        if isinstance(effect, BaseException):
            raise effect
        if isinstance(effect, type) and issubclass(effect, BaseException):
            if issubclass(effect, _TRANSPORT_ERRORS):
                raise effect(f"Mock Error ({route.operation})", request=request)
            raise effect()
        if isinstance(effect, httpx.Response):
            return _bind(effect, request)
        if callable(effect):
            return _checked(route, request, effect(request, **params), allow_awaitable=True)
        raise TypeError(f"unsupported side_effect item for {route.operation}: {effect!r}")

    def _answer(
        self, route: KlingRoute, request: httpx.Request, api_request: ApiRequest, in_async: bool
    ) -> httpx.Response | Awaitable[httpx.Response]:
        answer = self.service.handle(api_request)
        response = _to_httpx(answer, request)
        if answer.delay:
            if in_async:
                return self._after(route, request, answer.delay, response)
            self.engine.clock.sleep(answer.delay)
        route._record(request, response)
        return response

    async def _after(
        self, route: KlingRoute, request: httpx.Request, delay: float, response: httpx.Response
    ) -> httpx.Response:
        await self.engine.clock.asleep(delay)
        route._record(request, response)
        return response


def _checked(route: KlingRoute, request: httpx.Request, result: Any, *, allow_awaitable: bool) -> Any:
    if result is DEFAULT:
        return result
    if isinstance(result, httpx.Response):
        return _bind(result, request)
    if allow_awaitable and hasattr(result, "__await__"):
        return result
    if result is None:
        raise TypeError(
            f"side effect of {route.operation} returned None; return kling_testkit.DEFAULT to let the fake "
            "answer (None means 'no match' in respx, which this route does not use)"
        )
    raise TypeError(f"side effect of {route.operation} must return an httpx.Response or DEFAULT, got {result!r}")


def _bind(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    try:
        response.request  # noqa: B018 - httpx's public way to ask: RuntimeError when unbound
    except RuntimeError:
        response.request = request
        return response
    # A response reused across calls: answer with a copy bound to this request.
    return httpx.Response(response.status_code, headers=response.headers, content=response.content, request=request)


def _to_httpx(answer: ApiResponse, request: httpx.Request) -> httpx.Response:
    # A ByteStream, not ``content=``: the service's headers already carry Content-Length, and
    # httpx's header defaulting would scan them again; respx reads the stream when it resolves.
    return httpx.Response(answer.status, headers=answer.headers, stream=httpx.ByteStream(answer.body), request=request)


def mock(**options: Any) -> KlingMock:
    """A :class:`KlingMock` (same options); use it as a context manager to patch httpx.

    >>> with mock(progression="immediate") as api:
    ...     httpx.get(api.base_url + "/openapi.json").status_code
    200
    """
    return KlingMock(**options)
