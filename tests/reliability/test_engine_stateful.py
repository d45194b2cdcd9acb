"""The engine as a state machine: any sequence of control verbs keeps the lifecycle invariants.

Hypothesis drives create, poll, read, advance clock, advance task, set outcome/progression
(per task and default), arm and fire faults, and reset, in any order; after every step the
invariants of ``contracts/lifecycle.json`` hold: transitions legal, terminal states final,
statuses monotone, ids unique, nothing lost, polls counted, progress in range.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import hypothesis.strategies as st
import pytest
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from mockserver import Engine, FaultPlan, Outcome, Progression, TaskNotFound, VideoSpec, VirtualClock, load_contract

CONTRACT = load_contract()
LIFECYCLE = CONTRACT.lifecycle
LEGAL = {(t["from"], t["to"]) for t in LIFECYCLE["transitions"]}
TERMINAL = frozenset(LIFECYCLE["terminal"])
RANK = {LIFECYCLE["initial"]: 0, **dict.fromkeys(TERMINAL, 2)}
REASONS = sorted(k for k in CONTRACT.task_failures if not k.startswith("$"))
OPERATIONS = sorted(CONTRACT.operations)
ERRORS = sorted(CONTRACT.errors)

progressions = st.one_of(
    st.integers(1, 3).map(Progression.after_polls),
    st.floats(0.5, 60, allow_nan=False).map(Progression.after_seconds),
    st.just(Progression.manual()),
    st.just(Progression.immediate()),
)
outcomes = st.one_of(st.just(Outcome.succeed()), st.sampled_from(REASONS).map(Outcome.fail))
plans = st.builds(
    FaultPlan,
    operation=st.sampled_from(["*", *OPERATIONS]),
    error=st.sampled_from(ERRORS),
    times=st.one_of(st.none(), st.integers(1, 3)),
    skip=st.integers(0, 2),
    probability=st.sampled_from([1.0, 0.5]),
    seed=st.integers(0, 10),
)


@dataclass
class Expected:
    """What the model knows of one task."""

    polls: int = 0
    rank: int = 0
    final: tuple[object, ...] | None = None  # (status, updated_at, history) once terminal


@dataclass
class Model:
    tasks: dict[str, Expected] = field(default_factory=dict)
    fault_ids: set[int] = field(default_factory=set)


class EngineMachine(RuleBasedStateMachine):
    tasks = Bundle("tasks")

    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine(clock=VirtualClock(), seed=3)
        self.model = Model()

    # -- verbs -------------------------------------------------------------------------------

    @rule(target=tasks, duration=st.sampled_from([5, 10]))
    def create(self, duration: int) -> str:
        view = self.engine.create_task(
            model="kling-v2-6", kind="text2video", request={"duration": duration}, video=VideoSpec(duration, 1920, 1080)
        )
        assert view.id not in self.model.tasks, "an id was handed out twice"
        self.model.tasks[view.id] = Expected()
        return view.id

    @rule(task_id=tasks)
    def poll(self, task_id: str) -> None:
        if task_id not in self.model.tasks:  # forgotten by a reset
            with pytest.raises(TaskNotFound):
                self.engine.poll_task(task_id)
            return
        view = self.engine.poll_task(task_id)
        self.model.tasks[task_id].polls += 1
        assert view.polls == self.model.tasks[task_id].polls

    @rule(task_id=tasks)
    def read(self, task_id: str) -> None:
        found = self.engine.find_task(task_id)
        assert (found is None) == (task_id not in self.model.tasks)

    @rule(seconds=st.floats(0, 120, allow_nan=False))
    def advance_clock(self, seconds: float) -> None:
        before = self.engine.clock.now()
        assert self.engine.advance_clock(seconds) == pytest.approx(before + seconds)

    @rule(task_id=tasks)
    def advance_task(self, task_id: str) -> None:
        if task_id not in self.model.tasks:
            with pytest.raises(TaskNotFound):
                self.engine.advance(task_id)
            return
        before = self.engine.task(task_id)
        if before.status.value in TERMINAL:
            with pytest.raises(ValueError, match="terminal states are final"):
                self.engine.advance(task_id)
            return
        after = self.engine.advance(task_id)
        assert (before.status.value, after.status.value) in LEGAL
        assert len(after.history) == len(before.history) + 1

    @rule(task_id=tasks, outcome=outcomes)
    def set_task_outcome(self, task_id: str, outcome: Outcome) -> None:
        view = self.engine.find_task(task_id)
        if view is None:
            with pytest.raises(TaskNotFound):
                self.engine.set_outcome(outcome, task_id=task_id)
        elif view.status.value in TERMINAL:
            with pytest.raises(ValueError, match="terminal states are final"):
                self.engine.set_outcome(outcome, task_id=task_id)
        else:
            self.engine.set_outcome(outcome, task_id=task_id)
            assert self.engine.task(task_id).outcome == outcome

    @rule(task_id=tasks, progression=progressions)
    def set_task_progression(self, task_id: str, progression: Progression) -> None:
        if task_id not in self.model.tasks:
            with pytest.raises(TaskNotFound):
                self.engine.set_progression(progression, task_id=task_id)
            return
        self.engine.set_progression(progression, task_id=task_id)

    @rule(progression=progressions)
    def set_default_progression(self, progression: Progression) -> None:
        self.engine.set_progression(progression)
        assert self.engine.policies()["progression"] == progression.to_json()

    @rule(outcome=outcomes)
    def set_default_outcome(self, outcome: Outcome) -> None:
        self.engine.set_outcome(outcome)
        assert self.engine.policies()["outcome"] == outcome.to_json()

    @rule(plan=plans)
    def arm_fault(self, plan: FaultPlan) -> None:
        fault_id = self.engine.arm_fault(plan)
        assert fault_id not in self.model.fault_ids
        self.model.fault_ids.add(fault_id)

    @precondition(lambda self: bool(self.model.fault_ids))
    @rule(operation=st.sampled_from(OPERATIONS))
    def take_fault(self, operation: str) -> None:
        plan = self.engine.take_fault(operation)
        assert plan is None or plan.operation in ("*", operation)

    @rule()
    def reset(self) -> None:
        self.engine.reset()
        self.model.tasks.clear()
        self.model.fault_ids.clear()
        assert self.engine.tasks() == []
        assert self.engine.faults() == []
        assert len(self.engine.journal) == 0

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def no_task_lost_or_invented_and_ids_unique(self) -> None:
        ids = [view.id for view in self.engine.tasks()]
        assert len(ids) == len(set(ids))
        assert set(ids) == set(self.model.tasks)

    @invariant()
    def lifecycle_holds(self) -> None:
        now = self.engine.clock.now()
        for view in self.engine.tasks():
            expected = self.model.tasks[view.id]
            status = view.status.value
            statuses = [s.value for s, _ in view.history]
            times = [t for _, t in view.history]
            assert statuses[0] == LIFECYCLE["initial"]
            assert statuses[-1] == status
            assert all(pair in LEGAL for pair in itertools.pairwise(statuses)), statuses
            assert times == sorted(times), times
            assert times[-1] <= now, times
            assert view.created_at <= view.updated_at <= now
            rank = RANK.get(status, 1)
            assert rank >= expected.rank, f"{view.id} went back from rank {expected.rank} to {status}"
            expected.rank = rank
            assert 0 <= view.progress <= 100
            if status == "succeeded":
                assert view.progress == 100
            if status == LIFECYCLE["initial"]:
                assert view.progress == 0
            assert view.polls == expected.polls
            if status in TERMINAL:
                snapshot = (status, view.updated_at, view.history)
                assert expected.final in (None, snapshot), "a terminal task changed"
                expected.final = snapshot

    @invariant()
    def faults_fire_at_most_times(self) -> None:
        for armed in self.engine.faults():
            assert armed["times"] is None or armed["fired"] <= armed["times"]
            assert armed["fired"] <= max(0, armed["seen"] - armed["skip"])


test_engine_lifecycle_invariants = EngineMachine.TestCase
