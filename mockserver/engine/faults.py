"""Fault plans: named, deterministic misbehaviour bound to an operation.

"429 with Retry-After: 5 on the next 2 creates" is
``FaultPlan(operation="video_generations.create", error="rate_limited", times=2, retry_after=5)``;
"500 on the 3rd poll" is ``FaultPlan(operation="video_generations.get", error="fail_to_fetch_task",
skip=2)``. ``probability`` with a ``seed`` makes a plan random but reproducible.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mockserver.engine.lifecycle import _require_keys

#: Longest injected latency or Retry-After: a day. On the system clock a latency of 1e300 s
#: parked the connection forever, and Retry-After rendered as a 300-digit header.
MAX_WAIT = 86_400.0


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """A fault to inject on calls of ``operation`` (an operation id, or ``"*"`` for all).

    ``error`` is a key of the face's error catalogue (``rate_limited``, ``upstream_error``,
    ``upstream_unavailable``, ``insufficient_user_quota``...), or None for latency only.
    ``times`` calls are hit after ``skip`` calls pass (``times=None``: every call).

    >>> plan = FaultPlan(operation="video_generations.create", error="rate_limited", times=2, retry_after=5)
    >>> FaultPlan.from_json(plan.to_json()) == plan  # the admin API's JSON form
    True
    >>> FaultPlan(operation="video_generations.create")
    Traceback (most recent call last):
    ...
    ValueError: a fault plan needs an error, a latency, or both
    """

    operation: str
    error: str | None = None
    times: int | None = 1
    skip: int = 0
    latency: float = 0.0
    retry_after: float | None = None
    probability: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.operation, str) or not self.operation:
            raise ValueError("fault operation must be an operation id or '*'")
        if self.error is not None and not isinstance(self.error, str):
            raise ValueError(f"fault error must be a catalogue key, got {self.error!r}")
        if self.times is not None and (
            isinstance(self.times, bool) or not isinstance(self.times, int) or self.times < 1
        ):
            raise ValueError(f"fault times must be an integer >= 1 or null, got {self.times!r}")
        if isinstance(self.skip, bool) or not isinstance(self.skip, int) or self.skip < 0:
            raise ValueError(f"fault skip must be an integer >= 0, got {self.skip!r}")
        for name in ("latency", "probability"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"fault {name} must be a finite number >= 0, got {value!r}")
        for name in ("latency", "retry_after"):
            value = getattr(self, name)
            if isinstance(value, (int, float)) and value > MAX_WAIT:
                raise ValueError(f"fault {name} must be <= {MAX_WAIT:.0f} seconds (a day), got {value!r}")
        if self.probability > 1:
            raise ValueError(f"fault probability must be <= 1, got {self.probability!r}")
        if self.retry_after is not None and (
            isinstance(self.retry_after, bool)
            or not isinstance(self.retry_after, (int, float))
            or not math.isfinite(self.retry_after)
            or self.retry_after < 0
        ):
            raise ValueError(f"fault retry_after must be a number >= 0, got {self.retry_after!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"fault seed must be an integer or null, got {self.seed!r}")
        if self.error is None and self.latency == 0:
            raise ValueError("a fault plan needs an error, a latency, or both")

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "error": self.error,
            "times": self.times,
            "skip": self.skip,
            "latency": self.latency,
            "retry_after": self.retry_after,
            "probability": self.probability,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:
        _require_keys(data, set(cls.__dataclass_fields__), "fault plan", required=["operation"])
        return cls(**data)


@dataclass(slots=True)
class ArmedFault:
    """A plan plus its counters; owned by the engine and mutated under its lock."""

    id: int
    plan: FaultPlan
    seen: int = 0
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def exhausted(self) -> bool:
        return self.plan.times is not None and self.fired >= self.plan.times

    def consider(self, operation: str, verb: str | None = None) -> bool:
        """Count one call of ``operation`` (whose face-neutral name is ``verb``); True when this
        plan fires on it."""
        if self.exhausted or self.plan.operation not in ("*", operation, verb):
            return False
        self.seen += 1
        if self.seen <= self.plan.skip:
            return False
        if self.plan.probability < 1 and self.rng.random() >= self.plan.probability:
            return False
        self.fired += 1
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.plan.to_json(),
            "seen": self.seen,
            "fired": self.fired,
            "exhausted": self.exhausted,
        }
