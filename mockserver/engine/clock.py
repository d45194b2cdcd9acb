"""Injected time. The engine reads time only through a :class:`Clock`.

Tests hand the engine a :class:`VirtualClock` and move it with ``advance()``; nothing sleeps.
``sleep``/``asleep`` exist so that injected latency costs real time on the system clock and
virtual time on the virtual one, through the same call in every door.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

#: 2026-01-01T00:00:00Z: a fixed start for runs whose timestamps must be reproducible
#: (``VirtualClock(start=DEFAULT_EPOCH)``); by default a virtual clock starts at the wall
#: clock's whole second, because signed credentials (Kling's JWTs carry exp and nbf from the
#: client's own clock) must be valid on the fake's clock without the client changing.
DEFAULT_EPOCH = 1_767_225_600.0
#: 9999-12-31T23:59:59Z: the last second datetime (and most clients) can represent; timestamps
#: go on the wire as integers, and a clock pushed to 1e300 made every later create a 500.
MAX_TIMESTAMP = 253_402_300_799.0


@runtime_checkable
class Clock(Protocol):
    """What the engine needs of time."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (blocking)."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Let ``seconds`` pass without blocking the event loop."""
        ...


class SystemClock:
    """Wall-clock time.

    >>> SystemClock().now() > 1_700_000_000
    True
    """

    virtual = False

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """Time that moves only when told to; it starts at ``start`` (default: the wall clock's
    current whole second, so tokens a client signs with its own clock are valid on it).

    >>> clock = VirtualClock(start=100.0)
    >>> clock.advance(30)
    130.0
    >>> clock.now()
    130.0
    """

    virtual = True

    def __init__(self, start: float | None = None) -> None:
        start = float(int(time.time())) if start is None else float(start)
        self._start = start
        self._now = start
        self._lock = threading.Lock()
        self._listeners: list[Callable[[float, float], None]] = []

    def now(self) -> float:
        return self._now

    def subscribe(self, listener: Callable[[float, float], None]) -> Callable[[], None]:
        """Call ``listener(old, new)`` after every change of the time (``advance``, ``set``,
        ``reset``), under the clock's lock so listeners see changes in order; returns the function
        that unsubscribes. The test kit's virtual time keeps the process's clocks in step this way.

        >>> clock = VirtualClock(start=100.0)
        >>> unsubscribe = clock.subscribe(lambda old, new: print(old, "->", new))
        >>> clock.advance(5)
        100.0 -> 105.0
        105.0
        >>> unsubscribe(); clock.reset()
        """
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _moved(self, old: float) -> None:
        for listener in list(self._listeners):
            listener(old, self._now)

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0) and return the new time."""
        if not seconds >= 0:  # also rejects NaN
            raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
        with self._lock:
            if not self._now + seconds <= MAX_TIMESTAMP:  # also rejects infinity
                raise ValueError(f"advancing by {seconds!r} s would pass {MAX_TIMESTAMP:.0f} (year 9999)")
            old = self._now
            self._now += float(seconds)
            if self._listeners:
                self._moved(old)
            return self._now

    def set(self, timestamp: float) -> None:
        """Jump to ``timestamp``; time never goes backwards."""
        with self._lock:
            if timestamp < self._now:
                raise ValueError(f"time cannot go backwards ({timestamp} < {self._now})")
            if not timestamp <= MAX_TIMESTAMP:
                raise ValueError(f"time cannot pass {MAX_TIMESTAMP:.0f} (year 9999), got {timestamp!r}")
            old, self._now = self._now, float(timestamp)
            if self._listeners:
                self._moved(old)

    def reset(self) -> None:
        """Back to the start time (used by the engine's reset)."""
        with self._lock:
            old, self._now = self._now, self._start
            if self._listeners:
                self._moved(old)

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
