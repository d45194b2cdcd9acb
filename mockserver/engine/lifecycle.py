"""The task lifecycle and the policies that move a task through it.

Statuses and transitions are read from ``contracts/lifecycle.json``; :class:`Status` names them
for code, and a test proves the two agree. How fast a task moves is a :class:`Progression`
(after N polls, after T seconds of the injected clock, on command, or at once) and where it
ends is an :class:`Outcome`. Both are plain values so they cross the admin API as JSON.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from mockserver.contract import load_lifecycle


class Status(str, Enum):
    """Internal statuses; faces project them into their own spelling.

    Faces read a member's ``_value_`` (the plain attribute ``Enum`` stores it in) where every
    answer does: ``.value`` is a descriptor written in Python, four times the cost.
    """

    SUBMITTED = "submitted"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        # by value: an Enum member hashes in Python code, and every poll asks this a few times
        return self._value_ in _terminal_values()


# Read lazily: importing the package must not parse contracts (plugin import cost, and the
# derivation tool imports the package before the derived files exist).
@functools.cache
def transitions() -> frozenset[tuple[Status, Status]]:
    """The allowed (from, to) pairs of ``contracts/lifecycle.json``."""
    data = load_lifecycle()
    return frozenset((Status(t["from"]), Status(t["to"])) for t in data["transitions"])


@functools.cache
def terminal_statuses() -> frozenset[Status]:
    """The final statuses of ``contracts/lifecycle.json``."""
    return frozenset(Status(s) for s in load_lifecycle()["terminal"])


@functools.cache
def _terminal_values() -> frozenset[str]:
    return frozenset(s.value for s in terminal_statuses())


ProgressionMode = Literal["polls", "seconds", "manual", "immediate"]
_MODES: tuple[ProgressionMode, ...] = ("polls", "seconds", "manual", "immediate")


def _require_keys(data: Mapping[str, Any], allowed: set[str], what: str, required: Iterable[str] = ()) -> None:
    """Refuse a value that is not an object, has a field not in ``allowed`` or lacks a ``required`` one.

    >>> _require_keys({"mode": "manual", "speed": 2}, {"mode", "polls", "seconds"}, "progression")
    Traceback (most recent call last):
    ...
    ValueError: progression: unknown field(s) ['speed']; allowed: ['mode', 'polls', 'seconds']
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"{what}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    missing = set(required) - set(data)
    if missing:
        raise ValueError(f"{what}: missing field(s) {sorted(missing)}")


@dataclass(frozen=True, slots=True)
class Progression:
    """How a task moves: each step (submitted -> processing -> end) takes ``polls`` reads of the
    task, or ``seconds`` of the clock; ``manual`` waits for :meth:`Engine.advance`;
    ``immediate`` finishes at creation.

    >>> Progression.after_polls(2)
    Progression(mode='polls', polls=2, seconds=30.0)
    >>> Progression.parse("seconds:45").seconds
    45.0
    """

    mode: ProgressionMode = "polls"
    polls: int = 1
    seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"progression mode must be one of {list(_MODES)}, got {self.mode!r}")
        if isinstance(self.polls, bool) or not isinstance(self.polls, int) or self.polls < 1:
            raise ValueError(f"progression polls must be an integer >= 1, got {self.polls!r}")
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float)):
            raise ValueError(f"progression seconds must be a number > 0, got {self.seconds!r}")
        if not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise ValueError(f"progression seconds must be a number > 0, got {self.seconds!r}")

    @classmethod
    def after_polls(cls, polls: int = 1) -> Progression:
        return cls(mode="polls", polls=polls)

    @classmethod
    def after_seconds(cls, seconds: float) -> Progression:
        return cls(mode="seconds", seconds=float(seconds))

    @classmethod
    def manual(cls) -> Progression:
        return cls(mode="manual")

    @classmethod
    def immediate(cls) -> Progression:
        return cls(mode="immediate")

    @classmethod
    def parse(cls, text: str) -> Progression:
        """``polls:N``, ``seconds:T``, ``manual`` or ``immediate`` (the CLI's spelling)."""
        forms = "accepted forms are polls:N (N a whole number >= 1), seconds:T (T a number > 0), manual and immediate"
        mode, _, arg = text.partition(":")
        try:
            if mode == "polls":
                return cls.after_polls(int(arg or 1))
            if mode == "seconds":
                return cls.after_seconds(float(arg or 30))
        except ValueError:
            raise ValueError(f"bad progression {text!r}: {forms}") from None
        if mode in ("manual", "immediate") and not arg:
            return cls(mode=mode)  # type: ignore[arg-type]
        raise ValueError(f"bad progression {text!r}: {forms}")

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "polls": self.polls, "seconds": self.seconds}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Progression:
        _require_keys(data, {"mode", "polls", "seconds"}, "progression")
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where a task ends: ``succeeded``, or ``failed`` with a reason from ``lifecycle.json``'s
    ``failure_reasons`` (``content_policy``, ``generation_failed``, ``timeout``) and an optional
    message that replaces the face's catalogued one; or ``refused``: the create itself is
    refused with a ``refusal_reasons`` fault (``content_safety``: Kling's 1301), no task stored.

    >>> Outcome.fail("content_policy").status
    'failed'
    >>> Outcome.parse("refused:content_safety").reason
    'content_safety'
    >>> Outcome.fail().reason, Outcome.fail("content_policy", "blocked by review").message
    ('generation_failed', 'blocked by review')
    >>> Outcome(status="succeeded", reason="timeout")
    Traceback (most recent call last):
    ...
    ValueError: a succeeded outcome takes no reason or message
    """

    status: Literal["succeeded", "failed", "refused"] = "succeeded"
    reason: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.status not in ("succeeded", "failed", "refused"):
            raise ValueError(f"outcome status must be 'succeeded', 'failed' or 'refused', got {self.status!r}")
        lifecycle = load_lifecycle()
        if self.reason is not None and not isinstance(self.reason, str):
            raise ValueError(f"outcome reason must be a string, got {self.reason!r}")
        if self.status == "failed":
            failures = [k for k in lifecycle["failure_reasons"] if not k.startswith("$")]
            if self.reason is None:
                object.__setattr__(self, "reason", "generation_failed")
            elif self.reason not in failures:
                raise ValueError(f"outcome reason must be one of {sorted(failures)}, got {self.reason!r}")
        elif self.status == "refused":
            refusals = [k for k in lifecycle["refusal_reasons"] if not k.startswith("$")]
            if self.reason not in refusals:
                raise ValueError(f"a refused outcome's reason must be one of {sorted(refusals)}, got {self.reason!r}")
        elif self.reason is not None or self.message is not None:
            raise ValueError("a succeeded outcome takes no reason or message")
        if self.message is not None and not isinstance(self.message, str):
            raise ValueError(f"outcome message must be a string, got {self.message!r}")

    @classmethod
    def parse(cls, text: str) -> Outcome:
        """``succeeded``, ``failed`` or ``failed:<reason>`` (the CLI's and the marker's spelling).

        >>> Outcome.parse("failed:content_policy").reason
        'content_policy'
        """
        status, _, reason = text.partition(":")
        if status == "succeeded" and not reason:
            return cls.succeed()
        if status == "failed":
            return cls.fail(reason or "generation_failed")
        if status == "refused":
            return cls(status="refused", reason=reason or None)
        raise ValueError(f"bad outcome {text!r}: use succeeded, failed, failed:<reason> or refused:<reason>")

    @classmethod
    def succeed(cls) -> Outcome:
        return cls()

    @classmethod
    def fail(cls, reason: str = "generation_failed", message: str | None = None) -> Outcome:
        return cls(status="failed", reason=reason, message=message)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "message": self.message}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Outcome:
        _require_keys(data, {"status", "reason", "message"}, "outcome")
        return cls(**data)
