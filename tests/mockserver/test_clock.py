"""The injected clocks: virtual time moves only when told to, never backwards, never past 9999."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from mockserver.engine.clock import DEFAULT_EPOCH, MAX_TIMESTAMP, Clock, SystemClock, VirtualClock


def test_both_clocks_are_clocks() -> None:
    assert isinstance(VirtualClock(), Clock)
    assert isinstance(SystemClock(), Clock)
    assert (VirtualClock.virtual, SystemClock.virtual) == (True, False)


def test_virtual_time_starts_at_the_wall_clocks_second_and_moves_only_when_advanced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.75)
    clock = VirtualClock()
    assert clock.now() == clock.now() == 1_800_000_000.0  # whole seconds: tokens carry integers
    assert clock.advance(0) == 1_800_000_000.0
    assert clock.advance(1.5) == clock.now() == 1_800_000_001.5


def test_a_fixed_start_makes_timestamps_reproducible() -> None:
    assert VirtualClock(start=DEFAULT_EPOCH).now() == VirtualClock(start=DEFAULT_EPOCH).now() == DEFAULT_EPOCH


@pytest.mark.parametrize("seconds", [-1, -0.001, math.nan, -math.inf])
def test_advance_refuses_going_back_and_nan(seconds: float) -> None:
    clock = VirtualClock(start=10)
    with pytest.raises(ValueError, match="seconds must be a number >= 0"):
        clock.advance(seconds)
    assert clock.now() == 10


@pytest.mark.parametrize("seconds", [math.inf, 1e300, MAX_TIMESTAMP])
def test_advance_refuses_passing_the_year_9999(seconds: float) -> None:
    clock = VirtualClock(start=10)
    with pytest.raises(ValueError, match="year 9999"):
        clock.advance(seconds)
    assert clock.now() == 10


def test_advance_may_reach_the_last_second_exactly() -> None:
    clock = VirtualClock(start=0)
    assert clock.advance(MAX_TIMESTAMP) == MAX_TIMESTAMP


def test_set_jumps_forward_but_never_back_nor_past_9999() -> None:
    clock = VirtualClock(start=100)
    clock.set(100)
    clock.set(250)
    assert clock.now() == 250
    with pytest.raises(ValueError, match=r"cannot go backwards \(249 < 250"):
        clock.set(249)
    with pytest.raises(ValueError, match="cannot pass 253402300799"):
        clock.set(MAX_TIMESTAMP + 1)
    with pytest.raises(ValueError, match="cannot pass"):
        clock.set(math.nan)
    assert clock.now() == 250


def test_reset_returns_to_the_start_not_to_the_epoch() -> None:
    clock = VirtualClock(start=500)
    clock.advance(60)
    clock.reset()
    assert clock.now() == 500


def test_sleeping_on_virtual_time_just_moves_it_and_a_negative_sleep_is_none() -> None:
    clock = VirtualClock(start=0)
    clock.sleep(5)
    asyncio.run(clock.asleep(7))
    clock.sleep(-3)
    asyncio.run(clock.asleep(-3))
    assert clock.now() == 12


def test_the_system_clock_reads_and_sleeps_through_the_standard_library(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[tuple[str, float]] = []
    monkeypatch.setattr("mockserver.engine.clock.time.time", lambda: 1_800_000_000.0)
    monkeypatch.setattr("mockserver.engine.clock.time.sleep", lambda s: slept.append(("sleep", s)))

    async def fake_asleep(seconds: float) -> None:
        slept.append(("asleep", seconds))

    monkeypatch.setattr("mockserver.engine.clock.asyncio.sleep", fake_asleep)
    clock = SystemClock()
    assert clock.now() == 1_800_000_000.0
    clock.sleep(2)
    clock.sleep(-1)  # clamped: time.sleep refuses negative values
    asyncio.run(clock.asleep(3))
    asyncio.run(clock.asleep(-1))
    assert slept == [("sleep", 2), ("sleep", 0.0), ("asleep", 3), ("asleep", 0.0)]
