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
- :func:`contract_violations` / :func:`assert_contract_clean`: every request the fake refused
  (the journal records the rule id and the field of each refusal: a bad body, an unknown model,
  a refused key, an unknown task...) or that raised a contract warning (such as an unknown field
  the real gateway drops silently). Injected faults are not the client's doing and never count;
- :func:`token_refusals` / :func:`assert_tokens_renewed`: did the client re-sign its token
  before it expired (no request refused as expired or not yet valid) on faces that sign tokens;
- :func:`slot_refusals` / :func:`assert_within_concurrency_slots`: did the client stay within
  its account's concurrency slots (no create refused because every slot was held).

Every helper works on every face's entries: it reads answers through the face's contract
(operation verbs, the ``reader``, the error catalogue), never by a face's field names.

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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, Union

from kling_testkit._lifecycle import format_seconds, terminal_statuses
from kling_testkit.checks import retry_after_seconds, slot_refusal, token_refusal
from kling_testkit.errors import KlingTestkitError
from kling_testkit.failures import ContractViolation, Severity
from mockserver import Contract, Engine, Journal, JournalEntry, load_contract
from mockserver.http import find_header

__all__ = [
    "ContractNotClean",
    "RetryAfterWait",
    "assert_contract_clean",
    "assert_retry_after_honoured",
    "assert_tokens_renewed",
    "assert_within_concurrency_slots",
    "contract_violations",
    "journal_entries",
    "min_poll_interval",
    "polls",
    "polls_before_end",
    "retry_after_waits",
    "slot_refusals",
    "token_refusals",
]

#: the face-neutral verbs of the operations these questions are about (every face's contract
#: names its operations' verbs, so the helpers work on every face's journal entries)
POLL_VERB = "task.get"


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


def _contract_of(entry: JournalEntry) -> Contract | None:
    return load_contract(entry.face) if entry.face else None


def _verb(entry: JournalEntry) -> str | None:
    contract = _contract_of(entry)
    if contract is None or entry.operation is None:
        return None
    op = contract.operations.get(entry.operation)
    return op.verb if op is not None else None


def _poll_entries(entries: Iterable[JournalEntry], task_id: str | None) -> list[JournalEntry]:
    return [e for e in entries if e.task_id is not None and task_id in (None, e.task_id) and _verb(e) == POLL_VERB]


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
    count = 0
    for entry in _poll_entries(journal_entries(source), task_id):
        contract = _contract_of(entry)
        assert contract is not None  # a poll entry has a face
        body = entry.response_body
        status = contract.reader.get("status", body) if isinstance(body, Mapping) else None
        if entry.status == 200 and status is not None and status not in terminal_statuses(contract, wire=True):
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
        again = next((e for e in entries[index + 1 :] if e.operation == entry.operation and e.face == entry.face), None)
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


def _refusal(entry: JournalEntry) -> ContractViolation | None:
    """The refusal the journal recorded for ``entry`` (its rule id and field), if any."""
    if entry.rule is None or entry.fault is not None:
        return None
    contract = _contract_of(entry)
    body = entry.response_body
    message = contract.reader.get("error_message", body) if contract and isinstance(body, Mapping) else None
    return ContractViolation(
        entry.rule,
        message if isinstance(message, str) else f"refused with HTTP {entry.status}",
        operation=entry.operation,
        status=entry.status,
        json_path=_json_path(entry.param),
        part="request",
        where=f"journal#{entry.seq}",
    )


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
    out: list[ContractViolation] = []
    for entry in journal_entries(source):
        refused = _refusal(entry)
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


# -- tokens and concurrency slots ---------------------------------------------------------------


def token_refusals(source: Source) -> list[JournalEntry]:
    """Requests refused because their signed token had expired or was not yet valid, oldest
    first (the journal's rule ids ``auth.exp``/``auth.nbf``, or the face's catalogue entries for
    those situations). Faces that take plain API keys never refuse a token on time grounds.

    >>> token_refusals([])
    []
    """
    return [
        entry
        for entry in journal_entries(source)
        if (contract := _contract_of(entry)) is not None
        and token_refusal(contract, entry.status, entry.response_body, rule=entry.rule, fault=entry.fault)
    ]


def assert_tokens_renewed(source: Source) -> None:
    """Fail unless the client re-signed its token before it expired: no request was refused as
    expired (Kling's 401/1004) or not yet valid (401/1003). The message lists each refusal.

    A test proves a client renews its token by advancing the fake's clock past the token's
    ``exp`` between calls: the fake checks ``exp``/``nbf`` on its own clock.

    >>> assert_tokens_renewed([])
    """
    found = token_refusals(source)
    if found:
        raise AssertionError(
            f"{len(found)} request(s) carried an expired or not yet valid token; re-sign before exp:\n"
            + "\n".join(f"  {_refusal_line(entry)}" for entry in found)
        )


def slot_refusals(source: Source) -> list[JournalEntry]:
    """Creates refused because every concurrency slot of the account was held (the journal's
    rule id from the face's ``request_rules``, or the error its ``concurrency`` section names),
    oldest first; injected faults do not count.

    >>> slot_refusals([])
    []
    """
    return [
        entry
        for entry in journal_entries(source)
        if (contract := _contract_of(entry)) is not None
        and slot_refusal(contract, entry.status, entry.response_body, rule=entry.rule, fault=entry.fault)
    ]


def assert_within_concurrency_slots(source: Source) -> None:
    """Fail if the client ever created more unfinished tasks than its account has slots (Kling's
    429/1303): a task holds a slot from its creation until it ends, failure included.

    >>> assert_within_concurrency_slots([])
    """
    found = slot_refusals(source)
    if found:
        raise AssertionError(
            f"{len(found)} create(s) were refused because every concurrency slot was held:\n"
            + "\n".join(f"  {_refusal_line(entry)}" for entry in found)
        )


def _refusal_line(entry: JournalEntry) -> str:
    contract = _contract_of(entry)
    body = entry.response_body
    code = contract.reader.get("error_code", body) if contract and isinstance(body, Mapping) else None
    message = contract.reader.get("error_message", body) if contract and isinstance(body, Mapping) else None
    rule = f" (rule {entry.rule})" if entry.rule else ""
    return f"#{entry.seq} {entry.operation} -> {entry.status} {code}{rule}: {message}"


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
