"""Virtual time for the client under test: its sleeps advance the fake's clock, its clock reads follow it.

A real SDK waits with ``time.sleep``/``asyncio.sleep`` and measures deadlines with
``time.monotonic()``/``time.time()``. Against a fake on a :class:`~mockserver.VirtualClock` that
costs real seconds and shows the fake no wait at all. While a :class:`VirtualTime` is active:

* ``time.sleep(s)``, ``asyncio.sleep(s)`` and ``anyio.sleep(s)`` advance the fake's clock by ``s``
  and return at once (the async ones still yield to the event loop once);
* ``time.time()``, ``time.time_ns()``, ``datetime.now()`` and the other wall-clock reads return
  the virtual clock's time (time-machine, travelling without ticking);
* ``time.monotonic()``/``monotonic_ns()`` return the real monotonic clock plus every forward
  move of the virtual clock so far: it never goes backwards (a reset that rewinds the fake does
  not rewind it), and a deadline measured with it expires after the virtual seconds slept.

asyncio's event loop reads ``time.monotonic()``, so its timers keep running in real time (I/O
waits and callbacks work as before) and jump forward with the virtual clock: ``asyncio.timeout``
and ``wait_for`` deadlines expire in virtual time too. Loops that keep their own clock (uvloop)
stay in real time.

Names bound before the patch (``from time import sleep``) keep the real functions: patching
replaces module attributes, as ``unittest.mock.patch`` does. Each sleep advances the clock when
it is called, so two tasks sleeping 5 s concurrently advance it by 10 s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import time_machine

from mockserver import VirtualClock

__all__ = ["VirtualTime"]

_T = TypeVar("_T")

_ACTIVE_LOCK = threading.Lock()
_active: VirtualTime | None = None


class VirtualTime:
    """Patch the process's sleeps and clock reads onto ``clock`` between :meth:`start` and :meth:`stop`.

    >>> clock = VirtualClock()
    >>> with VirtualTime(clock):
    ...     before = time.monotonic()
    ...     time.sleep(600)  # returns at once
    ...     round(time.monotonic() - before), time.time() == clock.now()
    (600, True)
    """

    def __init__(self, clock: VirtualClock) -> None:
        if not isinstance(clock, VirtualClock):
            raise TypeError(f"virtual time needs the fake to run on a VirtualClock, not {type(clock).__name__}")
        self.clock = clock
        self._offset = 0.0  # forward moves of the clock while active, in seconds
        self._restore: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        return bool(self._restore)

    def start(self) -> VirtualTime:
        """Install the patches (refused while another fake's virtual time is active)."""
        global _active
        with _ACTIVE_LOCK:
            if _active is self:
                return self
            if _active is not None:
                raise RuntimeError(
                    "virtual time is already active for another fake: one process has one time.sleep "
                    "(stop the other fake, or give this one virtual_time=False)"
                )
            _active = self
        try:
            self._install()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Undo every patch, newest first (idempotent)."""
        global _active
        while self._restore:
            self._restore.pop()()
        with _ACTIVE_LOCK:
            if _active is self:
                _active = None

    def __enter__(self) -> VirtualTime:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the patches -------------------------------------------------------------------------

    def _install(self) -> None:
        import anyio  # an httpx dependency; imported here so that anyio.sleep is patched too

        travel = time_machine.travel(self.clock.now(), tick=False)
        traveller = travel.start()
        self._restore.append(travel.stop)

        def follow(old: float, new: float) -> None:
            traveller.move_to(new)
            if new > old:
                self._offset += new - old

        self._restore.append(self.clock.subscribe(follow))

        real_monotonic, real_monotonic_ns = time.monotonic, time.monotonic_ns
        real_asyncio_sleep = asyncio.sleep
        checkpoint = anyio.lowlevel.checkpoint

        def monotonic() -> float:
            return real_monotonic() + self._offset

        def monotonic_ns() -> int:
            return real_monotonic_ns() + round(self._offset * 1e9)

        def sleep(seconds: float, /) -> None:
            self._advance(_checked_delay(seconds))

        async def asyncio_sleep(delay: float, result: _T = None) -> _T:  # type: ignore[assignment]
            if delay != delay or delay == float("inf"):  # NaN or "forever": the real one decides
                return await real_asyncio_sleep(delay, result)
            if delay > 0:
                self._advance(delay)
            return await real_asyncio_sleep(0, result)

        async def anyio_sleep(delay: float) -> None:
            if delay > 0:
                self._advance(delay)
            await checkpoint()

        self._patch(time, "monotonic", monotonic)
        self._patch(time, "monotonic_ns", monotonic_ns)
        self._patch(time, "sleep", sleep)
        self._patch(asyncio, "sleep", asyncio_sleep)
        self._patch(asyncio.tasks, "sleep", asyncio_sleep)
        self._patch(anyio, "sleep", anyio_sleep)

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        original = getattr(owner, name)
        setattr(owner, name, replacement)
        self._restore.append(lambda: setattr(owner, name, original))

    def _advance(self, seconds: float) -> None:
        if seconds > 0:
            self.clock.advance(seconds)


def _checked_delay(seconds: Any) -> float:
    # time.sleep's own refusals, so that a client's bad sleep fails as it would for real.
    if not isinstance(seconds, (int, float)):
        kind = type(seconds)
        if not (hasattr(kind, "__float__") or hasattr(kind, "__index__")) or isinstance(seconds, (str, bytes)):
            raise TypeError(f"'{kind.__name__}' object cannot be interpreted as an integer or float")
        seconds = float(seconds)
    if seconds != seconds:
        raise ValueError("Invalid value NaN (not a number)")
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    return float(seconds)
