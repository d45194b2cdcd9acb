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
a request to any other host fails with :class:`UnmatchedRequest` unless that host is passed
through explicitly with ``pass_through``, so nothing leaves the machine by mistake)::

    with KlingMock() as api:
        httpx.get("https://api.modelstream.ai/openapi.json")

``virtual_time=True`` also makes the client's sleeps and clock reads follow the fake's virtual
clock while it patches (see :mod:`kling_testkit._virtual_time`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import httpx
import respx
from respx.models import AllMockedAssertionError, Call, CallList

from kling_testkit._httpx import read_response
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
from mockserver.callbacks import deliver_due
from mockserver.engine import Delivery
from mockserver.engine.journal import ContractWarning
from mockserver.faces import Mount
from mockserver.http import decode_headers
from mockserver.service import host_name

if TYPE_CHECKING:
    from kling_testkit._httpx2 import KlingHttpx2Transport
    from kling_testkit._virtual_time import VirtualTime
    from kling_testkit.transports import KlingTransport

__all__ = [
    "DEFAULT",
    "EngineControls",
    "KlingMock",
    "KlingRoute",
    "UnmatchedRequest",
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


class UnmatchedRequest(AllMockedAssertionError):
    """A request that the patching fake neither serves nor passes through (it never left the machine).

    An ``AssertionError`` (respx's ``AllMockedAssertionError``), so it fails the test wherever it
    surfaces; the message names the URL, the base URLs the fake serves and how to let a host through.

    >>> with KlingMock() as api:
    ...     try:
    ...         httpx.get("http://api.modelstream.ai/openapi.json")  # http, not https
    ...     except UnmatchedRequest as refused:
    ...         print(str(refused)[:70])
    the Kling fake refused GET http://api.modelstream.ai/openapi.json (the
    >>> api.unmatched
    ['GET http://api.modelstream.ai/openapi.json']
    """


class _Refuse(respx.Route):
    """The last route: refuses whatever no other route took, naming the URL and what is served."""

    def __init__(self, refuse: Callable[[httpx.Request], None]) -> None:
        super().__init__()
        self._refuse = refuse

    def resolve(self, request: httpx.Request, **_context: Any) -> Any:
        self._refuse(request)


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


def pass_through_hosts(value: bool | str | Sequence[str] | None) -> tuple[str, ...]:
    """The hosts a patching fake lets through, from ``pass_through``: ``True`` or ``"*"`` for
    every host, a host (``"localhost"``), ``"host:port"`` or a URL, or a list of those.

    >>> pass_through_hosts(["localhost", "localhost:8080", "https://example.org/v1"])
    ('localhost', 'localhost:8080', 'example.org:443')
    >>> pass_through_hosts(True), pass_through_hosts(None)
    (('*',), ())
    """
    if value is None or value is False:
        return ()
    if value is True:
        return ("*",)
    if isinstance(value, str):
        entries: list[Any] = [value]
    elif isinstance(value, (list, tuple)):
        entries = list(value)
    else:
        raise ValueError(f"pass_through takes a host, a list of hosts, or True for every host; got {value!r}")
    hosts: list[str] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"pass_through takes host names, host:port or URLs (or True for all), got {entry!r}")
        entry = entry.strip()
        if entry == "*":
            return ("*",)
        try:
            url = httpx.URL(entry if "://" in entry else f"pass://{entry}")
        except httpx.InvalidURL as exc:
            raise ValueError(f"pass_through entry {entry!r} is not a host, host:port or URL: {exc}") from None
        if not url.host:
            raise ValueError(f"pass_through entry {entry!r} names no host")
        port = url.port or {"http": 80, "https": 443}.get(url.scheme)
        host = f"[{url.host}]" if ":" in url.host else url.host
        hosts.append(f"{host}:{port}" if port else host)
    return tuple(hosts)


def as_key_pairs(value: Mapping[str, str] | Iterable[str] | None) -> dict[str, str] | None:
    """Access key -> secret key from a mapping or ``"AK:SK"`` strings (the option's spelling).

    >>> as_key_pairs(["ak-1:secret-1"])
    {'ak-1': 'secret-1'}
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    pairs = {}
    for item in value:
        access, sep, secret = str(item).partition(":")
        if not sep or not access or not secret:
            raise ValueError(f"use ACCESS_KEY:SECRET_KEY, got {item!r}")
        pairs[access] = secret
    return pairs


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
    faces: Sequence[str | Mount] | None = None,
    key_pairs: Mapping[str, str] | Iterable[str] | None = None,
    slots: int | None = None,
    callback_hosts: Sequence[str] | None = None,
) -> Service:
    """The engine and service behind every door of the kit, from the options they share."""
    engine = Engine(
        clock=clock if clock is not None else VirtualClock(),
        seed=seed,
        progression=as_progression(progression) if progression is not None else None,
        outcome=as_outcome(outcome) if outcome is not None else None,
        journal_limit=journal_limit,
    )
    return Service(
        engine,
        faces=faces,
        keys=keys,
        key_pairs=as_key_pairs(key_pairs),
        strict=strict,
        slots=slots,
        callback_hosts=callback_hosts,
        admin_token=admin_token,
    )


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
    service: Service

    @property
    def clock(self) -> Clock:
        """The engine's clock (a :class:`VirtualClock` unless one was passed in)."""
        return self.engine.clock

    @property
    def contract(self) -> Contract:
        """The contract of the first mounted face (``service.faces`` has every face)."""
        return self.service.contract

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
        """Move the virtual clock forward (admin ``POST /clock/advance``); returns the new time.
        Callbacks that fall due on the way are delivered."""
        now = self.engine.advance_clock(seconds)
        self.deliver_callbacks()
        return now

    def deliveries(self) -> list[Delivery]:
        """Every callback the engine queued, oldest first, with each attempt's result (admin
        ``GET /callbacks``)."""
        return self.engine.deliveries()

    def deliver_callbacks(self) -> list[Delivery]:
        """Send the callbacks that are due now; returns them (doors call this themselves after
        every request and clock move)."""
        return []

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
        if effect is None:  # the usual route: spare the Iterator ABC check on every request
            return None
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
    fresh :class:`VirtualClock`. ``pass_through``: hosts that requests may reach for real while
    the fake patches httpx (``"localhost"``, ``"localhost:8080"``, a URL, a list, or ``True`` for
    every host); by default a request to any host but the fake's fails with
    :class:`UnmatchedRequest`. ``virtual_time``: while patching, the client's ``time.sleep``,
    ``asyncio.sleep`` and ``anyio.sleep`` advance the fake's clock at once and ``time.time()``/
    ``time.monotonic()`` follow it (:mod:`kling_testkit._virtual_time`).

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
        pass_through: bool | str | Sequence[str] | None = None,
        virtual_time: bool = False,
        assert_all_mocked: bool | None = None,
        faces: Sequence[str | Mount] | None = None,
        key_pairs: Mapping[str, str] | Iterable[str] | None = None,
        slots: int | None = None,
    ) -> None:
        if assert_all_mocked is not None:
            warnings.warn(
                "KlingMock(assert_all_mocked=...) is deprecated: other hosts are refused by default, "
                "and pass_through=True lets every host through",
                DeprecationWarning,
                stacklevel=2,
            )
            if pass_through is None and not assert_all_mocked:
                pass_through = True
        self.service = build_service(
            progression=progression,
            outcome=outcome,
            strict=strict,
            keys=keys,
            seed=seed,
            clock=clock,
            journal_limit=journal_limit,
            faces=faces,
            key_pairs=key_pairs,
            slots=slots,
            # in-process, a callback goes through the router, never to the network: any host
            callback_hosts=["*"],
        )
        self.engine = self.service.engine
        # Callbacks owed after an answer go out through this mock's router, in the test thread.
        self.service.on_deliveries = self.deliver_callbacks
        if base_urls is None:
            # Every mounted face's provider hosts: the gateway's and Kling's own three.
            base_urls = list(
                dict.fromkeys(url for face in self.service.faces.values() for url in face.contract.base_urls)
            )
        if isinstance(base_urls, str):
            base_urls = [base_urls]
        if not base_urls:
            raise ValueError("base_urls must name at least one base URL")
        self._bases = tuple(_normalise_base(url) for url in base_urls)
        self.base_urls = tuple(f"{s}://{n}{p}" for s, n, p in self._bases)
        # The hosts this mock answers for are its own names (admin calls through them are the
        # test's own, never a rebound page's).
        self.service.allowed_hosts.update(host_name(n) for _, n, _ in self._bases)
        self.routes: dict[str, KlingRoute] = {
            op_id: KlingRoute(op_id) for face in self.service.faces.values() for op_id in face.contract.operations
        }
        #: requests under a base URL that match no operation (admin, /openapi.json, 404s)
        self.routes["*"] = KlingRoute("*")
        self.pass_through = pass_through_hosts(pass_through)
        #: "METHOD URL" of every request the patching fake refused (the fixture fails a test that
        #: passed anyway, e.g. because the client under test swallowed the error)
        self.unmatched: list[str] = []
        if virtual_time and not isinstance(self.engine.clock, VirtualClock):
            raise ValueError("virtual_time=True needs the fake on a VirtualClock (the default clock)")
        self.virtual_time = virtual_time
        self._virtual: VirtualTime | None = None
        self._router: _Router | None = None
        self._served: re.Pattern[str] | None = None
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
            router = _Router(assert_all_called=False, assert_all_mocked=False, using="httpx")
            router.add(_FakeRoute(self._side_effect, pattern), name="kling")
            if self.pass_through == ("*",):
                router.route(name="pass_through").pass_through()
            else:
                for host in self.pass_through:
                    name, colon, port = host.rpartition(":")
                    if colon and port.isdigit() and not name.endswith(":"):
                        router.route(host=name.strip("[]"), port=int(port)).pass_through()
                    else:
                        router.route(host=host.strip("[]")).pass_through()
                router.add(_Refuse(self._refuse), name="unmatched")
            self._served = re.compile(pattern)
            self._router = router
        return self._router

    def _refuse(self, request: httpx.Request) -> None:
        url = str(request.url)
        self.unmatched.append(f"{request.method} {url}")
        hint = ""
        for base in self.base_urls:
            if httpx.URL(base).host == request.url.host:
                hint = f" (the host of {base}: check the scheme, port and path prefix)"
                break
        raise UnmatchedRequest(
            f"the Kling fake refused {request.method} {url}{hint}: it serves {', '.join(self.base_urls)}, "
            "and requests to other hosts are refused while it patches httpx (nothing left the machine). "
            "To let a host through: @pytest.mark.kling(pass_through=['host[:port]']), --kling-pass-through HOST, "
            "the kling_pass_through ini key, or kling_testkit.mock(pass_through=[...])"
        )

    def serves(self, url: httpx.URL | str) -> bool:
        """Whether ``url`` is under one of the fake's base URLs.

        >>> KlingMock().serves("https://api.modelstream.ai/v1/video/generations"), KlingMock().serves("http://x.test/")
        (True, False)
        """
        if self._served is None:
            _ = self.router
        assert self._served is not None
        return self._served.match(str(url)) is not None

    def transport(self) -> KlingTransport:
        """An ``httpx.MockTransport`` serving this fake to a sync or async client (injection)."""
        from kling_testkit.transports import KlingTransport

        return KlingTransport(self)

    def httpx2_transport(self) -> KlingHttpx2Transport:
        """The same, for ``httpx2`` clients (``httpx2.Client(transport=...)``; the OpenAI SDK's
        ``http_client``); imports ``httpx2``."""
        from kling_testkit._httpx2 import KlingHttpx2Transport

        return KlingHttpx2Transport(self)

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
        """Patch httpx (respx) so every client sees the fake on the base URLs; with
        ``virtual_time``, also patch the process's sleeps and clock reads onto the fake's clock."""
        if not self._started:
            self.router.start()
            self._started = True
            from kling_testkit import _httpx2_patch  # httpx2 clients too (imported only if used)

            _httpx2_patch.start(self)
            if self.virtual_time:
                from kling_testkit._virtual_time import VirtualTime

                assert isinstance(self.engine.clock, VirtualClock)
                try:
                    self._virtual = VirtualTime(self.engine.clock).start()
                except BaseException:
                    self.stop()
                    raise
        return self

    def stop(self) -> None:
        """Undo :meth:`start`; call records and the journal stay readable."""
        if self._virtual is not None:
            self._virtual.stop()
            self._virtual = None
        if self._started:
            self._started = False
            self.router.stop(clear=False, reset=False, quiet=True)
            from kling_testkit import _httpx2_patch

            _httpx2_patch.stop(self)

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

    # -- callbacks ---------------------------------------------------------------------------

    def deliver_callbacks(self) -> list[Delivery]:
        """Send due callbacks through this mock's respx router: a test's own route for the
        callback URL receives the POST (``api.router.post(url).respond(200)``); a URL no route
        matches is recorded as undelivered and never reaches the network."""
        self.service.public_base_url = self.base_url
        return deliver_due(self.service, self._send_callback, base_url=self.base_url)

    def _send_callback(self, url: str, body: bytes) -> int | str:
        request = httpx.Request("POST", url, content=body, headers={"content-type": "application/json"})
        # The test's own routes, in the order added; the fake's catch-all and pass-through
        # routes are skipped (a callback must never reach the network from here).
        for route in self.router.routes:
            if route.name in ("kling", "pass_through", "unmatched") or getattr(route, "_pass_through", False):
                continue
            try:
                prospect = route.match(request)
            except Exception as exc:  # a user's side effect raised: that is the receiver failing
                route.calls.record(request, None)
                return f"error: {type(exc).__name__}: {str(exc)[:200]}"
            if isinstance(prospect, httpx.Response):
                prospect.read()
                route.calls.record(request, prospect)
                return prospect.status_code
        return f"no route in the mock's router for POST {url[:200]} (add one: api.router.post(url))"

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
        # positional, in field order (a keyword each costs more than the field); routed here
        # only under one of this mock's base URLs: that base is the public one
        return ApiRequest(
            request.method,
            scheme,
            host,
            path or "/",
            query,
            decode_headers(request.headers.raw, lower=True),
            request.content,
            False,
            None,
            None,
            f"{scheme}://{host}",
        )

    def _route_for(self, api_request: ApiRequest) -> tuple[KlingRoute, dict[str, str]]:
        found = self.service.match(api_request.method, api_request.path)
        if found is None:
            return self.routes["*"], {}
        _, op, params = found
        return self.routes[op.id], params

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
    # Already read: the bytes are in memory, and httpx's read() walk cost a sixth of a create.
    return read_response(answer.status, answer.headers, answer.body, request)


def mock(**options: Any) -> KlingMock:
    """A :class:`KlingMock` (same options); use it as a context manager to patch httpx.

    >>> with mock(progression="immediate") as api:
    ...     httpx.get(api.base_url + "/openapi.json").status_code
    200
    """
    return KlingMock(**options)
