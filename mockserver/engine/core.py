"""The engine: tasks, their lifecycle on an injected clock, outcome policies, faults, journal.

Plain synchronous Python with no HTTP and no wire format in it (faces own those). One
``threading.Lock`` guards all state, because the live server runs the engine in a thread while
the test thread reads or resets it. Status is computed lazily when a task is read: a poll
counts towards ``polls`` progressions, while admin reads (``task()``, ``tasks()``) and media
downloads observe without counting.
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import jsonschema
import orjson

from mockserver._frozen import fast_init
from mockserver.contract import IdFormat, compile_schema
from mockserver.engine.clock import Clock, VirtualClock
from mockserver.engine.faults import ArmedFault, FaultPlan
from mockserver.engine.journal import MAX_STRING, Journal, shorten
from mockserver.engine.lifecycle import Outcome, Progression, Status, _require_keys, transitions

#: Bytes of its request a task keeps (compact JSON, after long strings became markers); past it,
#: the largest top-level members are replaced by ``<dropped N bytes>`` until it fits.
MAX_STORED_REQUEST = 2048


def compact_request(request: Mapping[str, Any]) -> bytes:
    """What a task keeps of its request: compact JSON, every string over 1 024 characters (an
    image, a URL) as ``<N chars sha256:xxxxxxxx>`` (its size and digest), at most
    :data:`MAX_STORED_REQUEST` bytes (the largest top-level members dropped, and marked, first).

    >>> compact_request({"mode": "pro", "image": "A" * 5000})
    b'{"mode":"pro","image":"<5000 chars sha256:26067979>"}'
    >>> len(compact_request({f"k{i}": "v" * 1000 for i in range(10)})) <= MAX_STORED_REQUEST
    True
    """
    data = orjson.dumps(request)
    if len(data) <= MAX_STRING:  # no string in it can be long: the common case needs no walk
        return bytes(memoryview(data))  # exactly sized: orjson's output keeps a 4 KiB buffer
    short = shorten(request)
    data = orjson.dumps(short)
    if len(data) <= MAX_STORED_REQUEST:
        return bytes(memoryview(data))  # exactly sized: orjson's output keeps a 4 KiB buffer
    sizes = sorted(((len(orjson.dumps(v)), k) for k, v in short.items()), reverse=True)
    for size, key in sizes:
        short[key] = f"<dropped {size} bytes>"
        data = orjson.dumps(short)
        if len(data) <= MAX_STORED_REQUEST:
            return bytes(memoryview(data))
    return bytes(memoryview(orjson.dumps({"dropped": f"<{len(short)} members>"})))


#: request ids drawn at once: one draw of their bits, rendered in one pass
REQUEST_ID_BATCH = 64
# a UUID's version nibble (4) and variant bits (0b10), set on a whole batch by translate()
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


def request_ids(rng: random.Random, count: int) -> list[str]:
    """The next ``count`` UUID4 texts of ``rng``, the first last (the caller pops them): the ids
    ``uuid_text(rng.getrandbits(128), 4)`` gives one call at a time, in the same order, for a
    fraction of the work per id (every answer of a face with request ids carries one).

    >>> rng, same = random.Random(7), random.Random(7)
    >>> request_ids(rng, 3)[::-1] == [uuid_text(same.getrandbits(128), 4) for _ in range(3)]
    True
    """
    # randbytes(n) is getrandbits(8 n) in little-endian order, and getrandbits fills its bits
    # from the least significant 32-bit word up, as successive calls would draw them: call j is
    # bytes [16 j, 16 j + 16) read little-endian. Reversed whole, the buffer holds every call's
    # 128 bits big-endian, the last call first.
    raw = bytearray(rng.randbytes(16 * count)[::-1])
    raw[6::16] = raw[6::16].translate(_VERSION_4)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    digits = raw.hex().encode("ascii")
    # Every id's 32 digits go to their place among its 36 characters, one column of the whole
    # batch per strided copy (32 copies a batch, not 5 slices and a format per id); the dashes
    # are already there.
    text = bytearray(b"-" * (36 * count))
    for column, place in enumerate(_UUID_PLACES):
        text[place::36] = digits[column::32]
    rendered = text.decode("ascii")
    return [rendered[i : i + 36] for i in range(0, 36 * count, 36)]


#: where each of a UUID's 32 hex digits stands in its 8-4-4-4-12 text
_UUID_PLACES = tuple(column + (column >= 8) + (column >= 12) + (column >= 16) + (column >= 20) for column in range(32))


class TaskNotFound(KeyError):
    """No task with this id (faces render it as their catalogued error)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id)
        self.task_id = task_id

    def __str__(self) -> str:
        return f"no task {self.task_id!r}"


class ExternalIdTaken(ValueError):
    """The account already has a task with this external id (faces render their own error)."""

    def __init__(self, external_id: str) -> None:
        super().__init__(f"external task id {external_id!r} is already used by this account")
        self.external_id = external_id


class CreateRefused(ValueError):
    """A ``refused`` outcome matched the create: no task is stored; faces render ``reason``
    (a face-neutral fault name such as ``content_safety``) as their own error."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the create is refused ({reason})")
        self.reason = reason


class SlotsExhausted(OverflowError):
    """The account's concurrency slots are all held by unfinished tasks."""

    def __init__(self, account: str, slots: int) -> None:
        super().__init__(f"all {slots} concurrency slots of the account are held by unfinished tasks")
        self.account = account
        self.slots = slots


_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))


def uuid_text(bits: int, version: int) -> str:
    """``str(uuid.UUID(int=bits, version=version))`` without building the UUID (official
    answers carry one per request; the object and its checks were a tenth of a poll).

    >>> import uuid
    >>> uuid_text(2**128 - 1, 4) == str(uuid.UUID(int=2**128 - 1, version=4))
    True
    """
    value = (bits & _VERSION_MASK) | (0x8000 << 48) | (version << 76)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@functools.cache
def _id_table(alphabet: str) -> bytes:
    return bytes(ord(alphabet[i % len(alphabet)]) for i in range(256))


@dataclass(frozen=True, slots=True)
class Delivery:
    """One callback the engine owes: ``task_id`` reached ``status`` at ``at`` (clock time).

    Faces render the body (their task object), doors send it; ``attempts`` lists what each try
    answered (an HTTP status, or an error text), newest last.
    """

    seq: int
    task_id: str
    url: str
    status: Status
    at: float
    attempts: tuple[tuple[float, int | str], ...] = ()
    delivered: bool = False
    #: clock time of the next attempt
    next_at: float = 0.0
    #: no attempt is left in the retry schedule
    given_up: bool = False

    @property
    def open(self) -> bool:
        return not self.delivered and not self.given_up

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "task_id": self.task_id,
            "url": self.url,
            "status": self.status.value,
            "at": self.at,
            "attempts": [{"at": at, "result": result} for at, result in self.attempts],
            "delivered": self.delivered,
            "next_at": None if not self.open else self.next_at,
            "given_up": self.given_up,
        }


@dataclass(frozen=True, slots=True)
class VideoSpec:
    """The video a task produces: seconds, frame size, frame rate, and whether it has sound."""

    duration: int
    width: int
    height: int
    fps: int = 24
    audio: bool = False


@functools.lru_cache(maxsize=256)
def video_spec(duration: int, width: int, height: int, fps: int, audio: bool) -> VideoSpec:
    """The :class:`VideoSpec` of these values, one instance per combination (frozen, so tasks
    share it): a face builds one per create, and a frozen dataclass is slow to build.

    >>> video_spec(5, 1920, 1080, 24, True) is video_spec(5, 1920, 1080, 24, True)
    True
    """
    return VideoSpec(duration, width, height, fps, audio)


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
    #: :func:`compact_request` of the accepted request (bytes: compact, and invisible to the GC)
    request: bytes
    video: VideoSpec
    seed: int
    created_at: float
    progression: Progression
    outcome: Outcome
    face: str = ""
    account: str = ""
    external_id: str | None = None
    callback_url: str | None = None
    status: Status = Status.SUBMITTED
    updated_at: float = 0.0
    polls: int = 0
    step_polls: int = 0
    step_started_at: float = 0.0
    #: a tuple, replaced on each step (a task steps at most three times): views share it, uncopied
    history: tuple[tuple[Status, float], ...] = ()


@fast_init
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
    #: what the task kept of its request (:func:`compact_request`); read it as :attr:`request`
    request_json: bytes
    history: tuple[tuple[Status, float], ...]
    face: str = ""
    account: str = ""
    external_id: str | None = None
    callback_url: str | None = None

    @property
    def request(self) -> dict[str, Any]:
        """The accepted request as the task kept it: long strings (images, image URLs) as
        ``<N chars sha256:...>`` markers, at most :data:`MAX_STORED_REQUEST` bytes in all."""
        value: dict[str, Any] = orjson.loads(self.request_json)
        return value

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
            "face": self.face,
            "account": self.account,
            "external_id": self.external_id,
            "callback_url": self.callback_url,
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
        seed: int | None = None,
        progression: Progression | None = None,
        outcome: Outcome | None = None,
        journal_limit: int = 10_000,
        max_tasks: int = 1_000_000,
    ) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock()
        self._seed = seed
        self._initial_progression = progression or Progression()
        self._initial_outcome = outcome or Outcome()
        self.max_tasks = max_tasks
        self.journal = Journal(journal_limit)
        self._lock = threading.Lock()  # no method re-enters it; a plain Lock is cheaper
        #: checks a fault plan against the faces mounted on this engine (raises ValueError);
        #: a bare engine accepts any plan
        self.fault_check: Callable[[FaultPlan], None] | None = None
        #: nesting limit for admin JSON bodies (the service sets its faces' contract limit)
        self.max_json_depth = 32
        #: values (members and items) allowed in an admin JSON body (the service sets its faces')
        self.max_json_values = 4096
        self._reset_state()

    # -- state -------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._tasks: dict[str, _Task] = {}
        self._external: dict[tuple[str, str], str] = {}
        # account -> ids of its tasks that may still hold a slot (pruned when they end)
        self._active: dict[str, list[str]] = {}
        self._outbox: list[Delivery] = []
        self._delivery_seq = 0
        self._open_deliveries = 0
        # Request ids draw from their own seeded stream: answers are reproducible (the parity
        # suite compares doors byte for byte) and ids never shift the task ids that follow.
        self._request_rng = random.Random(self._seed)
        self._request_ids: list[str] = []  # drawn ahead, next last (see request_ids)
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

    def _seed_draw(self) -> int:
        """``self._rng.randrange(2**31)``, drawn as CPython draws it (32 random bits until one
        is below 2**31: the same numbers from the same stream), without its argument checks."""
        draw = self._rng.getrandbits
        value = draw(32)
        while value >= 2**31:
            value = draw(32)
        return value

    def _new_id(self, fmt: IdFormat) -> str:
        table = _id_table(fmt.alphabet)
        while True:
            # One randbytes() mapped through a 256-entry table: ~20x cheaper than choices() per
            # character, still seeded (reproducible ids for parity runs).
            raw = self._rng.randbytes(fmt.length).translate(table).decode("ascii")
            if fmt.first_alphabet:
                raw = fmt.first_alphabet[ord(raw[0]) % len(fmt.first_alphabet)] + raw[1:]
            candidate = fmt.prefix + raw
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
            if outcome.status == "refused":
                raise ValueError("a refused outcome applies to creates (a default or a rule), not to a stored task")
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
        if self.fault_check is not None:
            self.fault_check(plan)
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

    def take_fault(
        self, operation: str, verb: str | None = None, renders: Callable[[str], object] | None = None
    ) -> FaultPlan | None:
        """The first armed plan that fires on this call of ``operation`` (counts the call).

        A plan names a face's operation id (``video_generations.create``) or the face-neutral
        ``verb`` every face's matching operation carries (``task.create``). ``renders(error)``
        says whether the calling face has an answer for a plan's error; plans it cannot render
        neither fire nor count the call there.
        """
        if not self._faults:  # the common case needs no lock: reading a list's length is atomic
            return None
        with self._lock:
            hit = None
            for armed in self._faults:
                error = armed.plan.error
                if renders is not None and error is not None and not renders(error):
                    continue
                if armed.consider(operation, verb) and hit is None:
                    hit = armed.plan
            return hit

    # -- tasks -------------------------------------------------------------------------------

    def create_task(
        self,
        *,
        model: str,
        kind: str,
        request: Mapping[str, Any],
        video: VideoSpec,
        id_format: IdFormat = IdFormat(),  # noqa: B008 - frozen, so one shared default is safe
        face: str = "",
        account: str = "",
        external_id: str | None = None,
        slots: int | None = None,
        callback_url: str | None = None,
    ) -> TaskView:
        """Store a new task in ``submitted`` (or further, for ``immediate`` progressions).

        ``account`` scopes ``external_id`` (unique per account: :class:`ExternalIdTaken`) and
        ``slots`` (at most that many unfinished tasks per account: :class:`SlotsExhausted`).
        With ``callback_url``, every status change queues a :class:`Delivery` in the outbox.
        """
        if external_id is not None:
            # kept (and looked up) as its size-and-digest marker past 1 024 characters
            external_id = shorten(external_id)
        if callback_url is not None and len(callback_url) > MAX_STRING:
            raise ValueError(f"callback_url is over {MAX_STRING} characters")
        with self._lock:
            if len(self._tasks) >= self.max_tasks:
                raise OverflowError(f"the engine holds {self.max_tasks} tasks (max_tasks); reset it")
            if external_id is not None and (account, external_id) in self._external:
                raise ExternalIdTaken(external_id)
            if slots is not None:
                active = self._active.setdefault(account, [])
                if len(active) >= slots:
                    # Only an account at its limit pays for finding which of its tasks ended.
                    still = []
                    for held in active:
                        other = self._tasks[held]
                        self._refresh(other, poll=False)
                        if not other.status.terminal:
                            still.append(held)
                    active[:] = still
                    if len(still) >= slots:
                        raise SlotsExhausted(account, slots)
            now = self.clock.now()
            outcome = self._outcome
            for rule in self._outcome_rules:
                if rule.matches(request):
                    outcome = rule.outcome
                    break
            if outcome.status == "refused":
                assert outcome.reason is not None
                raise CreateRefused(outcome.reason)
            task = _Task(
                self._new_id(id_format),
                model,
                kind,
                # outcome rules matched the whole request above; the task keeps what answers need
                compact_request(request),
                video,
                self._seed_draw(),
                now,
                self._progression,
                outcome,
                face,
                account,
                external_id,
                callback_url,
                Status.SUBMITTED,
                now,  # updated_at
                0,  # polls
                0,  # step_polls
                now,  # step_started_at
                ((Status.SUBMITTED, now),),
            )
            self._tasks[task.id] = task
            if external_id is not None:
                self._external[(account, external_id)] = task.id
            if slots is not None:
                self._active[account].append(task.id)
            if callback_url is not None:
                self._queue_delivery(task, Status.SUBMITTED, now)
            self._refresh(task, poll=False)
            return self._view(task)

    def poll_task(self, task_id: str, *, account: str | None = None, external: bool = False) -> TaskView:
        """Read a task as a client's poll does: it counts towards ``polls`` progressions.

        ``account``: only that account's tasks are visible (others raise :class:`TaskNotFound`);
        ``external``: ``task_id`` may also be the account's ``external_id`` for the task.
        """
        with self._lock:
            task = self._visible(task_id, account, external)
            self._refresh(task, poll=True)
            return self._view(task)

    def list_tasks(
        self, *, account: str | None = None, kind: str | None = None, offset: int = 0, limit: int | None = None
    ) -> list[TaskView]:
        """An account's tasks (every task when ``account`` is None), newest first, without
        counting polls; ``kind`` filters, ``offset``/``limit`` page."""
        with self._lock:
            chosen = [
                t
                for t in reversed(self._tasks.values())
                if (account is None or t.account == account) and (kind is None or t.kind == kind)
            ]
            page = chosen[offset : None if limit is None else offset + limit]
            for task in page:
                self._refresh(task, poll=False)
            return [self._view(t) for t in page]

    def new_request_id(self) -> str:
        """A fresh request id (a UUID4, seeded like task ids) for faces whose envelope has one."""
        with self._lock:
            if not self._request_ids:
                self._request_ids = request_ids(self._request_rng, REQUEST_ID_BATCH)
            return self._request_ids.pop()

    # -- callbacks ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Bring every unfinished task with a callback up to the clock, so status changes (and
        their deliveries) happen in clock time, not only when someone polls."""
        with self._lock:
            for task in self._tasks.values():
                if task.callback_url is not None and not task.status.terminal:
                    self._refresh(task, poll=False)

    def due_deliveries(self) -> list[Delivery]:
        """Deliveries whose attempt is due on the clock, oldest first; a task's later status
        waits while an earlier one of the same task is still open, so each receiver sees a
        task's changes in order."""
        with self._lock:
            now = self.clock.now()
            blocked: set[str] = set()
            due = []
            for item in self._outbox:
                if not item.open:
                    continue
                if item.task_id not in blocked and item.next_at <= now:
                    due.append(item)
                blocked.add(item.task_id)
            return due

    def has_open_deliveries(self) -> bool:
        """Whether any callback is still owed (cheap: doors ask after every request)."""
        return self._open_deliveries > 0

    def deliveries(self) -> list[Delivery]:
        """Every delivery the engine queued, oldest first, with its attempts."""
        with self._lock:
            return list(self._outbox)

    def record_attempt(self, seq: int, result: int | str, *, delivered: bool, retry_in: float | None) -> Delivery:
        """Note one attempt at delivery ``seq`` (an HTTP status or an error text); a failed
        one is tried again ``retry_in`` seconds later, or given up when that is None."""
        with self._lock:
            for i, item in enumerate(self._outbox):
                if item.seq == seq:
                    now = self.clock.now()
                    updated = replace(
                        item,
                        attempts=(*item.attempts, (now, result)),
                        delivered=delivered,
                        next_at=now + retry_in if retry_in is not None else item.next_at,
                        given_up=not delivered and retry_in is None,
                    )
                    self._outbox[i] = updated
                    if item.open and not updated.open:
                        self._open_deliveries -= 1
                    return updated
            raise KeyError(f"no delivery {seq}")

    def _queue_delivery(self, task: _Task, status: Status, at: float) -> None:
        assert task.callback_url is not None
        self._delivery_seq += 1
        self._open_deliveries += 1
        self._outbox.append(Delivery(self._delivery_seq, task.id, task.callback_url, status, at, next_at=at))

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
        now = self.clock.advance(seconds)
        self.tick()
        return now

    # -- internals ---------------------------------------------------------------------------

    def _get(self, task_id: str) -> _Task:
        task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def _visible(self, task_id: str, account: str | None, external: bool) -> _Task:
        task = self._tasks.get(task_id)
        if task is None and external and account is not None:
            found = self._external.get((account, shorten(task_id)))
            task = self._tasks.get(found) if found is not None else None
        # Decision (the official docs are silent): another account's task does not exist for you.
        if task is None or (account is not None and task.account != account):
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
        task.history = (*task.history, (target, at))
        if task.callback_url is not None:
            self._queue_delivery(task, target, at)

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
        # positional, in field order: a keyword each cost more than the field (every poll)
        return TaskView(
            task.id,
            task.model,
            task.kind,
            task.status,
            self._progress(task),
            task.created_at,
            task.updated_at,
            task.video,
            task.seed,
            task.polls,
            task.progression,
            task.outcome,
            task.request,
            task.history,
            task.face,
            task.account,
            task.external_id,
            task.callback_url,
        )
