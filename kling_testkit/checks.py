"""Contract checks: small registered functions with one signature.

Every check is ``check(ctx: CheckContext, exchange: Exchange) -> None`` and raises
:class:`~kling_testkit.failures.ContractViolation` when the exchange breaks its rule. Checks
only *read* the context (every face's contract, and what earlier exchanges showed: each task's
status timeline, the last ``429`` per operation); the driver updates it after every exchange, so
a check never has to care about ordering. Checks are registered by name in :data:`CHECKS`
(Schemathesis-style), and pick themselves out of exchanges they do not apply to.

Every face (wire dialect) is checked against its own contract, and no check names a face: an
exchange's face and operation come from the recorded ``face`` field or from its URL matched
against every face's operations (a path prefix, such as a gateway's ``/kling`` mount, is
allowed); answers are read through the face's ``reader`` (JSON pointers to the task id, status,
result URL, failure and error code), its operations' verbs (``task.create``, ``task.get``...), its
response schemas, status vocabulary, timestamp unit and error catalogue.

Two sides, because two parties can break the contract:

- **server** checks judge answers: documented status codes, bodies against the response
  schemas (the envelope included), error bodies against the catalogue, lifecycle (legal,
  monotone, terminal final, result URL exactly when completed), stable ids, non-decreasing
  timestamps in the face's unit, ``Retry-After`` where the catalogue promises one;
- **client** checks judge requests and timing: request bodies against the request contract
  (schema and named rules), unknown fields (dropped silently by the server), whether
  ``Retry-After`` was waited out before the next call of the same operation, whether tokens
  were still valid when sent, and whether creates stayed within the account's concurrency slots.

``kling-testkit check`` runs all of them over a recording; ``verify`` runs the server side;
``assert_conforms(response, operation)`` runs the server side on one response in a test.

Recordings of the fake's journal replace long strings (images) with ``<N chars sha256:...>``
markers; such a value is treated as "content redacted": image content rules are not reported
for it, and other fields keep its length so length limits still apply.
"""

from __future__ import annotations

import email.utils
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from jsonschema.exceptions import ValidationError, best_match

from kling_testkit._lifecycle import format_seconds, successors, terminal_statuses
from kling_testkit.failures import ContractViolation, Severity, format_json_path
from kling_testkit.recording import Exchange
from mockserver.contract import Contract, ErrorSpec, Operation, load_contract
from mockserver.contract.loader import resolve_pointer
from mockserver.faces import Face, face_names, make_face
from mockserver.validation import Violation, validate_create

__all__ = [
    "CHECKS",
    "Check",
    "CheckContext",
    "CheckRegistry",
    "FaceRules",
    "RegisteredCheck",
    "TaskTimeline",
    "answered_errors",
    "assert_conforms",
    "check",
    "check_exchange",
    "check_exchanges",
    "retry_after_seconds",
    "slot_refusal",
    "token_refusal",
]

Check = Callable[["CheckContext", Exchange], None]

_MARKER = re.compile(r"<(\d+) chars sha256:[0-9a-f]{8}>")
#: Stands in for a redacted image: a URL passes the content rules unfetched (the fake's rule).
_REDACTED_IMAGE = "https://redacted.invalid/image"
#: the face-neutral verbs of the operations whose answers describe one task
CREATE, GET = "task.create", "task.get"


@dataclass(frozen=True)
class RegisteredCheck:
    """A check function with its registry name, side (server/client) and severity."""

    name: str
    function: Check
    side: str
    severity: Severity
    description: str

    def __call__(self, ctx: CheckContext, exchange: Exchange) -> None:
        self.function(ctx, exchange)


class CheckRegistry:
    """Checks by name. ``@registry.register(side=..., severity=...)`` adds one.

    >>> registry = CheckRegistry()
    >>> @registry.register(side="server")
    ... def always_fine(ctx, exchange):
    ...     '''Never fails.'''
    >>> registry.names(), registry["always_fine"].description
    (['always_fine'], 'Never fails.')
    """

    def __init__(self) -> None:
        self._checks: dict[str, RegisteredCheck] = {}

    def register(
        self, *, name: str | None = None, side: str = "server", severity: Severity = Severity.ERROR
    ) -> Callable[[Check], Check]:
        if side not in ("server", "client"):
            raise ValueError(f"side must be 'server' or 'client', got {side!r}")

        def decorate(function: Check) -> Check:
            key = name or function.__name__
            if key in self._checks:
                raise ValueError(f"a check named {key!r} is already registered")
            doc = (function.__doc__ or "").strip().splitlines()
            self._checks[key] = RegisteredCheck(key, function, side, Severity(severity), doc[0] if doc else "")
            return function

        return decorate

    def __getitem__(self, name: str) -> RegisteredCheck:
        try:
            return self._checks[name]
        except KeyError:
            raise KeyError(f"no check named {name!r}; known: {', '.join(self._checks)}") from None

    def __iter__(self) -> Iterator[RegisteredCheck]:
        return iter(self._checks.values())

    def __len__(self) -> int:
        return len(self._checks)

    def names(self, *, side: str | None = None) -> list[str]:
        """Registered names, optionally of one side only."""
        return [c.name for c in self._checks.values() if side is None or c.side == side]

    def select(self, names: Iterable[str] | None = None, *, side: str | None = None) -> list[RegisteredCheck]:
        """The named checks (all when ``names`` is None), optionally of one side only."""
        chosen = [self[n] for n in names] if names is not None else list(self._checks.values())
        return [c for c in chosen if side is None or c.side == side]


#: The built-in checks; ``check`` registers more (``@check(side="client")``).
CHECKS = CheckRegistry()
check = CHECKS.register


# -- what the checks know of a face ----------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FaceRules:
    """One face's contract, with the lifecycle in its wire vocabulary (what the checks read).

    >>> rules = FaceRules.of(load_contract())
    >>> rules.completed, sorted(rules.terminal)
    ('completed', ['completed', 'failed'])
    """

    contract: Contract
    #: internal status -> wire spelling, and back
    wire_status: Mapping[str, str]
    internal_status: Mapping[str, str]
    terminal: frozenset[str]
    completed: str
    failed: str
    #: wire status -> every wire status reachable from it
    reachable: Mapping[str, frozenset[str]]

    @property
    def face(self) -> str:
        return self.contract.face

    @staticmethod
    @functools.cache
    def of(contract: Contract) -> FaceRules:
        """The rules of ``contract`` (built once per contract)."""
        projection = dict(contract.status_projection)
        return FaceRules(
            contract=contract,
            wire_status=projection,
            internal_status={wire: internal for internal, wire in projection.items()},
            terminal=terminal_statuses(contract, wire=True),
            completed=projection["succeeded"],
            failed=projection["failed"],
            reachable=dict(successors(contract, wire=True)),
        )

    def read(self, what: str, body: Any) -> Any:
        """What the face's ``reader`` finds at ``what`` (``status``, ``task_id``...) in ``body``."""
        return self.contract.reader.get(what, body) if isinstance(body, (Mapping, list)) else None

    def path_of(self, what: str) -> str:
        """The JSON path (``$.data.task_status``) of the reader's ``what``; ``$`` when undeclared."""
        return _json_path(self.contract.reader.pointers.get(what, ""))

    @functools.cached_property
    def task_pointer(self) -> str:
        """Where an answer keeps its task object: the parent of the reader's task id."""
        return self.contract.reader.pointers.get("task_id", "/task_id").rsplit("/", 1)[0]

    def task_object(self, body: Any) -> Mapping[str, Any] | None:
        found = _resolve(body, self.task_pointer)
        return found if isinstance(found, Mapping) else None

    @functools.cached_property
    def lookup_keys(self) -> tuple[str, ...]:
        """Names a task may be looked up by besides its id (the contract's ``lookup.by``)."""
        return tuple(k for k in self.contract.index.get("lookup", {}).get("by", ()) if k != "task_id")

    def error_fields(self, body: Any) -> tuple[Any, Any]:
        """An error body's (code, type): the code at the reader's ``error_code``, the type beside
        it when the catalogue spells types (the gateway's ``error.type``), else None."""
        pointer = self.contract.reader.pointers.get("error_code")
        if pointer is None:
            return None, None
        code = _resolve(body, pointer)
        typed = any(spec.type for spec in self.contract.errors.values())
        return code, _resolve(body, pointer.rsplit("/", 1)[0] + "/type") if typed else None


def answered_errors(contract: Contract, status: int, body: Any) -> list[ErrorSpec]:
    """The catalogue entries an error answer carries: its HTTP status and the code the face's
    reader finds (every entry of the status when the body names no code).

    >>> [e.key for e in answered_errors(load_contract(), 429, {"error": {"code": "rate_limit_exceeded"}})]
    ['rate_limited']
    """
    rules = FaceRules.of(contract)
    code, _ = rules.error_fields(body)
    same_status = [spec for spec in contract.errors.values() if spec.http_status == status]
    if code is None or isinstance(code, bool):
        return same_status
    return [spec for spec in same_status if spec.code == code]


def _resolve(body: Any, pointer: str) -> Any:
    return resolve_pointer(body, pointer)


def _json_path(pointer: str) -> str:
    parts: list[str | int] = []
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        parts.append(int(part) if part.isdigit() else part)
    return format_json_path(parts)


# -- context ---------------------------------------------------------------------------------


@dataclass
class TaskTimeline:
    """What earlier exchanges showed about one task (wire statuses, in order)."""

    statuses: list[tuple[str, str | None]] = field(default_factory=list)
    created_at: Any = None
    updated_at: Any = None
    face: str | None = None

    @property
    def last_status(self) -> str | None:
        return self.statuses[-1][0] if self.statuses else None

    @property
    def last_source(self) -> str | None:
        return self.statuses[-1][1] if self.statuses else None


class CheckContext:
    """Every face's contract plus the state earlier exchanges established; shared by all checks.

    ``contract`` (or ``faces``, names or contracts) limits the checks to those faces; by default
    every registered face applies, and each exchange is judged by the face it belongs to.
    ``operation`` forces one operation id (``assert_conforms``). ``contract``,
    ``completed``, ``terminal``, ``reachable``... are the first face's (the default face).

    >>> ctx = CheckContext()
    >>> ctx.operation_of(Exchange("GET", "https://api.modelstream.ai/v1/video/generations/task_1", 200)).id
    'video_generations.get'
    >>> ctx.face_of(Exchange("GET", "https://api.klingai.com/v1/videos/text2video/123", 200)).face
    'official'
    """

    def __init__(
        self,
        contract: Contract | None = None,
        *,
        operation: str | None = None,
        faces: Iterable[str | Contract] | None = None,
    ) -> None:
        if contract is not None:
            contracts = [contract]
        else:
            chosen = list(faces) if faces is not None else list(face_names())
            contracts = [load_contract(f) if isinstance(f, str) else f for f in chosen]
        if not contracts:
            raise ValueError("check at least one face")
        self.faces: dict[str, FaceRules] = {c.face: FaceRules.of(c) for c in contracts}
        self._contracts = tuple(rules.contract for rules in self.faces.values())
        default = self.faces[contracts[0].face]
        self.contract = default.contract
        self.wire_status = dict(default.wire_status)
        self.internal_status = dict(default.internal_status)
        self.terminal = set(default.terminal)
        self.completed = default.completed
        self.reachable = {k: set(v) for k, v in default.reachable.items()}
        self.forced: list[tuple[FaceRules, Operation]] = []
        if operation is not None:
            self.forced = [
                (rules, op) for rules in self.faces.values() for op in rules.contract.operations.values()
                if op.id == operation
            ]  # fmt: skip
            if not self.forced:
                known = sorted({op for c in self._contracts for op in c.operations})
                raise KeyError(f"no operation {operation!r} in the contract; known: {', '.join(known)}")
        self.timelines: dict[str, TaskTimeline] = {}
        self.rate_limited: dict[tuple[str, str], tuple[float, float, str | None]] = {}
        #: task id -> (when, seconds, source) of the last query answer that hinted a poll interval
        self.poll_hints: dict[str, tuple[float, float, str | None]] = {}
        self.exchanges = 0
        self.unmatched = 0
        self._last_route: tuple[Exchange, tuple[FaceRules, Operation] | None] | None = None

    @property
    def forced_operation(self) -> Operation | None:
        """The operation ``operation=`` forced (the first face's, when several faces name it)."""
        return self.forced[0][1] if self.forced else None

    def route_of(self, exchange: Exchange) -> tuple[FaceRules, Operation] | None:
        """The face and contract operation of an exchange: the recorded face when there is one,
        else the face whose operation matches the method and path (a path prefix is allowed,
        for faces mounted under ``/prefix`` or behind a proxy at ``https://host/prefix``)."""
        last = self._last_route
        if last is not None and last[0] is exchange:  # every check asks about the same exchange
            return last[1]
        route = self._route(exchange)
        self._last_route = (exchange, route)
        return route

    def _route(self, exchange: Exchange) -> tuple[FaceRules, Operation] | None:
        path = exchange.path
        if self.forced:
            if len(self.forced) > 1:
                for rules, op in self.forced:
                    if exchange.face in (None, rules.face) and _params(op, path) is not None:
                        return rules, op
            return self.forced[0]
        if exchange.face is not None:
            recorded = self.faces.get(exchange.face)
            if recorded is None:
                return None
            found = _match_operation((recorded.contract,), exchange.method, path, "")
        else:
            found = _match_operation(self._contracts, exchange.method, path, urlsplit(exchange.url).netloc)
        if found is None:
            return None
        contract, op = found
        return self.faces[contract.face], op

    def operation_of(self, exchange: Exchange) -> Operation | None:
        """The contract operation of an exchange (see :meth:`route_of`)."""
        route = self.route_of(exchange)
        return route[1] if route is not None else None

    def face_of(self, exchange: Exchange) -> FaceRules | None:
        """The face an exchange belongs to (see :meth:`route_of`)."""
        route = self.route_of(exchange)
        return route[0] if route is not None else None

    def task_id_of(self, exchange: Exchange, operation: Operation | None = None) -> str | None:
        """The task an exchange is about: the id a create answered with, the id a query asked
        for (or the answer's, when the face looks tasks up by other keys such as an external
        id), the task of a media file; else what the recording says."""
        route = self.route_of(exchange)
        if route is None:
            return exchange.task_id
        rules, op = route
        if operation is not None:
            op = operation
        body = exchange.response_body
        if op.verb == CREATE:
            task = rules.task_object(body)
            found = rules.read("task_id", body)
            if found is None and task is not None:
                found = task.get("id")  # an alias some answers carry (OpenAI style)
            return found if isinstance(found, str) else None
        params = _params(op, exchange.path) or {}
        if "task_id" in params:
            asked = params["task_id"]
            answered = rules.read("task_id", body) if 200 <= exchange.status < 300 else None
            if isinstance(answered, str) and answered != asked and _names_task(rules, body, asked):
                return answered  # looked up by an external id: the task is the one answered
            return asked
        if "file" in params:
            return params["file"].rsplit(".", 1)[0]
        return exchange.task_id

    def observe(self, exchange: Exchange) -> None:
        """Fold an exchange into the state later checks read (the driver calls this)."""
        self.exchanges += 1
        route = self.route_of(exchange)
        if route is None:
            self.unmatched += 1
            return
        rules, op = route
        key = (rules.face, op.id)
        if exchange.timestamp is not None:
            if exchange.status == 429:
                wait = retry_after_seconds(exchange.response_header("retry-after"), exchange.timestamp)
                if wait is not None:
                    self.rate_limited[key] = (exchange.timestamp, wait, exchange.source)
            else:
                self.rate_limited.pop(key, None)
        status = _wire_status(self, exchange)
        if status is None:
            return
        task_id = self.task_id_of(exchange)
        if task_id is None:
            return
        hint = rules.contract.poll_hint
        if hint is not None and op.verb == GET and exchange.timestamp is not None:
            if exchange.response_header(hint[0]) is not None:
                self.poll_hints[task_id] = (exchange.timestamp, hint[1], exchange.source)
            else:
                self.poll_hints.pop(task_id, None)
        timeline = self.timelines.setdefault(task_id, TaskTimeline(face=rules.face))
        timeline.statuses.append((status, exchange.source))
        task = rules.task_object(exchange.response_body) or {}
        if timeline.created_at is None:
            timeline.created_at = task.get("created_at")
        if _is_number(task.get("updated_at")):
            timeline.updated_at = task["updated_at"]


def _names_task(rules: FaceRules, body: Any, asked: str) -> bool:
    """Whether the answered task carries ``asked`` under one of the face's lookup keys."""
    keys = rules.lookup_keys
    if not keys:
        return False

    def walk(value: Any, depth: int) -> bool:
        if isinstance(value, Mapping) and depth < 4:
            return any((k in keys and v == asked) or walk(v, depth + 1) for k, v in value.items())
        return False

    return walk(rules.task_object(body), 0)


def _params(op: Operation, path: str) -> dict[str, str] | None:
    found = op.match(path)
    return found if found is not None else _suffix_params(op, path)


def _suffix_params(op: Operation, path: str) -> dict[str, str] | None:
    for i, ch in enumerate(path):
        if ch == "/" and i > 0 and (found := op.match(path[i:])) is not None:
            return found
    return None


@functools.lru_cache(maxsize=4096)
def _match_operation(
    contracts: tuple[Contract, ...], method: str, path: str, host: str
) -> tuple[Contract, Operation] | None:
    """The operation ``method path`` is: an exact path match first (the face whose base URL has
    ``host`` first among several), then a match behind the shortest path prefix."""
    exact: list[tuple[Contract, Operation]] = []
    behind: list[tuple[int, Contract, Operation]] = []
    for contract in contracts:
        for op in contract.operations.values():
            methods = (op.method, "HEAD") if op.method == "GET" else (op.method,)
            if method not in methods:
                continue
            if op.match(path) is not None:
                exact.append((contract, op))
                continue
            for i, ch in enumerate(path):
                if ch == "/" and i > 0 and op.match(path[i:]) is not None:
                    behind.append((i, contract, op))
                    break
    if exact:
        own = [(c, op) for c, op in exact if any(urlsplit(u).netloc == host for u in c.base_urls)]
        return (own or exact)[0]
    if behind:
        _, contract, op = min(behind, key=lambda found: found[0])
        return contract, op
    return None


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks for (delta-seconds or an HTTP date), or None.

    >>> retry_after_seconds("5"), retry_after_seconds("soon")
    (5.0, None)
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now) if now is not None else None


# -- the driver ------------------------------------------------------------------------------


def check_exchange(
    ctx: CheckContext, exchange: Exchange, checks: Sequence[RegisteredCheck] | None = None
) -> list[ContractViolation]:
    """Run ``checks`` (default: all registered) on one exchange, then fold it into ``ctx``.

    >>> ctx = CheckContext()
    >>> ex = Exchange("GET", "https://api.modelstream.ai/v1/video/generations/task_1", 418)
    >>> [v.rule for v in check_exchange(ctx, ex)]
    ['status.documented', 'body.json']
    """
    route = ctx.route_of(exchange)
    found: list[ContractViolation] = []
    for registered in checks if checks is not None else list(CHECKS):
        try:
            registered(ctx, exchange)
        except ContractViolation as violation:
            violation.check = registered.name
            violation.severity = registered.severity
            if violation.where is None:
                violation.where = exchange.source
            if route is not None:
                if violation.operation is None:
                    violation.operation = route[1].id
                if violation.face is None:
                    violation.face = route[0].face
            if violation.status is None and not violation.part.startswith("request"):
                violation.status = exchange.status
            found.append(violation)
    ctx.observe(exchange)
    return found


def check_exchanges(
    exchanges: Iterable[Exchange],
    *,
    contract: Contract | None = None,
    checks: Iterable[str] | None = None,
    faces: Iterable[str | Contract] | None = None,
) -> list[ContractViolation]:
    """Check a sequence of exchanges (one recording, in order) and return every violation.

    ``contract`` or ``faces`` limit the faces (default: every face, each exchange judged by its own).

    >>> check_exchanges([Exchange("GET", "https://api.modelstream.ai/v1/video/generations/task_1", 418)])[0].rule
    'status.documented'
    """
    ctx = CheckContext(contract, faces=faces)
    selected = CHECKS.select(checks)
    out: list[ContractViolation] = []
    for exchange in exchanges:
        out.extend(check_exchange(ctx, exchange, selected))
    return out


def assert_conforms(
    response: Any,
    operation: str | None = None,
    *,
    checks: Iterable[str] | None = None,
    context: CheckContext | None = None,
    face: str | None = None,
) -> None:
    """Raise :class:`ContractViolation` if ``response`` breaks the contract of ``operation``.

    ``response`` is an ``httpx.Response`` (its request included) or an :class:`Exchange`;
    ``operation`` (``"video_generations.get"``, ``"text2video.get"``) is derived from the URL
    when omitted, and ``face`` (``"official"``) limits the faces considered. The server-side
    checks run by default; pass ``checks`` names to choose, and a shared ``context`` to check a
    sequence (status transitions, ids, timestamps across polls). The first violation is
    raised; its message names how many more there were.

    >>> import httpx
    >>> request = httpx.Request("GET", "https://api.modelstream.ai/v1/video/generations/task_1")
    >>> response = httpx.Response(200, json={"status": "succeeded"}, request=request)
    >>> try:
    ...     assert_conforms(response, "video_generations.get")
    ... except ContractViolation as violation:
    ...     print(violation.rule, violation.json_path)
    schema:required $.task_id
    """
    exchange = response if isinstance(response, Exchange) else Exchange.from_httpx(response)
    faces = [face] if face is not None else None
    ctx = context if context is not None else CheckContext(operation=operation, faces=faces)
    if context is not None and operation is not None and not ctx.forced:
        found_op = ctx.operation_of(exchange)
        if found_op is None or found_op.id != operation:
            ctx = CheckContext(operation=operation, faces=faces or list(context._contracts))
            ctx.timelines, ctx.rate_limited = context.timelines, context.rate_limited
    selected = CHECKS.select(checks, side=None if checks is not None else "server")
    found = check_exchange(ctx, exchange, selected)
    if found:
        first = found[0]
        if len(found) > 1:
            others = ", ".join(f"{v.rule} at {v.json_path}" for v in found[1:])
            first.message = f"{first.message} ... (+{len(found) - 1} more: {others})"
            first.args = (first.message,)
        raise first


# -- helpers used by the checks --------------------------------------------------------------


def _documented_statuses(contract: Contract, op: Operation) -> set[int]:
    statuses = {int(s) for s in op.responses}
    statuses |= {contract.errors[k].http_status for k in op.errors if contract.errors[k].http_status}
    return statuses


def _violation(rule: str, message: str, **fields: Any) -> ContractViolation:
    return ContractViolation(rule, message, **fields)


def _param_path(param: str | None) -> tuple[str | int, ...]:
    """``multi_prompt[1].prompt`` -> ``("multi_prompt", 1, "prompt")``."""
    if not param:
        return ()
    out: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", param):
        out.append(int(index) if index else name)
    return tuple(out)


def _value_at(value: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        if isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
            continue
        if isinstance(value, Mapping) and isinstance(part, str) and part in value:
            value = value[part]
            continue
        return None
    return value


def _without(value: Any, path: Sequence[str | int]) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(value, Mapping) and isinstance(head, str):
        if not rest:
            return {k: v for k, v in value.items() if k != head}
        return {**value, head: _without(value.get(head), rest)}
    if isinstance(value, list) and isinstance(head, int) and head < len(value):
        copy = list(value)
        copy[head] = _without(value[head], rest)
        return copy
    return value


def _unredacted(contract: Contract, body: Any) -> tuple[Any, set[str]]:
    """The body with redaction markers replaced, and the image fields that were redacted."""
    image_params = {rule.param for model in contract.models.values() for rule in model.rules if rule.kind == "image"}
    redacted: set[str] = set()

    def walk(value: Any, key: str | None, depth: int) -> Any:
        if isinstance(value, str):
            found = _MARKER.fullmatch(value)
            if found is None:
                return value
            if depth == 1 and key in image_params:
                redacted.add(key)
                return _REDACTED_IMAGE
            return "x" * int(found.group(1))  # keeps length limits meaningful
        if isinstance(value, Mapping):
            return {k: walk(v, k, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key, depth + 1) for v in value]
        return value

    return walk(body, None, 0), redacted


def _explain(errors: Iterable[ValidationError]) -> ValidationError | None:
    """The error to report: ``best_match``, preferring errors outside ``if``/``then``/``else``.

    A conditional error is usually a consequence (a misspelt status puts the body in the
    ``else`` branch, whose ``url: null`` then fails); the direct error names the cause.
    """
    found = list(errors)
    direct = [e for e in found if not {"if", "then", "else"} & {str(p) for p in e.relative_schema_path}]
    chosen: ValidationError | None = best_match(direct or found)
    return chosen


def _create_route(ctx: CheckContext, exchange: Exchange) -> tuple[FaceRules, Operation] | None:
    """The route of a create that sent a body (the request checks' subject), else None."""
    route = ctx.route_of(exchange)
    if route is None or route[1].verb != CREATE or exchange.request_body is None:
        return None
    return route


def _wire_status(ctx: CheckContext, exchange: Exchange) -> str | None:
    """The task status a successful create or query answered, in the face's spelling."""
    route = ctx.route_of(exchange)
    if route is None or route[1].verb not in (CREATE, GET) or not 200 <= exchange.status < 300:
        return None
    status = route[0].read("status", exchange.response_body)
    return status if isinstance(status, str) else None


# -- server checks ---------------------------------------------------------------------------


@check(side="server")
def status_code_documented(ctx: CheckContext, exchange: Exchange) -> None:
    """The status code is one the operation documents (its responses and catalogued errors)."""
    route = ctx.route_of(exchange)
    if route is None:
        return
    rules, op = route
    documented = _documented_statuses(rules.contract, op)
    if exchange.status not in documented:
        raise _violation(
            "status.documented",
            f"status {exchange.status} is not documented for {op.id}",
            json_path="$",
            part="response",
            expected=sorted(documented),
            actual=exchange.status,
        )


@check(side="server")
def response_body_conforms(ctx: CheckContext, exchange: Exchange) -> None:
    """A success body validates against the operation's response schema (envelope included)."""
    route = ctx.route_of(exchange)
    if route is None or not 200 <= exchange.status < 300:
        return
    rules, op = route
    relpath = op.responses.get(str(exchange.status))
    if relpath is None or relpath == "binary" or exchange.method == "HEAD":
        return
    body = exchange.response_body
    if not isinstance(body, (Mapping, list)):
        raise _violation(
            "body.json",
            "the response body is not a JSON object",
            expected="a JSON object",
            actual=body,
        )
    error = _explain(rules.contract.response_validator(relpath).iter_errors(body))
    if error is not None:
        raise ContractViolation.from_schema_error(error, operation=op.id, status=exchange.status)


@check(side="server")
def error_object_well_formed(ctx: CheckContext, exchange: Exchange) -> None:
    """Error bodies are the face's catalogued error body; a failed task's reason is catalogued.

    The body validates against the face's error schema (the gateway's ``{"error": {message,
    type, param, code}}``, Kling's envelope with an integer ``code`` and ``data`` null), and
    carries a code (and type, where the catalogue has types) the catalogue lists for that status.
    """
    route = ctx.route_of(exchange)
    if route is None:
        return
    rules, op = route
    body = exchange.response_body
    contract = rules.contract
    if exchange.status >= 400 and exchange.method != "HEAD":
        if not isinstance(body, Mapping):
            raise _violation("body.json", "the error body is not a JSON object", expected="a JSON object", actual=body)
        error = best_match(contract.error_validator().iter_errors(body))
        if error is not None:
            raise ContractViolation.from_schema_error(error, operation=op.id, status=exchange.status)
        code, kind = rules.error_fields(body)
        same_status = [s for s in contract.errors.values() if s.http_status == exchange.status]
        typed = kind is not None or any(s.type for s in contract.errors.values())
        known = {_code_label(s.type if typed else None, s.code) for s in same_status}
        sent = _code_label(kind if typed else None, code)
        if known and sent not in known:
            raise _violation(
                "error.catalogued",
                f"error code {code!r}" + (f" (type {kind!r})" if typed else "")
                + f" is not catalogued for HTTP {exchange.status}",
                json_path=rules.path_of("error_code"),
                expected=sorted(known),
                actual=sent,
            )  # fmt: skip
        return
    if _wire_status(ctx, exchange) != rules.failed:
        return
    # A failed task's reason: where the catalogue's task failures carry fields besides the
    # message (the gateway's error type and code), the answer's must be a catalogued pair.
    fields = sorted({k for row in contract.task_failures.values() for k in row} - {"message", "source"})
    pointer = contract.reader.pointers.get("failure")
    if not fields or pointer is None:
        return
    holder = _resolve(body, pointer.rsplit("/", 1)[0])
    if not isinstance(holder, Mapping):
        return  # the response schema reports a missing reason
    failures = {tuple(str(row.get(f)) for f in fields) for row in contract.task_failures.values()}
    sent_failure = tuple(str(holder.get(f)) for f in fields)
    if sent_failure not in failures:
        where = pointer.rsplit("/", 1)[0] + ("/code" if "code" in fields else "")
        raise _violation(
            "error.task_failure_catalogued",
            f"the failed task's error {'/'.join(sent_failure)} is not a catalogued task failure",
            json_path=_json_path(where),
            expected=sorted("/".join(f) for f in failures),
            actual="/".join(sent_failure),
        )


def _code_label(kind: Any, code: Any) -> str:
    return f"{kind}/{code}" if kind is not None else str(code)


@check(side="server")
def status_transition_legal(ctx: CheckContext, exchange: Exchange) -> None:
    """A task's status only moves forward along the lifecycle (skipping unseen steps is fine)."""
    current = _wire_status(ctx, exchange)
    rules = ctx.face_of(exchange)
    if current is None or rules is None or current not in rules.reachable:
        return  # unknown spellings are the schema check's finding
    task_id = ctx.task_id_of(exchange)
    timeline = ctx.timelines.get(task_id) if task_id else None
    previous = timeline.last_status if timeline else None
    reachable = rules.reachable
    if previous is None or previous == current or previous in rules.terminal or previous not in reachable:
        return
    if current in reachable[previous]:
        return
    backwards = previous in reachable[current]
    raise _violation(
        "lifecycle.monotone" if backwards else "lifecycle.transition",
        f"task {task_id} went from {previous!r} {'back ' if backwards else ''}to {current!r}"
        + (f" (previous answer at {timeline.last_source})" if timeline and timeline.last_source else ""),
        json_path=rules.path_of("status"),
        expected=sorted(reachable[previous] | {previous}),
        actual=current,
    )


@check(side="server")
def terminal_status_final(ctx: CheckContext, exchange: Exchange) -> None:
    """Once a task is completed or failed it stays so."""
    current = _wire_status(ctx, exchange)
    rules = ctx.face_of(exchange)
    if current is None or rules is None:
        return
    task_id = ctx.task_id_of(exchange)
    timeline = ctx.timelines.get(task_id) if task_id else None
    previous = timeline.last_status if timeline else None
    if previous in rules.terminal and current != previous:
        raise _violation(
            "lifecycle.terminal_final",
            f"task {task_id} was {previous!r} (terminal) and is now {current!r}",
            json_path=rules.path_of("status"),
            expected=previous,
            actual=current,
        )


@check(side="server")
def url_exactly_when_completed(ctx: CheckContext, exchange: Exchange) -> None:
    """A query answer carries a result URL exactly when the task is completed."""
    route = ctx.route_of(exchange)
    current = _wire_status(ctx, exchange)
    if route is None or route[1].verb != GET or current is None or current not in route[0].reachable:
        return  # unknown spellings are the schema check's finding
    rules = route[0]
    # named in the answer, or (a face whose answers name none) its result path with the task id
    url = rules.contract.result_url(exchange.response_body)
    has_url = isinstance(url, str) and bool(url)
    where = rules.path_of("result_url" if "result_url" in rules.contract.reader.pointers else "task_id")
    if current == rules.completed and not has_url:
        raise _violation(
            "lifecycle.url_when_completed",
            f"the task is {current!r} but has no url",
            json_path=where,
            expected="a URL",
            actual=url,
        )
    if current != rules.completed and url is not None:
        raise _violation(
            "lifecycle.url_when_completed",
            f"the task is {current!r} but already has a url",
            json_path=where,
            expected="null",
            actual=url,
        )


@check(side="server")
def poll_hint_while_running(ctx: CheckContext, exchange: Exchange) -> None:
    """Where the contract names a poll-interval header (``Contract.poll_hint``), a query answer
    carries it, with the contract's value, exactly while the task is not finished."""
    route = ctx.route_of(exchange)
    current = _wire_status(ctx, exchange)
    hint = route[0].contract.poll_hint if route is not None else None
    if route is None or route[1].verb != GET or current is None or hint is None:
        return
    rules = route[0]
    header, seconds = hint
    sent = exchange.response_header(header)
    running = current not in rules.terminal
    wanted = f"{seconds * 1000:g}"
    if running and sent != wanted:
        raise _violation(
            "lifecycle.poll_hint",
            f"the task is {current!r} but the answer's {header} header is {sent!r}",
            json_path="$",
            part="response",
            expected=wanted,
            actual=sent,
        )
    if not running and sent is not None:
        raise _violation(
            "lifecycle.poll_hint",
            f"the task is {current!r} (finished) but the answer still sends {header}: {sent}",
            json_path="$",
            part="response",
            expected=None,
            actual=sent,
        )


@check(side="server")
def ids_stable(ctx: CheckContext, exchange: Exchange) -> None:
    """A create's ``id`` alias equals its task id, and a query answers for the task it was asked
    about (or for the task carrying that external id, where the face looks tasks up by one)."""
    route = ctx.route_of(exchange)
    body = exchange.response_body
    if route is None or not 200 <= exchange.status < 300 or not isinstance(body, Mapping):
        return
    rules, op = route
    answered = rules.read("task_id", body)
    if answered is None:
        return
    if op.verb == CREATE:
        task = rules.task_object(body) or {}
        if "id" in task and task["id"] != answered:
            raise _violation(
                "ids.stable",
                "id and task_id name different tasks",
                json_path=_json_path(rules.task_pointer + "/id"),
                expected=answered,
                actual=task["id"],
            )
    elif op.verb == GET:
        asked = (_params(op, exchange.path) or {}).get("task_id")
        if asked is not None and answered != asked and not _names_task(rules, body, asked):
            raise _violation(
                "ids.stable",
                f"asked for task {asked} but the answer is about {answered!r}",
                json_path=rules.path_of("task_id"),
                expected=asked,
                actual=answered,
            )


@check(side="server")
def timestamps_non_decreasing(ctx: CheckContext, exchange: Exchange) -> None:
    """A task's ``created_at`` never changes, ``updated_at`` never goes back or before creation."""
    if _wire_status(ctx, exchange) is None:
        return
    rules = ctx.face_of(exchange)
    assert rules is not None  # a wire status comes from a routed exchange
    task = rules.task_object(exchange.response_body) or {}
    base = rules.task_pointer
    created, updated = task.get("created_at"), task.get("updated_at")
    if _is_number(created) and _is_number(updated) and updated < created:
        raise _violation(
            "timestamps.non_decreasing",
            "updated_at is before created_at",
            json_path=_json_path(base + "/updated_at"),
            expected=f">= {created}",
            actual=updated,
        )
    task_id = ctx.task_id_of(exchange)
    timeline = ctx.timelines.get(task_id) if task_id else None
    if timeline is None:
        return
    if timeline.created_at is not None and created is not None and created != timeline.created_at:
        raise _violation(
            "timestamps.created_at_stable",
            f"task {task_id} changed its created_at",
            json_path=_json_path(base + "/created_at"),
            expected=timeline.created_at,
            actual=created,
        )
    if _is_number(updated) and timeline.updated_at is not None and updated < timeline.updated_at:
        raise _violation(
            "timestamps.non_decreasing",
            f"task {task_id}'s updated_at went back in time",
            json_path=_json_path(base + "/updated_at"),
            expected=f">= {timeline.updated_at}",
            actual=updated,
        )


@check(side="server")
def timestamps_in_face_unit(ctx: CheckContext, exchange: Exchange) -> None:
    """A task's timestamps are Unix time in the face's unit (seconds or milliseconds).

    Judged against the time the exchange was recorded: a value a thousand times too small or
    too large is in the wrong unit (clocks may differ, units are three orders of magnitude apart).
    """
    if _wire_status(ctx, exchange) is None or not exchange.timestamp or exchange.timestamp <= 0:
        return
    rules = ctx.face_of(exchange)
    assert rules is not None
    task = rules.task_object(exchange.response_body) or {}
    scale = rules.contract.timestamp_scale
    unit = "milliseconds" if scale == 1000 else "seconds"
    for name in ("created_at", "updated_at"):
        value = task.get(name)
        if not _is_number(value) or value <= 0:
            continue
        ratio = value / scale / exchange.timestamp
        if not 0.1 <= ratio <= 10:
            raise _violation(
                "timestamps.unit",
                f"{name} {value} is not Unix {unit} (the exchange was recorded at {exchange.timestamp:.0f} s)",
                json_path=_json_path(rules.task_pointer + "/" + name),
                expected=f"Unix {unit}, about {exchange.timestamp * scale:.0f}",
                actual=value,
            )


@check(side="server", severity=Severity.WARNING)
def retry_after_sent(ctx: CheckContext, exchange: Exchange) -> None:
    """A ``429`` says how long to wait in ``Retry-After`` where the face's catalogue promises it
    (the gateway does; Kling's own API sends none)."""
    route = ctx.route_of(exchange)
    if exchange.status != 429 or route is None:
        return
    answered = answered_errors(route[0].contract, 429, exchange.response_body)
    if not any(spec.retry_after is not None for spec in answered):
        return
    value = exchange.response_header("retry-after")
    if retry_after_seconds(value, exchange.timestamp or 0.0) is None:
        raise _violation(
            "rate_limit.retry_after_header",
            "a 429 without a usable Retry-After header",
            json_path="$.retry-after",
            part="response.headers",
            expected="delta-seconds or an HTTP date",
            actual=value,
        )


# -- client checks ---------------------------------------------------------------------------


@functools.cache
def _judge(face: str) -> Face:
    # The face itself judges a recorded create, so a form is held to the rules of the request
    # it maps onto as well as its own: exactly what the fake would refuse.
    return make_face(face)


def _create_verdict(rules: FaceRules, op: Operation, body: Any) -> tuple[Violation | None, set[str]]:
    plain, redacted = _unredacted(rules.contract, body)
    return _judge(rules.face).judge_create(plain, kind=op.kind), redacted


@check(side="client")
def request_conforms(ctx: CheckContext, exchange: Exchange) -> None:
    """A create request satisfies the request contract: schema and named rules."""
    route = _create_route(ctx, exchange)
    if route is None:
        return
    rules, op = route
    body = exchange.request_body
    if isinstance(body, str):
        raise _violation(
            "request.json",
            "the create request body is not JSON",
            part="request",
            expected="a JSON object",
            actual=body,
        )
    verdict, redacted = _create_verdict(rules, op, body)
    if verdict is None:
        return
    if verdict.param in redacted and verdict.rule.startswith(f"{verdict.param}."):
        return  # content redacted in the recording: its image rules cannot be judged
    path = _param_path(verdict.param)
    message, expected = f"{verdict.param or 'body'} {verdict.detail}", verdict.detail
    if verdict.rule == ctx.contract.request_rule("model_known"):
        # The refusal's detail is the model the request named; what was expected is the list.
        expected = f"one of {sorted(ctx.contract.models)}"
        message = f"model {verdict.detail} is not a model of the contract"
    raise _violation(
        verdict.rule,
        f"the request breaks the contract: {message}",
        json_path=format_json_path(path),
        part="request",
        expected=expected,
        actual=_value_at(body, path),
    )


@check(side="client")
def no_unknown_request_fields(ctx: CheckContext, exchange: Exchange) -> None:
    """A create request sends no field the contract does not know (the server drops it silently)."""
    route = _create_route(ctx, exchange)
    if route is None or not isinstance(exchange.request_body, Mapping):
        return
    rules, op = route
    contract = rules.contract
    body, _ = _unredacted(contract, exchange.request_body)
    unknown_rule = contract.request_rule("unknown_field")
    unknown: list[str] = []
    for _ in range(50):  # each round names one unknown field; drop it and look again
        result = validate_create(contract, body, strict=True, mode=op.kind)
        if not isinstance(result, Violation) or result.rule != unknown_rule or result.param is None:
            break
        unknown.append(result.param)
        body = _without(body, _param_path(result.param))
    if unknown:
        more = f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
        raise _violation(
            "unknown_field",
            f"unknown request field {unknown[0]!r}{more}: the server drops it silently",
            json_path=format_json_path(_param_path(unknown[0])),
            part="request",
            expected="only fields of the contract",
            actual=unknown,
        )


@check(side="client")
def retry_after_honoured(ctx: CheckContext, exchange: Exchange) -> None:
    """After a ``429`` with ``Retry-After``, the next call of that operation waits at least that long."""
    route = ctx.route_of(exchange)
    if route is None or exchange.timestamp is None:
        return
    rules, op = route
    limited = ctx.rate_limited.get((rules.face, op.id))
    if limited is None:
        return
    _waited_as_asked("client.retry_after", f"called {op.id}", "a 429", exchange.timestamp, limited)


@check(side="client")
def poll_hint_honoured(ctx: CheckContext, exchange: Exchange) -> None:
    """After a query answer with a poll-interval hint (``Contract.poll_hint``), the next query
    of that task waits at least that long (the OpenAI SDK's ``create_and_poll`` does)."""
    route = ctx.route_of(exchange)
    if route is None or route[1].verb != GET or exchange.timestamp is None:
        return
    task_id = ctx.task_id_of(exchange, route[1])
    hinted = ctx.poll_hints.get(task_id) if task_id is not None else None
    if hinted is None:
        return
    _waited_as_asked("client.poll_hint", f"polled task {task_id}", "an answer", exchange.timestamp, hinted)


def _waited_as_asked(rule: str, did: str, asker: str, now: float, asked: tuple[float, float, str | None]) -> None:
    """``did`` happened at ``now``; ``asked`` (when, how long, where it was said) is the wait a
    server answer (``asker``) asked for before it: a call that came sooner breaks ``rule``."""
    at, wait, source = asked
    waited = now - at
    if waited + 1e-6 < wait:
        raise _violation(
            rule,
            f"{did} {format_seconds(waited)} after {asker} that asked to wait {format_seconds(wait)}"
            + (f" ({source})" if source else ""),
            json_path="$",
            part="timeline",
            expected=f">= {format_seconds(wait)}",
            actual=format_seconds(waited),
        )


@check(side="client")
def request_not_refused(ctx: CheckContext, exchange: Exchange) -> None:
    """The server refused none of the client's requests: the rule a refusal broke is recorded
    beside it (the fake's journal), so a refused key, an unknown task or a bad query parameter
    counts as it does for ``assert_contract_clean``. A create whose body the request checks
    re-validate is theirs to explain (same rule); injected faults are not the client's doing."""
    if exchange.rule is None or exchange.fault is not None:
        return
    rules = ctx.face_of(exchange)
    if rules is not None and (
        token_refusal(rules.contract, exchange.status, exchange.response_body, rule=exchange.rule)
        or slot_refusal(rules.contract, exchange.status, exchange.response_body, rule=exchange.rule)
    ):
        return  # token_valid_when_sent and within_concurrency_slots name these
    route = _create_route(ctx, exchange)
    if route is not None and isinstance(exchange.request_body, Mapping):
        verdict, _ = _create_verdict(route[0], route[1], exchange.request_body)
        if verdict is not None and verdict.rule == exchange.rule:
            return  # request_conforms reports this very rule, with the expected value
    message = rules.read("error_message", exchange.response_body) if rules is not None else None
    raise _violation(
        exchange.rule,
        f"the server refused the request (rule {exchange.rule})" + (f": {message}" if isinstance(message, str) else ""),
        json_path=format_json_path(_param_path(exchange.param)),
        part="request",
        expected="a request the contract accepts",
        actual=f"HTTP {exchange.status}",
    )


@check(side="client")
def token_valid_when_sent(ctx: CheckContext, exchange: Exchange) -> None:
    """A signed token is valid when sent: the client re-signs before ``exp`` (and never uses one
    before its ``nbf``), so no request is refused as expired or not yet valid."""
    rules = ctx.face_of(exchange)
    if rules is None:
        return
    situation = token_refusal(
        rules.contract, exchange.status, exchange.response_body, rule=exchange.rule, fault=exchange.fault
    )
    if situation is None:
        return
    message = rules.read("error_message", exchange.response_body)
    raise _violation(
        "client.token_" + situation,
        f"refused: the token was {situation.replace('_', ' ')} when sent"
        + (f" ({message})" if isinstance(message, str) else "")
        + ": sign a fresh token before the old one expires",
        json_path="$.authorization",
        part="request.headers",
        expected="a token valid at the server's time (within its clock skew)",
        actual=f"HTTP {exchange.status} {rules.read('error_code', exchange.response_body)}",
    )


@check(side="client", severity=Severity.WARNING)
def within_concurrency_slots(ctx: CheckContext, exchange: Exchange) -> None:
    """A create is not refused for want of a concurrency slot: the client waits for one of its
    account's tasks to end before starting another when all slots are held."""
    rules = ctx.face_of(exchange)
    if rules is None or not slot_refusal(
        rules.contract, exchange.status, exchange.response_body, rule=exchange.rule, fault=exchange.fault
    ):
        return
    slots = rules.contract.index["concurrency"].get("slots_per_account")
    raise _violation(
        "client.concurrency_slots",
        f"refused: every concurrency slot of the account was held ({slots} by default); "
        "a task holds one from its creation until it ends",
        json_path="$",
        part="timeline",
        expected="at most as many unfinished tasks as the account has slots",
        actual=f"HTTP {exchange.status} {rules.read('error_code', exchange.response_body)}",
    )


# -- refusals a client causes (shared with the journal assertions) ------------------------------

#: the journal's rule ids for a token refused on time grounds (the signing faces' auth rules),
#: by the contract's name for the situation (``auth.errors`` of a face's ``index.json``)
TOKEN_RULES = {"expired": "auth.exp", "not_yet_valid": "auth.nbf"}


def _refused_as(
    contract: Contract, status: int, body: Any, keys: Iterable[str], rule_ids: Iterable[str], rule: str | None
) -> bool:
    if rule is not None and rule in set(rule_ids):
        return True
    wanted = set(keys)
    answered = answered_errors(contract, status, body)
    return bool(wanted) and bool(answered) and {spec.key for spec in answered} <= wanted


def token_refusal(
    contract: Contract, status: int, body: Any, *, rule: str | None = None, fault: str | None = None
) -> str | None:
    """``"expired"`` or ``"not_yet_valid"`` when an answer refused a request because its signed
    token was expired or not yet valid (by the journal's ``rule`` id, or the face's catalogue
    entry for that situation); None otherwise, and for injected faults (not the client's doing).

    >>> token_refusal(load_contract("official"), 401, {"code": 1004, "message": "m", "request_id": "r"})
    'expired'
    >>> token_refusal(load_contract(), 401, {"error": {"code": "invalid_api_key"}}) is None
    True
    """
    if fault is not None or status < 400:
        return None
    situations = contract.index.get("auth", {}).get("errors", {})
    for situation, rule_id in TOKEN_RULES.items():
        key = situations.get(situation)
        if key is not None and _refused_as(contract, status, body, [key], [rule_id], rule):
            return situation
    return None


def slot_refusal(
    contract: Contract, status: int, body: Any, *, rule: str | None = None, fault: str | None = None
) -> bool:
    """Whether an answer refused a create because every concurrency slot of the account was held
    (by the journal's ``rule`` id, or the error the face's ``concurrency`` section names);
    injected faults are not the client's doing.

    >>> slot_refusal(load_contract("official"), 429, {"code": 1303, "message": "m", "request_id": "r"})
    True
    """
    spec = contract.index.get("concurrency")
    if fault is not None or status < 400 or not spec:
        return False
    error = spec["error"]
    rule_ids = [r["id"] for r in contract.index.get("request_rules", {}).values()
                if isinstance(r, Mapping) and r.get("error") == error]  # fmt: skip
    return _refused_as(contract, status, body, [error], rule_ids, rule)
