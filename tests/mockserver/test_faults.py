"""Fault plans: what a plan may say (every field is checked), and when an armed plan fires."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from mockserver.engine.faults import MAX_WAIT, ArmedFault, FaultPlan

OP = "video_generations.create"

# (fields besides operation, fragment of the refusal)
REFUSED = [
    pytest.param({"operation": ""}, "operation id or '*'", id="empty-operation"),
    pytest.param({"operation": 7}, "operation id or '*'", id="operation-not-a-string"),
    pytest.param({"error": 429}, "catalogue key", id="error-not-a-string"),
    pytest.param({"times": 0}, "times must be an integer >= 1", id="times-zero"),
    pytest.param({"times": True}, "times must be an integer >= 1", id="times-bool"),
    pytest.param({"times": 1.5}, "times must be an integer >= 1", id="times-float"),
    pytest.param({"skip": -1}, "skip must be an integer >= 0", id="skip-negative"),
    pytest.param({"skip": False}, "skip must be an integer >= 0", id="skip-bool"),
    pytest.param({"latency": -0.5}, "latency must be a finite number >= 0", id="latency-negative"),
    pytest.param({"latency": math.inf}, "latency must be a finite number >= 0", id="latency-infinite"),
    pytest.param({"latency": "1"}, "latency must be a finite number >= 0", id="latency-string"),
    pytest.param({"latency": MAX_WAIT + 1}, "latency must be <= 86400 seconds", id="latency-over-a-day"),
    pytest.param({"probability": 1.5}, "probability must be <= 1", id="probability-over-one"),
    pytest.param({"probability": math.nan}, "probability must be a finite number", id="probability-nan"),
    pytest.param({"probability": True}, "probability must be a finite number", id="probability-bool"),
    pytest.param({"retry_after": -1}, "retry_after must be a number >= 0", id="retry-after-negative"),
    pytest.param({"retry_after": math.inf}, "retry_after must be <= 86400", id="retry-after-infinite"),
    pytest.param({"retry_after": "5"}, "retry_after must be a number >= 0", id="retry-after-string"),
    pytest.param({"retry_after": True}, "retry_after must be a number >= 0", id="retry-after-bool"),
    pytest.param({"retry_after": MAX_WAIT * 2}, "retry_after must be <= 86400", id="retry-after-over-a-day"),
    pytest.param({"seed": "seven"}, "seed must be an integer or null", id="seed-string"),
    pytest.param({"seed": True}, "seed must be an integer or null", id="seed-bool"),
    pytest.param({"error": None, "latency": 0}, "needs an error, a latency, or both", id="does-nothing"),
]


@pytest.mark.parametrize(("fields", "fragment"), REFUSED)
def test_a_plan_that_cannot_mean_anything_is_refused_naming_the_field(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("*", r"\*")):
        FaultPlan(**{"operation": OP, "error": "rate_limited", **fields})


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"error": None, "latency": 2.5}, id="latency-only"),
        pytest.param({"times": None}, id="every-call"),
        pytest.param({"latency": MAX_WAIT, "retry_after": MAX_WAIT}, id="a-day-exactly"),
        pytest.param({"probability": 0, "seed": 3}, id="never-but-valid"),
        pytest.param({"operation": "*", "skip": 5, "retry_after": 0}, id="wildcard"),
    ],
)
def test_plans_at_the_edges_are_accepted_and_round_trip_through_json(fields: dict[str, Any]) -> None:
    plan = FaultPlan(**{"operation": OP, "error": "rate_limited", **fields})
    assert FaultPlan.from_json(plan.to_json()) == plan


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        pytest.param({"error": "rate_limited"}, r"missing field\(s\) \['operation'\]", id="no-operation"),
        pytest.param({"operation": OP, "error": "x", "when": 3}, r"unknown field\(s\) \['when'\]", id="unknown"),
        pytest.param(["operation"], "must be a JSON object, got list", id="not-an-object"),
    ],
)
def test_from_json_refuses_missing_unknown_and_non_object_input(data: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        FaultPlan.from_json(data)


def _fired(armed: ArmedFault, calls: list[str]) -> list[bool]:
    return [armed.consider(op) for op in calls]


def test_a_plan_skips_then_fires_its_times_then_is_exhausted() -> None:
    armed = ArmedFault(1, FaultPlan(operation=OP, error="rate_limited", times=2, skip=1))
    assert _fired(armed, [OP] * 5) == [False, True, True, False, False]
    assert (armed.seen, armed.fired, armed.exhausted) == (3, 2, True)
    assert armed.to_json() == {**armed.plan.to_json(), "id": 1, "seen": 3, "fired": 2, "exhausted": True}


def test_other_operations_are_neither_counted_nor_hit_but_the_wildcard_sees_all() -> None:
    armed = ArmedFault(1, FaultPlan(operation=OP, error="rate_limited", times=None))
    assert _fired(armed, ["video_generations.get", OP, "media.get", OP]) == [False, True, False, True]
    assert armed.seen == 2
    assert not armed.exhausted
    everything = ArmedFault(2, FaultPlan(operation="*", error="upstream_error", times=3))
    assert _fired(everything, ["video_generations.get", OP, "media.get", OP]) == [True, True, True, False]


def test_a_probabilistic_plan_follows_its_seeded_stream() -> None:
    plan = FaultPlan(operation=OP, error="rate_limited", times=None, probability=0.5, seed=11)
    first = _fired(ArmedFault(1, plan, rng=random.Random(11)), [OP] * 40)
    again = _fired(ArmedFault(1, plan, rng=random.Random(11)), [OP] * 40)
    draws = random.Random(11)
    assert first == again == [draws.random() < 0.5 for _ in range(40)]  # one draw per call, fired below p
    assert 0 < sum(first) < 40, "a fair coin over 40 calls is neither always nor never"


def test_probability_zero_never_fires_and_one_always_does() -> None:
    never = ArmedFault(1, FaultPlan(operation=OP, error="rate_limited", times=None, probability=0))
    always = ArmedFault(2, FaultPlan(operation=OP, error="rate_limited", times=None, probability=1))
    assert _fired(never, [OP] * 10) == [False] * 10
    assert _fired(always, [OP] * 10) == [True] * 10
