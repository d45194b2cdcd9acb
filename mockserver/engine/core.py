"""The engine: tasks, their lifecycle on an injected clock, outcome policies, faults, journal.

Plain synchronous Python with no HTTP and no wire format in it (faces own those). One
``threading.Lock`` guards all state, because the live server runs the engine in a thread while
the test thread reads or resets it. Status is computed lazily when a task is read: a poll
counts towards ``polls`` progressions, while admin reads (``task()``, ``tasks()``) and media
downloads observe without counting.
"""

from __future__ import annotations

import random
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from mockserver.contract import Contract, compile_schema, load_contract
from mockserver.engine.clock import Clock, VirtualClock
from mockserver.engine.faults import ArmedFault, FaultPlan
from mockserver.engine.journal import Journal
from mockserver.engine.lifecycle import Outcome, Progression, Status, _require_keys, transitions


class TaskNotFound(KeyError):
    """No task with this id (faces render it as their catalogued error)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id

    def __str__(self) -> str:
        return f"no task {self.task_id!r}"


@dataclass(frozen=True, slots=True)
class VideoSpec:
    """The video a task produces: seconds, frame size, frame rate."""

    duration: int
    width: int
    height: int
    fps: int = 24


@dataclass(frozen=True)
class OutcomeRule:
    """Tasks whose request matches the JSON Schema ``when`` end with ``outcome``.

    >>> rule = OutcomeRule(when={"properties": {"negative_prompt": {"pattern": "gore"}},
    ...                          "required": ["negative_prompt"]}, outcome=Outcome.fail("content_policy"))
    >>> rule.matches({"negative_prompt": "no gore"})
    True
    """

    when: Mapping[str, Any]
    outcome: Outcome
    _validator: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.when, Mapping):
            raise ValueError("outcome rule 'when' must be a JSON Schema object")
        try:
            jsonschema.Draft202012Validator.check_schema(self.when)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"outcome rule 'when' is not a valid JSON Schema: {exc.message}") from None
        try:
            validator = compile_schema(self.when)
        except Exception as exc:  # jsonschema-rs wraps the refusal; any failure is a bad rule
            raise ValueError(f"outcome rule 'when' cannot be compiled: {str(exc).splitlines()[0]}") from None
        object.__setattr__(self, "_validator", validator)

    def matches(self, request: Mapping[str, Any]) -> bool:
        return bool(self._validator.is_valid(request))

    def to_json(self) -> dict[str, Any]:
        return {"when": dict(self.when), "outcome": self.outcome.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OutcomeRule:
        _require_keys(data, {"when", "outcome"}, "outcome rule")
        if "when" not in data or "outcome" not in data:
            raise ValueError("outcome rule needs 'when' (a JSON Schema) and 'outcome'")
        return cls(when=data["when"], outcome=Outcome.from_json(data["outcome"]))


@dataclass(slots=True)
class _Task:
    id: str
    model: str
    kind: str
    request: Mapping[str, Any]
    video: VideoSpec
    seed: int
    created_at: float
    progression: Progression
    outcome: Outcome
    status: Status = Status.SUBMITTED
    updated_at: float = 0.0
    polls: int = 0
    step_polls: int = 0
    step_started_at: float = 0.0
    history: list[tuple[Status, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TaskView:
    """A snapshot of a task, safe to read outside the engine's lock."""

    id: str
    model: str
    kind: str
    status: Status
    progress: int
    created_at: float
    updated_at: float
    video: VideoSpec
    seed: int
    polls: int
    progression: Progression
    outcome: Outcome
    request: Mapping[str, Any]
    history: tuple[tuple[Status, float], ...]

    @property
    def finished_at(self) -> float | None:
        return self.updated_at if self.status.terminal else None

    def to_json(self) -> dict[str, Any]:
        """The admin API's view of a task (internal vocabulary, not a face's)."""
        return {
            "id": self.id,
            "model": self.model,
            "kind": self.kind,
            "status": self.status.value,
            "progress": self.progress,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "polls": self.polls,
            "video": {
                "duration": self.video.duration,
                "width": self.video.width,
                "height": self.video.height,
                "fps": self.video.fps,
            },
            "seed": self.seed,
            "progression": self.progression.to_json(),
            "outcome": self.outcome.to_json(),
            "history": [{"status": s.value, "at": t} for s, t in self.history],
        }


class Engine:
    """Tasks and their lifecycle on an injected clock.

    >>> from mockserver.engine.clock import VirtualClock
    >>> engine = Engine(clock=VirtualClock(), seed=1)
    >>> task = engine.create_task(model="kling-v2-6", kind="text2video", request={},
    ...                           video=VideoSpec(5, 1920, 1080))
    >>> task.status.value, engine.poll_task(task.id).status.value, engine.poll_task(task.id).status.value
    ('submitted', 'processing', 'succeeded')
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        contract: Contract | None = None,
        seed: int | None = None,
        progression: Progression | None = None,
        outcome: Outcome | None = None,
        journal_limit: int = 10_000,
        max_tasks: int = 1_000_000,
    ) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self.contract = contract if contract is not None else load_contract()
        self._seed = seed
        self._initial_progression = progression or Progression()
        self._initial_outcome = outcome or Outcome()
        self.max_tasks = max_tasks
        self.journal = Journal(journal_limit)
        self._lock = threading.Lock()  # no method re-enters it; a plain Lock is cheaper
        id_spec = self.contract.index["task_id"]
        alphabet = id_spec.get("alphabet", string.ascii_letters + string.digits)
        self._id_prefix = str(id_spec["prefix"])
        self._id_length = int(id_spec["length"])
        self._id_table = bytes(ord(alphabet[i % len(alphabet)]) for i in range(256))
        self._reset_state()

    # -- state -------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._tasks: dict[str, _Task] = {}
        self._rng = random.Random(self._seed)
        # Faults draw from their own stream, so arming one never shifts the task ids that follow.
        self._fault_rng = random.Random(self._seed)
        self._progression = self._initial_progression
        self._outcome = self._initial_outcome
        self._outcome_rules: list[OutcomeRule] = []
        self._faults: list[ArmedFault] = []
        self._fault_ids = 0

    def reset(self, *, progression: Progression | None = None, outcome: Outcome | None = None) -> None:
        """Forget tasks, policies, faults and the journal; rewind a virtual clock.

        ``progression``/``outcome`` become the defaults from now on (in the same locked step, so
        no request sees the state in between); otherwise the constructor's apply again.
        """
        with self._lock:
            if progression is not None:
                self._initial_progression = progression
            if outcome is not None:
                self._initial_outcome = outcome
            self._reset_state()
            self.journal.clear()
            if isinstance(self.clock, VirtualClock):
                self.clock.reset()

    def _new_id(self) -> str:
        while True:
            # One randbytes() mapped through a 256-entry table: ~20x cheaper than choices() per
            # character, still seeded (reproducible ids for parity runs).
            candidate = self._id_prefix + self._rng.randbytes(self._id_length).translate(self._id_table).decode("ascii")
            if candidate not in self._tasks:
                return candidate

    # -- policies ----------------------------------------------------------------------------

    def set_progression(self, progression: Progression, task_id: str | None = None) -> None:
        """Set the default progression, or one task's (applies from its current step on)."""
        with self._lock:
            if task_id is None:
                self._progression = progression
                return
            task = self._get(task_id)
            task.progression = progression
            self._refresh(task, poll=False)

    def set_outcome(self, outcome: Outcome, task_id: str | None = None) -> None:
        """Set the default outcome, or one unfinished task's."""
        with self._lock:
            if task_id is None:
                self._outcome = outcome
                return
            task = self._get(task_id)
            if task.status.terminal:
                raise ValueError(f"task {task_id} already ended as {task.status.value}; terminal states are final")
            task.outcome = outcome

    def add_outcome_rule(self, rule: OutcomeRule) -> None:
        """Tasks created later whose request matches ``rule.when`` end with ``rule.outcome``."""
        with self._lock:
            self._outcome_rules.append(rule)

    def policies(self) -> dict[str, Any]:
        """The defaults in force (admin ``GET /__mock__/policies``)."""
        with self._lock:
            return {
                "progression": self._progression.to_json(),
                "outcome": self._outcome.to_json(),
                "outcome_rules": [r.to_json() for r in self._outcome_rules],
            }

    # -- faults ------------------------------------------------------------------------------

    def arm_fault(self, plan: FaultPlan) -> int:
        """Arm ``plan``; returns its id. Unknown operations or error keys are refused."""
        if plan.operation != "*" and plan.operation not in self.contract.operations:
            raise ValueError(f"unknown operation {plan.operation!r}; known: {sorted(self.contract.operations)}")
        if plan.error is not None and plan.error not in self.contract.errors:
            raise ValueError(f"unknown error {plan.error!r}; known: {sorted(self.contract.errors)}")
        with self._lock:
            self._fault_ids += 1
            rng = random.Random(plan.seed if plan.seed is not None else self._fault_rng.random())
            self._faults.append(ArmedFault(id=self._fault_ids, plan=plan, rng=rng))
            return self._fault_ids

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, operation: str) -> FaultPlan | None:
        """The first armed plan that fires on this call of ``operation`` (counts the call)."""
        if not self._faults:  # the common case needs no lock: reading a list's length is atomic
            return None
        with self._lock:
            hit = None
            for armed in self._faults:
                if armed.consider(operation) and hit is None:
                    hit = armed.plan
            return hit

    # -- tasks -------------------------------------------------------------------------------

    def create_task(self, *, model: str, kind: str, request: Mapping[str, Any], video: VideoSpec) -> TaskView:
        """Store a new task in ``submitted`` (or further, for ``immediate`` progressions)."""
        with self._lock:
            if len(self._tasks) >= self.max_tasks:
                raise OverflowError(f"the engine holds {self.max_tasks} tasks (max_tasks); reset it")
            now = self.clock.now()
            outcome = self._outcome
            for rule in self._outcome_rules:
                if rule.matches(request):
                    outcome = rule.outcome
                    break
            task = _Task(
                id=self._new_id(),
                model=model,
                kind=kind,
                request=request,
                video=video,
                seed=self._rng.randrange(2**31),
                created_at=now,
                updated_at=now,
                step_started_at=now,
                progression=self._progression,
                outcome=outcome,
                history=[(Status.SUBMITTED, now)],
            )
            self._tasks[task.id] = task
            self._refresh(task, poll=False)
            return self._view(task)

    def poll_task(self, task_id: str) -> TaskView:
        """Read a task as a client's poll does: it counts towards ``polls`` progressions."""
        with self._lock:
            task = self._get(task_id)
            self._refresh(task, poll=True)
            return self._view(task)

    def task(self, task_id: str) -> TaskView:
        """Read a task without counting a poll."""
        with self._lock:
            task = self._get(task_id)
            self._refresh(task, poll=False)
            return self._view(task)

    def find_task(self, task_id: str) -> TaskView | None:
        try:
            return self.task(task_id)
        except TaskNotFound:
            return None

    def tasks(self) -> list[TaskView]:
        """Every task, oldest first, without counting polls."""
        with self._lock:
            for task in self._tasks.values():
                self._refresh(task, poll=False)
            return [self._view(t) for t in self._tasks.values()]

    def advance(self, task_id: str) -> TaskView:
        """Move a task one step now, whatever its progression (the ``manual`` verb)."""
        with self._lock:
            task = self._get(task_id)
            self._refresh(task, poll=False)
            if task.status.terminal:
                raise ValueError(f"task {task_id} already ended as {task.status.value}; terminal states are final")
            self._step(task, self.clock.now())
            return self._view(task)

    def advance_clock(self, seconds: float) -> float:
        """Advance a virtual clock (refused on the system clock)."""
        if not isinstance(self.clock, VirtualClock):
            raise ValueError("the engine runs on the system clock; use a virtual clock to advance time")
        return self.clock.advance(seconds)

    # -- internals ---------------------------------------------------------------------------

    def _get(self, task_id: str) -> _Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def _step(self, task: _Task, at: float) -> None:
        if task.status is Status.SUBMITTED:
            target = Status.PROCESSING
        elif task.outcome.status == "failed":
            target = Status.FAILED
        else:
            target = Status.SUCCEEDED
        if (task.status, target) not in transitions():
            raise AssertionError(f"illegal transition {task.status.value} -> {target.value}")
        task.status = target
        task.updated_at = at
        task.step_polls = 0
        task.step_started_at = at
        task.history.append((target, at))

    def _refresh(self, task: _Task, *, poll: bool) -> None:
        if poll:
            task.polls += 1
        if task.status.terminal:
            return
        progression = task.progression
        if progression.mode == "immediate":
            while not task.status.terminal:
                self._step(task, self.clock.now())
        elif progression.mode == "polls" and poll:
            task.step_polls += 1
            if task.step_polls >= progression.polls:
                self._step(task, self.clock.now())
        elif progression.mode == "seconds":
            now = self.clock.now()
            while not task.status.terminal and now - task.step_started_at >= progression.seconds:
                self._step(task, task.step_started_at + progression.seconds)

    def _progress(self, task: _Task) -> int:
        if task.status is Status.SUBMITTED:
            return 0
        if task.status is Status.SUCCEEDED:
            return 100
        if task.status is Status.FAILED:
            return 0 if len(task.history) < 3 else 99
        progression = task.progression
        if progression.mode == "polls":
            fraction = task.step_polls / progression.polls
        elif progression.mode == "seconds":
            fraction = (self.clock.now() - task.step_started_at) / progression.seconds
        else:
            fraction = 0.5
        return max(1, min(99, 1 + int(98 * fraction)))

    def _view(self, task: _Task) -> TaskView:
        return TaskView(
            id=task.id,
            model=task.model,
            kind=task.kind,
            status=task.status,
            progress=self._progress(task),
            created_at=task.created_at,
            updated_at=task.updated_at,
            video=task.video,
            seed=task.seed,
            polls=task.polls,
            progression=task.progression,
            outcome=task.outcome,
            request=task.request,
            history=tuple(task.history),
        )
