"""A Hypothesis state machine that drives *your* client against the fake, with the lifecycle's
invariants checked after every step.

Subclass :class:`TaskLifecycleMachine`, set ``face`` to the dialect your client speaks (default:
the first registered face, the gateway; ``"official"`` for Kling's own API), override
:meth:`~TaskLifecycleMachine.send_create` and :meth:`~TaskLifecycleMachine.send_poll` to go
through your client (built on ``self.mock.transport()``), and Hypothesis interleaves creates,
polls, clock advances, progression and outcome changes and injected faults, shrinking any
failure to the shortest sequence of steps. The fake's own engine is the ground truth the
answers are compared with.

Answers are read through the face's contract ``reader`` (where its answers keep the task id,
status, result URL and error code), so the same checks hold for every face. Checked on every
answer: the body fits the contract's schema for its status code; a pending injected fault is
answered with exactly its catalogued status and code; task ids stay stable; statuses only move
along ``contracts/lifecycle.json`` transitions (several at once after a clock jump), and a
terminal status never changes; the result URL is present exactly when the task succeeded.
Checked after every step: every task the engine holds was announced by a successful create,
and the engine never reports a status behind what a client has seen.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, precondition, rule

from kling_testkit._lifecycle import successors
from kling_testkit._mock import KlingMock
from kling_testkit._strategies.common import face_name
from kling_testkit._strategies.wire import auth_headers, operation_for
from kling_testkit.strategies import CreateRequest, valid_creates
from mockserver import FaultPlan, Outcome, Progression
from mockserver.contract import Contract, load_contract, load_lifecycle
from mockserver.engine import Status

__all__ = ["Reply", "TaskLifecycleMachine"]

_CREATE = "task.create"
_GET = "task.get"


@dataclass(frozen=True, slots=True)
class Reply:
    """What your client saw: the HTTP status and the decoded JSON body.

    >>> Reply(200, {"status": "queued"}).status
    200
    """

    status: int
    body: Any


@functools.cache
def _reachable(contract: Contract) -> frozenset[tuple[str, str]]:
    """Wire-status pairs (a, b) with b reachable from a in zero or more transitions."""
    after = successors(contract, wire=True)
    return frozenset(
        {(s, s) for s in contract.status_projection.values()}
        | {(a, b) for a, reached in after.items() for b in reached}
    )


_PROGRESSIONS = [Progression.after_polls(1), Progression.after_polls(3), Progression.after_seconds(30)]
_PROGRESSIONS.append(Progression.immediate())
_OUTCOMES = st.deferred(
    lambda: st.sampled_from(
        [Outcome.succeed(), *(Outcome.fail(r) for r in sorted(load_lifecycle()["failure_reasons"]) if r[0] != "$")]
    )
)


def _creates(machine: TaskLifecycleMachine) -> st.SearchStrategy[CreateRequest]:
    return valid_creates(face=machine.face_name, kinds=st.sampled_from(machine.create_kinds()))


class TaskLifecycleMachine(RuleBasedStateMachine):
    """Creates, polls, clock advances, progression/outcome changes and faults against the fake.

    ``face`` (class attribute): the face your client speaks, default the first registered one.
    ``request_kinds``: the kinds of request created (default ``("text2video",)``; None for
    every kind the face's models serve). Override :meth:`make_mock` to configure the fake, and
    :meth:`send_create` / :meth:`send_poll` to use your own client; the defaults talk to the
    fake through an ``httpx.Client`` on its transport with the face's default credentials
    (:meth:`auth_headers`). On a face with one path per request kind (Kling's own API), a hook
    finds the kind in :attr:`creating` (the :class:`~kling_testkit.strategies.CreateRequest`
    being sent: ``.kind``, ``.path``) and in :attr:`kinds` (task id -> the kind it was created
    as). Run it with ``TestMyClient = MyMachine.TestCase``.

    >>> from hypothesis import settings
    >>> from hypothesis.stateful import run_state_machine_as_test
    >>> quick = settings(max_examples=2, stateful_step_count=5, deadline=None)
    >>> run_state_machine_as_test(TaskLifecycleMachine, settings=quick)
    >>> class Official(TaskLifecycleMachine):
    ...     face = "official"
    >>> run_state_machine_as_test(Official, settings=quick)
    """

    face: ClassVar[str | None] = None
    request_kinds: ClassVar[tuple[str, ...] | None] = ("text2video",)

    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.face_name = face_name(type(self).face)
        self.contract = load_contract(self.face_name)
        self.reader = self.contract.reader
        self.mock = self.make_mock()
        self.created: list[str] = []
        #: task id -> the request kind it was created as (where a poll goes on Kling's own API)
        self.kinds: dict[str, str] = {}
        #: the create being sent (set while :meth:`send_create` runs): its kind, operation, path
        self.creating: CreateRequest | None = None
        self.last_seen: dict[str, str] = {}
        self.pending_faults: dict[str, str] = {}  # verb -> catalogue key of the armed fault
        self._reachable = _reachable(self.contract)
        wire = self.contract.status_projection
        self._terminal = frozenset(wire[s] for s in self.contract.lifecycle["terminal"])
        self._succeeded = wire[Status.SUCCEEDED.value]

    # -- hooks for subclasses -------------------------------------------------------------------

    def make_mock(self) -> KlingMock:
        """The fake this run drives (a fresh one per run, serving this machine's face; cheap)."""
        return KlingMock(faces=[self.face_name])

    def create_kinds(self) -> list[str]:
        """The request kinds the create rule draws from (``request_kinds``, or every kind)."""
        kinds = type(self).request_kinds
        if kinds is None:
            return sorted({k for m in self.contract.models.values() for k in m.request_schemas})
        return list(kinds)

    def auth_headers(self) -> tuple[tuple[str, str], ...]:
        """The face's default credentials (a token signed now, on the fake's clock, where the
        face signs tokens)."""
        return auth_headers(self.contract, self.mock.clock.now())

    def send_create(self, body: Mapping[str, Any]) -> Reply:
        """Create a task with your client; return the status and JSON body it received (the
        path for the request's kind: ``self.creating.path``; on a face that takes forms,
        ``self.creating.content_type`` says whether it is a JSON body or a
        ``multipart/form-data`` form, ``body`` its text fields and ``self.creating.files`` its
        file parts, as httpx's ``data=`` and ``files=`` take them)."""
        creating = self.creating
        assert creating is not None
        with self.mock.client() as client:
            if creating.content_type == "application/json":
                answer = client.post(creating.path, json=dict(body), headers=self.auth_headers())
            else:
                encoded = replace(creating, body=dict(body)).encoded()
                headers = (*self.auth_headers(), ("content-type", encoded.content_type))
                answer = client.post(creating.path, content=encoded.data, headers=headers)
        return Reply(answer.status_code, answer.json())

    def send_poll(self, task_id: str) -> Reply:
        """Query a task with your client; return the status and JSON body it received (on a face
        with one path per kind, the kind the task was created as is ``self.kinds[task_id]``)."""
        path = operation_for(self.contract, _GET, self.kinds.get(task_id)).path.replace("{task_id}", task_id)
        with self.mock.client() as client:
            answer = client.get(path, headers=self.auth_headers())
        return Reply(answer.status_code, answer.json())

    # -- checks --------------------------------------------------------------------------------

    def check_reply(self, operation: str, reply: Reply) -> bool:
        """Check one answer of ``operation`` (an operation id of the face) against the contract
        and any pending fault; True when it is a 200."""
        op = self.contract.operations[operation]
        fault = self.pending_faults.pop(op.verb, None)
        if fault is not None:
            self.mock.clear_faults()  # the plans armed on the verb's other paths
            spec = self.contract.errors[fault]
            code = self.reader.get("error_code", reply.body) if isinstance(reply.body, Mapping) else None
            assert (reply.status, code) == (spec.http_status, spec.code), (
                f"{operation}: an injected {fault} fault should answer {spec.http_status} {spec.code}, got {reply}"
            )
        if reply.status == 200:
            self.contract.response_validator(op.responses["200"]).validate(reply.body)
            return True
        self.contract.error_validator().validate(reply.body)
        return False

    def refusal_is_explained(self, create: CreateRequest) -> None:
        """A drawn create is valid, so with no fault armed only the fake's state may refuse it
        (an account out of concurrency slots); any other refusal means the client sent
        something else than it was given, or the fake refuses what its contract accepts."""
        refused = [e for e in self.mock.entries(operation=create.operation) if e.rule is not None]
        rule = refused[-1].rule if refused else None
        explained = {row.id for key, row in self.contract.request_rules.items() if key == "concurrency_slots"}
        assert rule in explained, (
            f"{create.operation}: a valid create was refused (rule {rule}, field "
            f"{refused[-1].param if refused else None}); sent {create.body!r:.300}"
        )

    def observe(self, task_id: str, body: Mapping[str, Any], *, result: bool = True) -> None:
        """Record a status a client saw, checking it follows the lifecycle from the last one;
        ``result``: the answer carries the task's result (a query), so the result URL must be
        there exactly when the task succeeded."""
        status = self.reader.get("status", body)
        assert isinstance(status, str), f"{task_id}: no status in {body!r:.200}"
        previous = self.last_seen.get(task_id)
        if previous is not None:
            assert (previous, status) in self._reachable, f"{task_id}: status went {previous} -> {status}"
            assert previous not in self._terminal or previous == status, f"{task_id}: left terminal {previous}"
        if result:
            url = self.contract.result_url(body)  # named in the answer, or the face's result path
            assert (url is not None) == (status == self._succeeded), f"{task_id}: result url {url!r} in {status}"
        self.last_seen[task_id] = status

    # -- rules ---------------------------------------------------------------------------------

    @rule(target=tasks, create=st.runner().flatmap(_creates))
    def create(self, create: CreateRequest) -> Any:
        """Create a task from a valid request; a 200 adds its id to ``tasks``, a refusal none."""
        self.creating = create
        try:
            reply = self.send_create(create.body)
        finally:
            self.creating = None
        faulted = self.contract.operations[create.operation].verb in self.pending_faults
        if not self.check_reply(create.operation, reply):
            if not faulted:
                self.refusal_is_explained(create)
            return multiple()
        task_id = self.reader.get("task_id", reply.body)
        assert isinstance(task_id, str), f"no task id in {reply.body!r:.200}"
        self.created.append(task_id)
        self.kinds[task_id] = create.kind
        self.observe(task_id, reply.body, result=False)
        return task_id

    @rule(task_id=tasks)
    def poll(self, task_id: str) -> None:
        """Poll one task once and remember the status the client saw."""
        reply = self.send_poll(task_id)
        if self.check_reply(operation_for(self.contract, _GET, self.kinds[task_id]).id, reply):
            assert self.reader.get("task_id", reply.body) == task_id
            self.observe(task_id, reply.body)

    @rule(task_id=tasks, polls=st.integers(2, 6))
    def poll_repeatedly(self, task_id: str, polls: int) -> None:
        """What a polling loop does (without the sleeps: time moves only when a rule says so)."""
        for _ in range(polls):
            self.poll(task_id)
            if self.last_seen.get(task_id) in self._terminal:
                break

    @rule(seconds=st.sampled_from([0.5, 5, 29.9, 30, 61, 3600]))
    def advance_clock(self, seconds: float) -> None:
        """Move the virtual clock, across and around the seconds-based progression's step length."""
        self.mock.advance_clock(seconds)

    @rule(progression=st.sampled_from(_PROGRESSIONS))
    def set_progression(self, progression: Progression) -> None:
        """Change the default progression (tasks created from now on follow it)."""
        self.mock.set_progression(progression)

    @rule(outcome=_OUTCOMES)
    def set_outcome(self, outcome: Outcome) -> None:
        """Change the default outcome (success or one of the contract's failure reasons)."""
        self.mock.set_outcome(outcome)

    @precondition(lambda self: not self.pending_faults)
    @rule(data=st.data(), verb=st.sampled_from([_CREATE, _GET]))
    def inject_fault(self, data: st.DataObject, verb: str) -> None:
        """Arm one catalogue error of the face's ``verb`` operations for their next call (one
        pending fault at a time; on a face with one path per kind, on each of them)."""
        ops = [op for op in self.contract.operations.values() if op.verb == verb]
        errors = sorted({e for op in ops for e in op.errors})
        error = data.draw(st.sampled_from(errors), label="error")
        for op in ops:
            self.mock.arm_fault(FaultPlan(operation=op.id, error=error, times=1))
        self.pending_faults[verb] = error

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def every_task_was_announced_by_a_create(self) -> None:
        """The fake holds exactly the tasks whose creates answered 200, in order."""
        held = [task.id for task in self.mock.tasks()]
        assert held == self.created, f"the fake holds {held}, creates announced {self.created}"

    @invariant()
    def the_fake_is_never_behind_what_a_client_saw(self) -> None:
        """A task's status now is reachable from the last status a client saw for it."""
        for task in self.mock.tasks():
            seen = self.last_seen.get(task.id)
            now = self.contract.status_projection[task.status.value]
            assert seen is None or (seen, now) in self._reachable, f"{task.id}: seen {seen}, the fake says {now}"
