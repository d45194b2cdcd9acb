"""Lifecycle questions answered from the fake's journal.

Every helper takes a *source*: a :class:`~kling_testkit.KlingMock`, a
:class:`~kling_testkit.LiveServer` (same engine, same process), an :class:`~mockserver.Engine`,
a :class:`~mockserver.Journal`, or any iterable of :class:`~mockserver.JournalEntry`. Times are
the engine clock's, so with a virtual clock they say what the client *would* have waited.

- :func:`polls` / :func:`polls_before_end`: how often a client polled a task, and how often
  before the task had ended;
- :func:`min_poll_interval`: the smallest gap between two polls of the same task;
- :func:`retry_after_waits` / :func:`assert_retry_after_honoured`: after each ``429`` with
  ``Retry-After``, how long the client waited before calling the same operation again;
- :func:`contract_violations` / :func:`assert_contract_clean`: every request that broke the
  request contract (refused with a field path and a rule id) or raised a contract warning
  (such as an unknown field the real gateway drops silently).

>>> from kling_testkit import KlingMock
>>> api = KlingMock()  # each step of a task takes one poll (the default progression)
>>> client = api.client(headers={"Authorization": "Bearer sk-test"})
>>> body = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
>>> task_id = client.post("/v1/video/generations", json=body).json()["task_id"]
>>> for wait in (10, 4, 0):  # a client that polls, waits 10 s, polls, waits 4 s, polls
...     status = client.get(f"/v1/video/generations/{task_id}").json()["status"]
...     _ = api.advance_clock(wait)
>>> status, polls(api, task_id), polls_before_end(api, task_id), min_poll_interval(api)
('completed', 3, 1, 4.0)
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, Union

from kling_testkit._lifecycle import format_seconds, terminal_statuses
from kling_testkit.checks import retry_after_seconds
from kling_testkit.errors import KlingTestkitError
from kling_testkit.failures import ContractViolation, Severity
from mockserver import Contract, Engine, Journal, JournalEntry, load_contract
from mockserver.http import find_header

__all__ = [
    "ContractNotClean",
    "RetryAfterWait",
    "assert_contract_clean",
    "assert_retry_after_honoured",
    "contract_violations",
    "journal_entries",
    "min_poll_interval",
    "polls",
    "polls_before_end",
    "retry_after_waits",
]

CREATE = "video_generations.create"
GET = "video_generations.get"


class _HasEngine(Protocol):
    @property
    def engine(self) -> Engine: ...


Source = Union[_HasEngine, Engine, Journal, Iterable[JournalEntry]]  # noqa: UP007 - a runtime alias on 3.10


def journal_entries(source: Source) -> list[JournalEntry]:
    """The journal entries of ``source``, oldest first.

    >>> from kling_testkit import KlingMock
    >>> api = KlingMock()
    >>> _ = api.client().get("/v1/video/generations/task_x")  # no key: refused, and journaled
    >>> [(entry.seq, entry.method, entry.status) for entry in journal_entries(api)]
    [(1, 'GET', 401)]
    >>> journal_entries(api.engine) == journal_entries(api.journal) == journal_entries(api.entries())
    True
    """
    if isinstance(source, Journal):
        return source.entries()
    if isinstance(source, Engine):
        return source.journal.entries()
    engine = getattr(source, "engine", None)
    if isinstance(engine, Engine):
        return engine.journal.entries()
    return list(source)  # type: ignore[arg-type]


def _contract(source: Source) -> Contract:
    engine = source if isinstance(source, Engine) else getattr(source, "engine", None)
    return engine.contract if isinstance(engine, Engine) else load_contract()


def _poll_entries(entries: Iterable[JournalEntry], task_id: str | None) -> list[JournalEntry]:
    return [e for e in entries if e.operation == GET and e.task_id is not None and task_id in (None, e.task_id)]


def polls(source: Source, task_id: str) -> int:
    """How many times the client polled ``task_id`` (every answered poll, errors included).

    >>> from kling_testkit import KlingMock
    >>> api = KlingMock()
    >>> client = api.client(headers={"Authorization": "Bearer sk-test"})
    >>> body = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
    >>> task_id = client.post("/v1/video/generations", json=body).json()["task_id"]
    >>> [client.get(f"/v1/video/generations/{task_id}").json()["status"] for _ in range(3)]
    ['in_progress', 'completed', 'completed']
    >>> polls(api, task_id), polls(api, "task_other")
    (3, 0)
    """
    return len(_poll_entries(journal_entries(source), task_id))


def polls_before_end(source: Source, task_id: str) -> int:
    """Polls of ``task_id`` answered while the task had not ended (the answer was ``queued`` or
    ``in_progress``). With the default progression (a step per poll) a task that completes on
    the second poll got 1 poll before its end; the poll that saw it end is not counted, and
    neither are the redundant polls after it.

    >>> from kling_testkit import KlingMock
    >>> api = KlingMock(progression="polls:2")
    >>> client = api.client(headers={"Authorization": "Bearer sk-test"})
    >>> body = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
    >>> task_id = client.post("/v1/video/generations", json=body).json()["task_id"]
    >>> [client.get(f"/v1/video/generations/{task_id}").json()["status"] for _ in range(6)]
    ['queued', 'in_progress', 'in_progress', 'completed', 'completed', 'completed']
    >>> polls_before_end(api, task_id)
    3
    """
    terminal = terminal_statuses(_contract(source), wire=True)
    count = 0
    for entry in _poll_entries(journal_entries(source), task_id):
        body = entry.response_body
        if entry.status == 200 and isinstance(body, Mapping) and body.get("status") not in terminal:
            count += 1
    return count


def min_poll_interval(source: Source, task_id: str | None = None) -> float | None:
    """The smallest time between two consecutive polls of the same task (of ``task_id``, or of
    any task), in seconds of the engine clock; None when no task was polled twice.

    >>> from kling_testkit import KlingMock
    >>> api = KlingMock()
    >>> client = api.client(headers={"Authorization": "Bearer sk-test"})
    >>> body = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
    >>> task_id = client.post("/v1/video/generations", json=body).json()["task_id"]
    >>> min_poll_interval(api) is None  # not polled twice yet
    True
    >>> for wait in (30, 2, 15):
    ...     _ = client.get(f"/v1/video/generations/{task_id}")
    ...     _ = api.advance_clock(wait)
    >>> min_poll_interval(api), min_poll_interval(api, "task_other")
    (2.0, None)
    """
    last: dict[str, float] = {}
    smallest: float | None = None
    for entry in _poll_entries(journal_entries(source), task_id):
        assert entry.task_id is not None
        previous = last.get(entry.task_id)
        if previous is not None:
            gap = entry.time - previous
            smallest = gap if smallest is None else min(smallest, gap)
        last[entry.task_id] = entry.time
    return smallest


@dataclass(frozen=True, slots=True)
class RetryAfterWait:
    """One ``429`` with ``Retry-After``, and how long the client waited before calling the same
    operation again (``waited`` is None if it never did)."""

    entry: JournalEntry
    operation: str
    asked: float
    waited: float | None

    @property
    def honoured(self) -> bool:
        """The client waited at least ``Retry-After`` (or never came back)."""
        return self.waited is None or self.waited + 1e-9 >= self.asked

    def __str__(self) -> str:
        waited = "never called again" if self.waited is None else f"called again after {format_seconds(self.waited)}"
        return f"#{self.entry.seq} {self.operation} -> 429 Retry-After {format_seconds(self.asked)}: {waited}"


def retry_after_waits(source: Source, operation: str | None = None) -> list[RetryAfterWait]:
    """Every ``429`` that carried ``Retry-After`` (for ``operation``, or any), with the wait.

    >>> import httpx, kling_testkit
    >>> with kling_testkit.mock() as api:  # patched: any httpx call to the base URL reaches the fake
    ...     url, key = api.base_url + "/v1/video/generations", {"Authorization": "Bearer sk-test"}
    ...     shot = {"prompt": "a fox", "duration": 5}
    ...     _ = api.arm_fault(operation="video_generations.create", error="rate_limited", retry_after=3)
    ...     answers = [httpx.post(url, headers=key, json={"model": "kling-v2-6", "multi_prompt": [shot]})]
    ...     _ = api.advance_clock(4)  # this client waits 4 s before it tries again
    ...     answers.append(httpx.post(url, headers=key, json={"model": "kling-v2-6", "multi_prompt": [shot]}))
    >>> [a.status_code for a in answers], [(w.asked, w.waited, w.honoured) for w in retry_after_waits(api)]
    ([429, 200], [(3.0, 4.0, True)])
    """
    entries = journal_entries(source)
    out: list[RetryAfterWait] = []
    for index, entry in enumerate(entries):
        if entry.status != 429 or entry.operation is None or operation not in (None, entry.operation):
            continue
        header = find_header(entry.response_headers, "retry-after")
        asked = retry_after_seconds(header, entry.time)
        if asked is None:
            continue
        again = next((e for e in entries[index + 1 :] if e.operation == entry.operation), None)
        out.append(RetryAfterWait(entry, entry.operation, asked, None if again is None else again.time - entry.time))
    return out


def assert_retry_after_honoured(source: Source, operation: str | None = None) -> None:
    """Fail unless, after every ``429`` with ``Retry-After``, the client waited at least that
    long before calling the same operation again; the message lists each early retry.

    >>> from kling_testkit import KlingMock
    >>> api = KlingMock()
    >>> client = api.client(headers={"Authorization": "Bearer sk-test"})
    >>> body = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
    >>> _ = api.arm_fault(operation="video_generations.create", error="rate_limited", retry_after=5)
    >>> client.post("/v1/video/generations", json=body).status_code
    429
    >>> _ = api.advance_clock(2)  # the client retries after 2 s, not 5
    >>> client.post("/v1/video/generations", json=body).status_code
    200
    >>> assert_retry_after_honoured(api)
    Traceback (most recent call last):
    ...
    AssertionError: 1 retry(ies) came before Retry-After had passed:
      #1 video_generations.create -> 429 Retry-After 5 s: called again after 2 s
    """
    early = [wait for wait in retry_after_waits(source, operation) if not wait.honoured]
    if early:
        lines = "\n".join(f"  {wait}" for wait in early)
        raise AssertionError(f"{len(early)} retry(ies) came before Retry-After had passed:\n{lines}")


# -- the request contract ----------------------------------------------------------------------


@functools.cache
def _refusal_patterns(contract: Contract) -> tuple[tuple[str, str, re.Pattern[str]], ...]:
    """(catalogue key, code, message regex) of the 4xx errors that refuse a request's content,
    derived from the catalogue's message templates; ``rule``/``param`` are named groups."""
    out = []
    for key in contract.operations[CREATE].errors:
        spec = contract.errors[key]
        if not 400 <= spec.http_status < 500 or spec.http_status in (401, 403, 429):
            continue  # auth, quota and rate limits are not about what the request said
        pattern = ""
        seen: set[str] = set()
        for literal, field_name, _, _ in string.Formatter().parse(spec.message):
            pattern += re.escape(literal)
            if field_name is None:
                continue
            if field_name in ("rule", "param") and field_name not in seen:
                seen.add(field_name)
                pattern += f"(?P<{field_name}>.+?)"
            else:
                pattern += ".*?"
        out.append((key, spec.code, re.compile(pattern + r"\Z", re.DOTALL)))
    return tuple(out)


def _refusal(contract: Contract, entry: JournalEntry) -> ContractViolation | None:
    body = entry.response_body
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping) or not isinstance(error.get("message"), str):
        return None
    message, code, param = error["message"], error.get("code"), error.get("param")
    for key, spec_code, pattern in _refusal_patterns(contract):
        if code != spec_code:
            continue
        found = pattern.match(message)
        if found is None:
            continue
        groups = found.groupdict()
        rule = groups.get("rule") or key
        param = param if isinstance(param, str) else groups.get("param")
        return ContractViolation(
            rule,
            message,
            operation=entry.operation,
            status=entry.status,
            json_path=_json_path(param),
            part="request",
            where=f"journal#{entry.seq}",
        )
    return None


def _json_path(param: str | None) -> str:
    if not param:
        return "$"
    return "$" + ("" if param.startswith("[") else ".") + param


def contract_violations(source: Source) -> list[ContractViolation]:
    """Every way the client's requests broke the request contract, oldest first: requests the
    fake refused for their content (severity error; rule id and field path from the answer) and
    contract warnings on accepted requests (severity warning; e.g. an unknown field).

    >>> from kling_testkit import KlingMock
    >>> api = KlingMock()
    >>> client = api.client(headers={"Authorization": "Bearer sk-test"})
    >>> body = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
    >>> _ = client.post("/v1/video/generations", json={**body, "colour": "red"})  # dropped by the gateway
    >>> _ = client.post("/v1/video/generations", json={**body, "sound": "on", "mode": "std"})  # refused
    >>> [(v.severity.value, v.rule, v.json_path) for v in contract_violations(api)]
    [('warning', 'unknown_field', '$.colour'), ('error', 'sound.requires_pro', '$.sound')]
    """
    contract = _contract(source)
    out: list[ContractViolation] = []
    for entry in journal_entries(source):
        if entry.operation == CREATE and 400 <= entry.status < 500 and entry.fault is None:
            refused = _refusal(contract, entry)
            if refused is not None:
                out.append(refused)
        for warning in entry.warnings:
            out.append(
                ContractViolation(
                    warning.rule,
                    warning.message,
                    operation=entry.operation,
                    status=entry.status,
                    json_path=_json_path(warning.param),
                    part="request",
                    severity=Severity.WARNING,
                    where=f"journal#{entry.seq}",
                )
            )
    return out


class ContractNotClean(KlingTestkitError, AssertionError):
    """Raised by :func:`assert_contract_clean`; ``violations`` holds each finding."""

    def __init__(self, violations: list[ContractViolation]) -> None:
        self.violations = violations
        lines = [
            f"  {v.where} {v.operation} -> {v.status}: {v.severity.value} at {v.json_path} (rule {v.rule}): {v.message}"
            for v in violations
        ]
        super().__init__(f"{len(violations)} request(s) broke the Kling contract:\n" + "\n".join(lines))


def assert_contract_clean(source: Source, *, allow: Iterable[str] = (), warnings: bool = True) -> None:
    """Fail when any request broke the contract, listing each finding with its field path and
    rule id. ``allow``: rule ids to ignore; ``warnings=False`` ignores contract warnings.

    >>> import kling_testkit
    >>> api = kling_testkit.KlingMock(strict=True)  # strict: an unknown field is refused, not dropped
    >>> client = api.client(headers={"Authorization": "Bearer sk-test"})
    >>> shot = {"prompt": "a fox", "duration": 5}
    >>> client.post("/v1/video/generations", json={"model": "kling-v2-6", "multi_prompt": [shot], "fps": 60})
    <Response [400 Bad Request]>
    >>> assert_contract_clean(api, allow=["unknown_field"])
    >>> assert_contract_clean(api)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kling_testkit.assertions.ContractNotClean: 1 request(s) broke the Kling contract:
      journal#1 video_generations.create -> 400: error at $.fps (rule unknown_field): Unknown field 'fps' ...
    """
    allowed = set(allow)
    found = [
        v
        for v in contract_violations(source)
        if v.rule not in allowed and (warnings or v.severity is not Severity.WARNING)
    ]
    if found:
        raise ContractNotClean(found)
