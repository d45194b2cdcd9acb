"""Contract checks: small registered functions with one signature.

Every check is ``check(ctx: CheckContext, exchange: Exchange) -> None`` and raises
:class:`~kling_testkit.failures.ContractViolation` when the exchange breaks its rule. Checks
only *read* the context (the contract, and what earlier exchanges showed: each task's status
timeline, the last ``429`` per operation); the driver updates it after every exchange, so a
check never has to care about ordering. Checks are registered by name in :data:`CHECKS`
(Schemathesis-style), and pick themselves out of exchanges they do not apply to.

Two sides, because two parties can break the contract:

- **server** checks judge answers: documented status codes, bodies against the response
  schemas, error objects against the catalogue, lifecycle (legal, monotone, terminal final,
  ``url`` exactly when completed), stable ids, non-decreasing timestamps, ``Retry-After`` sent;
- **client** checks judge requests and timing: request bodies against the request contract
  (schema and named rules), unknown fields (the real gateway drops them silently), and
  whether ``Retry-After`` was waited out before the next call of the same operation.

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
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from kling_testkit._lifecycle import format_seconds, successors, terminal_statuses
from kling_testkit.failures import ContractViolation, Severity, format_json_path
from kling_testkit.recording import Exchange
from mockserver.contract import Contract, Operation, load_contract
from mockserver.validation import Violation, validate_create

__all__ = [
    "CHECKS",
    "Check",
    "CheckContext",
    "CheckRegistry",
    "RegisteredCheck",
    "TaskTimeline",
    "assert_conforms",
    "check",
    "check_exchange",
    "check_exchanges",
]

Check = Callable[["CheckContext", Exchange], None]

_MARKER = re.compile(r"<(\d+) chars sha256:[0-9a-f]{8}>")
#: Stands in for a redacted image: a URL passes the content rules unfetched (the fake's rule).
_REDACTED_IMAGE = "https://redacted.invalid/image"


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


# -- context ---------------------------------------------------------------------------------


@dataclass
class TaskTimeline:
    """What earlier exchanges showed about one task (wire statuses, in order)."""

    statuses: list[tuple[str, str | None]] = field(default_factory=list)
    created_at: Any = None
    updated_at: Any = None

    @property
    def last_status(self) -> str | None:
        return self.statuses[-1][0] if self.statuses else None

    @property
    def last_source(self) -> str | None:
        return self.statuses[-1][1] if self.statuses else None


class CheckContext:
    """The contract plus the state earlier exchanges established; shared by all checks.

    >>> ctx = CheckContext()
    >>> ctx.operation_of(Exchange("GET", "https://api.modelstream.ai/v1/video/generations/task_1", 200)).id
    'video_generations.get'
    """

    def __init__(self, contract: Contract | None = None, *, operation: str | None = None) -> None:
        self.contract = contract if contract is not None else load_contract()
        self.forced_operation = self.contract.operations[operation] if operation is not None else None
        self.terminal = set(terminal_statuses(self.contract, wire=True))
        self.completed = self.contract.status_projection["succeeded"]
        self.reachable = {s: set(after) for s, after in successors(self.contract, wire=True).items()}
        self.timelines: dict[str, TaskTimeline] = {}
        self.rate_limited: dict[str, tuple[float, float, str | None]] = {}
        self.exchanges = 0
        self.unmatched = 0

    def operation_of(self, exchange: Exchange) -> Operation | None:
        """The contract operation of an exchange, by method and path (a path prefix is allowed,
        for gateways behind a proxy at ``https://host/prefix``)."""
        if self.forced_operation is not None:
            return self.forced_operation
        return _match_operation(self.contract, exchange.method, exchange.path)

    def task_id_of(self, exchange: Exchange, operation: Operation | None = None) -> str | None:
        op = operation or self.operation_of(exchange)
        if op is None:
            return exchange.task_id
        if op.id == "video_generations.create":
            body = exchange.response_body
            if isinstance(body, Mapping):
                found = body.get("task_id", body.get("id"))
                return found if isinstance(found, str) else None
            return None
        params = op.match(exchange.path) or _suffix_params(op, exchange.path) or {}
        if "task_id" in params:
            return params["task_id"]
        if "file" in params:
            return params["file"].rsplit(".", 1)[0]
        return exchange.task_id

    def observe(self, exchange: Exchange) -> None:
        """Fold an exchange into the state later checks read (the driver calls this)."""
        self.exchanges += 1
        op = self.operation_of(exchange)
        if op is None:
            self.unmatched += 1
            return
        if exchange.timestamp is not None:
            if exchange.status == 429:
                wait = retry_after_seconds(exchange.response_header("retry-after"), exchange.timestamp)
                if wait is not None:
                    self.rate_limited[op.id] = (exchange.timestamp, wait, exchange.source)
            else:
                self.rate_limited.pop(op.id, None)
        body = exchange.response_body
        if 200 <= exchange.status < 300 and isinstance(body, Mapping) and isinstance(body.get("status"), str):
            task_id = self.task_id_of(exchange, op)
            if task_id is None:
                return
            timeline = self.timelines.setdefault(task_id, TaskTimeline())
            timeline.statuses.append((body["status"], exchange.source))
            if timeline.created_at is None:
                timeline.created_at = body.get("created_at")
            if isinstance(body.get("updated_at"), (int, float)):
                timeline.updated_at = body["updated_at"]


def _suffix_params(op: Operation, path: str) -> dict[str, str] | None:
    for i, ch in enumerate(path):
        if ch == "/" and i > 0 and (found := op.match(path[i:])) is not None:
            return found
    return None


@functools.lru_cache(maxsize=4096)
def _match_operation(contract: Contract, method: str, path: str) -> Operation | None:
    for op in contract.operations.values():
        methods = (op.method, "HEAD") if op.method == "GET" else (op.method,)
        if method in methods and (op.match(path) is not None or _suffix_params(op, path) is not None):
            return op
    return None


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
    op = ctx.operation_of(exchange)
    found: list[ContractViolation] = []
    for registered in checks if checks is not None else list(CHECKS):
        try:
            registered(ctx, exchange)
        except ContractViolation as violation:
            violation.check = registered.name
            violation.severity = registered.severity
            if violation.where is None:
                violation.where = exchange.source
            if violation.operation is None and op is not None:
                violation.operation = op.id
            if violation.status is None and violation.part != "request":
                violation.status = exchange.status
            found.append(violation)
    ctx.observe(exchange)
    return found


def check_exchanges(
    exchanges: Iterable[Exchange],
    *,
    contract: Contract | None = None,
    checks: Iterable[str] | None = None,
) -> list[ContractViolation]:
    """Check a sequence of exchanges (one recording, in order) and return every violation.

    >>> check_exchanges([Exchange("GET", "https://api.modelstream.ai/v1/video/generations/task_1", 418)])[0].rule
    'status.documented'
    """
    ctx = CheckContext(contract)
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
) -> None:
    """Raise :class:`ContractViolation` if ``response`` breaks the contract of ``operation``.

    ``response`` is an ``httpx.Response`` (its request included) or an :class:`Exchange`;
    ``operation`` (``"video_generations.get"``) is derived from the URL when omitted. The
    server-side checks run by default; pass ``checks`` names to choose, and a shared
    ``context`` to check a sequence (status transitions, ids, timestamps across polls). The
    first violation is raised; its message names how many more there were.

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
    ctx = context if context is not None else CheckContext(operation=operation)
    if context is not None and operation is not None and ctx.forced_operation is None:
        found_op = ctx.operation_of(exchange)
        if found_op is None or found_op.id != operation:
            ctx = CheckContext(ctx.contract, operation=operation)
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


def _documented_statuses(ctx: CheckContext, op: Operation) -> set[int]:
    statuses = {int(s) for s in op.responses}
    statuses |= {ctx.contract.errors[k].http_status for k in op.errors if ctx.contract.errors[k].http_status}
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


def _unredacted(ctx: CheckContext, body: Any) -> tuple[Any, set[str]]:
    """The body with redaction markers replaced, and the image fields that were redacted."""
    image_params = {
        rule.param for model in ctx.contract.models.values() for rule in model.rules if rule.kind == "image"
    }
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


def _is_create_with_json(ctx: CheckContext, exchange: Exchange) -> bool:
    op = ctx.operation_of(exchange)
    return op is not None and op.id == "video_generations.create" and exchange.request_body is not None


# -- server checks ---------------------------------------------------------------------------


@check(side="server")
def status_code_documented(ctx: CheckContext, exchange: Exchange) -> None:
    """The status code is one the operation documents (its responses and catalogued errors)."""
    op = ctx.operation_of(exchange)
    if op is None:
        return
    documented = _documented_statuses(ctx, op)
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
    """A success body validates against the operation's response schema."""
    op = ctx.operation_of(exchange)
    if op is None or not 200 <= exchange.status < 300:
        return
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
    error = _explain(ctx.contract.response_validator(relpath).iter_errors(body))
    if error is not None:
        raise ContractViolation.from_schema_error(error, operation=op.id, status=exchange.status)


@check(side="server")
def error_object_well_formed(ctx: CheckContext, exchange: Exchange) -> None:
    """Error bodies are the catalogued error object; a failed task's error is a catalogued failure.

    The body is ``{"error": {message, type, param, code}}`` with a type and code the catalogue
    lists for that HTTP status.
    """
    op = ctx.operation_of(exchange)
    if op is None:
        return
    body = exchange.response_body
    contract = ctx.contract
    if exchange.status >= 400 and exchange.method != "HEAD":
        if not isinstance(body, Mapping):
            raise _violation("body.json", "the error body is not a JSON object", expected="a JSON object", actual=body)
        error = best_match(contract.error_validator().iter_errors(body))
        if error is not None:
            raise ContractViolation.from_schema_error(error, operation=op.id, status=exchange.status)
        sent = body["error"]
        known = {(s.type, s.code) for s in contract.errors.values() if s.http_status == exchange.status}
        if known and (sent["type"], sent["code"]) not in known:
            raise _violation(
                "error.catalogued",
                f"error code {sent['code']!r} (type {sent['type']!r}) is not catalogued for HTTP {exchange.status}",
                json_path="$.error.code",
                expected=sorted(f"{t}/{c}" for t, c in known),
                actual=f"{sent['type']}/{sent['code']}",
            )
        return
    if 200 <= exchange.status < 300 and isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        sent = body["error"]
        failures = {(f["type"], f["code"]) for f in contract.task_failures.values()}
        pair = (sent.get("type"), sent.get("code"))
        if pair not in failures:
            raise _violation(
                "error.task_failure_catalogued",
                f"the failed task's error code {sent.get('code')!r} is not a catalogued task failure",
                json_path="$.error.code",
                expected=sorted(f"{t}/{c}" for t, c in failures),
                actual=f"{pair[0]}/{pair[1]}",
            )


def _wire_status(exchange: Exchange) -> str | None:
    body = exchange.response_body
    if not 200 <= exchange.status < 300 or not isinstance(body, Mapping):
        return None
    status = body.get("status")
    return status if isinstance(status, str) else None


@check(side="server")
def status_transition_legal(ctx: CheckContext, exchange: Exchange) -> None:
    """A task's status only moves forward along the lifecycle (skipping unseen steps is fine)."""
    current = _wire_status(exchange)
    if current is None or current not in ctx.reachable:
        return  # unknown spellings are the schema check's finding
    task_id = ctx.task_id_of(exchange)
    timeline = ctx.timelines.get(task_id) if task_id else None
    previous = timeline.last_status if timeline else None
    if previous is None or previous == current or previous in ctx.terminal or previous not in ctx.reachable:
        return
    if current in ctx.reachable[previous]:
        return
    backwards = previous in ctx.reachable[current]
    raise _violation(
        "lifecycle.monotone" if backwards else "lifecycle.transition",
        f"task {task_id} went from {previous!r} {'back ' if backwards else ''}to {current!r}"
        + (f" (previous answer at {timeline.last_source})" if timeline and timeline.last_source else ""),
        json_path="$.status",
        expected=sorted(ctx.reachable[previous] | {previous}),
        actual=current,
    )


@check(side="server")
def terminal_status_final(ctx: CheckContext, exchange: Exchange) -> None:
    """Once a task is completed or failed it stays so."""
    current = _wire_status(exchange)
    if current is None:
        return
    task_id = ctx.task_id_of(exchange)
    timeline = ctx.timelines.get(task_id) if task_id else None
    previous = timeline.last_status if timeline else None
    if previous in ctx.terminal and current != previous:
        raise _violation(
            "lifecycle.terminal_final",
            f"task {task_id} was {previous!r} (terminal) and is now {current!r}",
            json_path="$.status",
            expected=previous,
            actual=current,
        )


@check(side="server")
def url_exactly_when_completed(ctx: CheckContext, exchange: Exchange) -> None:
    """A query answer carries a ``url`` exactly when the task is completed."""
    op = ctx.operation_of(exchange)
    current = _wire_status(exchange)
    if op is None or op.id != "video_generations.get" or current is None:
        return
    body = exchange.response_body
    url = body.get("url")
    has_url = isinstance(url, str) and bool(url)
    if current == ctx.completed and not has_url:
        raise _violation(
            "lifecycle.url_when_completed",
            f"the task is {current!r} but has no url",
            json_path="$.url",
            expected="a URL",
            actual=url,
        )
    if current != ctx.completed and url is not None:
        raise _violation(
            "lifecycle.url_when_completed",
            f"the task is {current!r} but already has a url",
            json_path="$.url",
            expected="null",
            actual=url,
        )


@check(side="server")
def ids_stable(ctx: CheckContext, exchange: Exchange) -> None:
    """``id`` equals ``task_id`` on create, and a query answers for the task it was asked about."""
    op = ctx.operation_of(exchange)
    body = exchange.response_body
    if op is None or not 200 <= exchange.status < 300 or not isinstance(body, Mapping):
        return
    if op.id == "video_generations.create":
        if "id" in body and "task_id" in body and body["id"] != body["task_id"]:
            raise _violation(
                "ids.stable",
                "id and task_id name different tasks",
                json_path="$.id",
                expected=body["task_id"],
                actual=body["id"],
            )
    elif op.id == "video_generations.get" and "task_id" in body:
        asked = ctx.task_id_of(exchange, op)
        if asked is not None and body["task_id"] != asked:
            raise _violation(
                "ids.stable",
                f"asked for task {asked} but the answer is about {body['task_id']!r}",
                json_path="$.task_id",
                expected=asked,
                actual=body["task_id"],
            )


@check(side="server")
def timestamps_non_decreasing(ctx: CheckContext, exchange: Exchange) -> None:
    """A task's ``created_at`` never changes, ``updated_at`` never goes back or before creation."""
    body = exchange.response_body
    if _wire_status(exchange) is None:
        return
    created, updated = body.get("created_at"), body.get("updated_at")
    if isinstance(created, (int, float)) and isinstance(updated, (int, float)) and updated < created:
        raise _violation(
            "timestamps.non_decreasing",
            "updated_at is before created_at",
            json_path="$.updated_at",
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
            json_path="$.created_at",
            expected=timeline.created_at,
            actual=created,
        )
    if isinstance(updated, (int, float)) and timeline.updated_at is not None and updated < timeline.updated_at:
        raise _violation(
            "timestamps.non_decreasing",
            f"task {task_id}'s updated_at went back in time",
            json_path="$.updated_at",
            expected=f">= {timeline.updated_at}",
            actual=updated,
        )


@check(side="server", severity=Severity.WARNING)
def retry_after_sent(ctx: CheckContext, exchange: Exchange) -> None:
    """A ``429`` says how long to wait in ``Retry-After`` (the gateway brief asks for it)."""
    if exchange.status != 429 or ctx.operation_of(exchange) is None:
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


def _create_verdict(ctx: CheckContext, exchange: Exchange, *, strict: bool) -> tuple[Violation | None, set[str]]:
    body, redacted = _unredacted(ctx, exchange.request_body)
    result = validate_create(ctx.contract, body, strict=strict)
    return (result if isinstance(result, Violation) else None), redacted


@check(side="client")
def request_conforms(ctx: CheckContext, exchange: Exchange) -> None:
    """A create request satisfies the request contract: schema and named rules."""
    if not _is_create_with_json(ctx, exchange):
        return
    body = exchange.request_body
    if isinstance(body, str):
        raise _violation(
            "request.json",
            "the create request body is not JSON",
            part="request",
            expected="a JSON object",
            actual=body,
        )
    verdict, redacted = _create_verdict(ctx, exchange, strict=False)
    if verdict is None:
        return
    if verdict.param in redacted and verdict.rule.startswith(f"{verdict.param}."):
        return  # content redacted in the recording: its image rules cannot be judged
    path = _param_path(verdict.param)
    raise _violation(
        verdict.rule,
        f"the request breaks the contract: {verdict.param or 'body'} {verdict.detail}",
        json_path=format_json_path(path),
        part="request",
        expected=verdict.detail,
        actual=_value_at(body, path),
    )


@check(side="client")
def no_unknown_request_fields(ctx: CheckContext, exchange: Exchange) -> None:
    """A create request sends no field the contract does not know (the gateway would drop it)."""
    if not _is_create_with_json(ctx, exchange) or not isinstance(exchange.request_body, Mapping):
        return
    body, _ = _unredacted(ctx, exchange.request_body)
    unknown_rule = ctx.contract.request_rule("unknown_field")
    unknown: list[str] = []
    for _ in range(50):  # each round names one unknown field; drop it and look again
        result = validate_create(ctx.contract, body, strict=True)
        if not isinstance(result, Violation) or result.rule != unknown_rule or result.param is None:
            break
        unknown.append(result.param)
        body = _without(body, _param_path(result.param))
    if unknown:
        more = f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
        raise _violation(
            "unknown_field",
            f"unknown request field {unknown[0]!r}{more}: the real gateway drops it silently",
            json_path=format_json_path(_param_path(unknown[0])),
            part="request",
            expected="only fields of the contract",
            actual=unknown,
        )


@check(side="client")
def retry_after_honoured(ctx: CheckContext, exchange: Exchange) -> None:
    """After a ``429`` with ``Retry-After``, the next call of that operation waits at least that long."""
    op = ctx.operation_of(exchange)
    if op is None or exchange.timestamp is None or op.id not in ctx.rate_limited:
        return
    limited_at, wait, source = ctx.rate_limited[op.id]
    waited = exchange.timestamp - limited_at
    if waited + 1e-6 < wait:
        raise _violation(
            "client.retry_after",
            f"called {op.id} {format_seconds(waited)} after a 429 that asked to wait {format_seconds(wait)}"
            + (f" ({source})" if source else ""),
            json_path="$",
            part="timeline",
            expected=f">= {format_seconds(wait)}",
            actual=format_seconds(waited),
        )
