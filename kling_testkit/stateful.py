"""A Hypothesis state machine that drives *your* client against the fake, with the lifecycle's
invariants checked after every step.

Subclass :class:`TaskLifecycleMachine`, override :meth:`~TaskLifecycleMachine.send_create` and
:meth:`~TaskLifecycleMachine.send_poll` to go through your client (built on
``self.mock.transport()``), and Hypothesis interleaves creates, polls, clock advances,
progression and outcome changes and injected faults, shrinking any failure to the shortest
sequence of steps. The fake's own engine is the ground truth the answers are compared with.

Checked on every answer: the body fits the contract's schema for its status code; a pending
injected fault is answered with exactly its catalogued status and code; task ids stay stable;
statuses only move along ``contracts/lifecycle.json`` transitions (several at once after a
clock jump), and a terminal status never changes; the result ``url`` is present exactly when
the task completed. Checked after every step: every task the engine holds was announced by
a successful create, and the engine never reports a status behind what a client has seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, precondition, rule

from kling_testkit._lifecycle import successors, terminal_statuses
from kling_testkit._mock import KlingMock
from kling_testkit.strategies import valid_requests
from mockserver import FaultPlan, Outcome, Progression
from mockserver.contract import load_contract

__all__ = ["Reply", "TaskLifecycleMachine"]

_CONTRACT = load_contract()
_CREATE = "video_generations.create"
_GET = "video_generations.get"
_AUTH = {"Authorization": "Bearer sk-test"}


@dataclass(frozen=True, slots=True)
class Reply:
    """What your client saw: the HTTP status and the decoded JSON body.

    >>> Reply(200, {"status": "queued"}).status
    200
    """

    status: int
    body: Any


_AFTER = successors(_CONTRACT, wire=True)
_TERMINAL = terminal_statuses(_CONTRACT, wire=True)


def _can_follow(before: str, now: str) -> bool:
    """Whether a task seen in ``before`` may now be in ``now`` (zero or more transitions)."""
    return now == before or now in _AFTER.get(before, ())


_COMPLETED = _CONTRACT.status_projection["succeeded"]
_PROGRESSIONS = [Progression.after_polls(1), Progression.after_polls(3), Progression.after_seconds(30)]
_PROGRESSIONS.append(Progression.immediate())
_OUTCOMES = [Outcome.succeed(), *(Outcome.fail(reason) for reason in sorted(_CONTRACT.task_failures))]


class TaskLifecycleMachine(RuleBasedStateMachine):
    """Creates, polls, clock advances, progression/outcome changes and faults against the fake.

    Override :meth:`make_mock` to configure the fake, and :meth:`send_create` /
    :meth:`send_poll` to use your own client; the defaults talk to the fake through an
    ``httpx.Client`` on its transport. Run it with ``TestMyClient = MyMachine.TestCase``.

    >>> from hypothesis import settings
    >>> from hypothesis.stateful import run_state_machine_as_test
    >>> run_state_machine_as_test(TaskLifecycleMachine, settings=settings(max_examples=2, stateful_step_count=5))
    """

    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.mock = self.make_mock()
        self.contract = self.mock.contract
        self.created: list[str] = []
        self.last_seen: dict[str, str] = {}
        self.pending_faults: dict[str, str] = {}  # operation -> catalogue key of the armed fault

    # -- hooks for subclasses -------------------------------------------------------------------

    def make_mock(self) -> KlingMock:
        """The fake this run drives (a fresh one per run; cheap)."""
        return KlingMock()

    def send_create(self, body: Mapping[str, Any]) -> Reply:
        """Create a task with your client; return the status and JSON body it received."""
        with self.mock.client() as client:
            answer = client.post(self.contract.operations[_CREATE].path, json=body, headers=_AUTH)
        return Reply(answer.status_code, answer.json())

    def send_poll(self, task_id: str) -> Reply:
        """Query a task with your client; return the status and JSON body it received."""
        path = self.contract.operations[_GET].path.replace("{task_id}", task_id)
        with self.mock.client() as client:
            answer = client.get(path, headers=_AUTH)
        return Reply(answer.status_code, answer.json())

    # -- checks --------------------------------------------------------------------------------

    def check_reply(self, operation: str, reply: Reply) -> bool:
        """Check one answer against the contract and any pending fault; True when it is a 200."""
        fault = self.pending_faults.pop(operation, None)
        if fault is not None:
            spec = self.contract.errors[fault]
            error = reply.body.get("error") if isinstance(reply.body, Mapping) else None
            code = error.get("code") if isinstance(error, Mapping) else None
            assert (reply.status, code) == (spec.http_status, spec.code), (
                f"{operation}: an injected {fault} fault should answer {spec.http_status} {spec.code}, got {reply}"
            )
        if reply.status == 200:
            self.contract.response_validator(self.contract.operations[operation].responses["200"]).validate(reply.body)
            return True
        self.contract.error_validator().validate(reply.body)
        return False

    def observe(self, task_id: str, body: Mapping[str, Any]) -> None:
        """Record a status a client saw, checking it follows the lifecycle from the last one."""
        status = body["status"]
        previous = self.last_seen.get(task_id)
        if previous is not None:
            assert _can_follow(previous, status), f"{task_id}: status went {previous} -> {status}"
            assert previous not in _TERMINAL or previous == status, f"{task_id}: left terminal {previous}"
        if "url" in body:
            assert (body["url"] is not None) == (status == _COMPLETED), f"{task_id}: url {body['url']!r} in {status}"
        self.last_seen[task_id] = status

    # -- rules ---------------------------------------------------------------------------------

    @rule(target=tasks, body=valid_requests(kinds="text2video"))
    def create(self, body: dict[str, Any]) -> Any:
        """Create a task from a valid request; a 200 adds its id to ``tasks``, a fault adds none."""
        reply = self.send_create(body)
        if not self.check_reply(_CREATE, reply):
            return multiple()
        task_id = reply.body["task_id"]
        assert reply.body["id"] == task_id
        self.created.append(task_id)
        self.observe(task_id, reply.body)
        return task_id

    @rule(task_id=tasks)
    def poll(self, task_id: str) -> None:
        """Poll one task once and remember the status the client saw."""
        reply = self.send_poll(task_id)
        if self.check_reply(_GET, reply):
            assert reply.body["task_id"] == task_id
            self.observe(task_id, reply.body)

    @rule(task_id=tasks, polls=st.integers(2, 6))
    def poll_repeatedly(self, task_id: str, polls: int) -> None:
        """What a polling loop does (without the sleeps: time moves only when a rule says so)."""
        for _ in range(polls):
            self.poll(task_id)
            if self.last_seen.get(task_id) in _TERMINAL:
                break

    @rule(seconds=st.sampled_from([0.5, 5, 29.9, 30, 61, 3600]))
    def advance_clock(self, seconds: float) -> None:
        """Move the virtual clock, across and around the seconds-based progression's step length."""
        self.mock.advance_clock(seconds)

    @rule(progression=st.sampled_from(_PROGRESSIONS))
    def set_progression(self, progression: Progression) -> None:
        """Change the default progression (tasks created from now on follow it)."""
        self.mock.set_progression(progression)

    @rule(outcome=st.sampled_from(_OUTCOMES))
    def set_outcome(self, outcome: Outcome) -> None:
        """Change the default outcome (success or one of the contract's failure reasons)."""
        self.mock.set_outcome(outcome)

    @precondition(lambda self: not self.pending_faults)
    @rule(data=st.data(), operation=st.sampled_from([_CREATE, _GET]))
    def inject_fault(self, data: st.DataObject, operation: str) -> None:
        """Arm one catalogue error of ``operation`` for its next call (one pending fault at a time)."""
        error = data.draw(st.sampled_from(sorted(self.contract.operations[operation].errors)), label="error")
        self.mock.arm_fault(FaultPlan(operation=operation, error=error, times=1))
        self.pending_faults[operation] = error

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
            assert seen is None or _can_follow(seen, now), f"{task.id}: seen {seen}, the fake says {now}"
