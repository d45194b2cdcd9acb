"""Deterministic deadlock detection for tests that drive the engine from several threads.

"Every thread finished within 30 s" says nothing about deadlock on a busy machine: it failed on a
loaded 2-core box with no deadlock, and it passes when the unlucky interleaving simply did not
happen. This module checks lock *order* instead (the Linux kernel's lockdep idea), which does not
depend on timing or on scheduling luck:

- :meth:`LockOrder.instrument` swaps every plain ``threading.Lock`` found in the attributes of an
  object graph (the service, its engine, clock and journal, whatever they are called) for a
  :class:`CheckedLock`;
- each blocking acquire records "lock A was held while lock B was taken" as an edge A -> B;
- acquiring a lock the thread already holds (a ``Lock`` is not re-entrant: that thread would wait
  for itself), or adding an edge that closes a cycle (two threads taking the same locks in
  opposite orders), raises :class:`LockOrderViolation` *before* blocking, naming both sites.

A run that takes locks in one consistent order cannot deadlock on them, whatever the scheduling;
one that could deadlock is reported the first time both orders are seen, even when the threads
never actually collided.

    >>> class Store:
    ...     def __init__(self) -> None:
    ...         self.lock = threading.Lock()
    ...         self.index = Index()
    >>> class Index:
    ...     def __init__(self) -> None:
    ...         self.lock = threading.Lock()
    >>> order = LockOrder()
    >>> store = Store()
    >>> order.instrument(store, modules=("lock_order",))
    ['Index.lock', 'Store.lock']
    >>> with store.lock, store.index.lock:  # Store -> Index: recorded
    ...     pass
    >>> with store.index.lock, store.lock:  # doctest: +ELLIPSIS
    ...     pass  # Index -> Store closes a cycle
    Traceback (most recent call last):
    ...
    lock_order.LockOrderViolation: lock-order inversion: taking Store.lock while holding Index.lock ...
"""

from __future__ import annotations

import threading
import traceback
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["CheckedLock", "LockOrder", "LockOrderViolation"]

_PLAIN_LOCK = type(threading.Lock())


class LockOrderViolation(AssertionError):
    """Two lock acquisitions that can deadlock under some interleaving (or this one already)."""


def _site() -> str:
    # The innermost frame outside this module: where the code under test took the lock.
    frames = [f for f in traceback.extract_stack() if f.filename != __file__]
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}"


class CheckedLock:
    """A ``threading.Lock`` that reports order violations to its :class:`LockOrder`."""

    def __init__(self, name: str, order: LockOrder) -> None:
        self.name = name
        self._order = order
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking:  # a try-lock cannot wait, so it cannot deadlock
            self._order._before_acquire(self)
        acquired = self._lock.acquire(blocking, timeout)
        if acquired:
            self._order._acquired(self)
        return acquired

    def release(self) -> None:
        self._order._released(self)
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<CheckedLock {self.name}>"


class LockOrder:
    """The lock-order graph shared by a set of :class:`CheckedLock` objects.

    ``violations`` keeps every report (also raised in the offending thread, where a worker's
    exception could be swallowed); ``acquisitions`` counts blocking acquires per lock, so a test
    can show its threads really contended for the locks it checked.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._after: dict[str, dict[str, str]] = {}  # held -> {taken while held: first site}
        self._local = threading.local()
        self.violations: list[str] = []
        self.acquisitions: Counter[str] = Counter()
        self.instrumented: list[str] = []

    def instrument(self, root: object, *, modules: Iterable[str] = ("mockserver",)) -> list[str]:
        """Replace every plain ``threading.Lock`` attribute reachable from ``root`` through objects
        of ``modules`` with a :class:`CheckedLock` named ``Class.attribute``; returns the names.

        Call it before any other thread uses the objects."""
        prefixes = tuple(modules)
        seen: set[int] = set()
        stack: list[object] = [root]
        while stack:
            obj = stack.pop()
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            for attribute, value in _attributes(obj):
                if type(value) is _PLAIN_LOCK:
                    name = f"{type(obj).__name__}.{attribute}"
                    setattr(obj, attribute, CheckedLock(name, self))
                    self.instrumented.append(name)
                elif type(value).__module__.split(".")[0] in prefixes:
                    stack.append(value)
        return sorted(self.instrumented)

    # -- called by CheckedLock -----------------------------------------------------------------

    def _held(self) -> list[CheckedLock]:
        held: list[CheckedLock] | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = []
        return held

    def _before_acquire(self, lock: CheckedLock) -> None:
        held = self._held()
        if not held:
            return
        if lock in held:
            self._report(f"self-deadlock: {threading.current_thread().name} takes {lock.name} again at {_site()}")
        message = None
        with self._mutex:
            for outer in held:
                known = self._after.setdefault(outer.name, {})
                if lock.name in known:
                    continue  # this order was checked when first seen
                path = self._path(lock.name, outer.name)
                if path is not None:
                    first = self._after[path[0]][path[1]]
                    message = (
                        f"lock-order inversion: taking {lock.name} while holding {outer.name} at {_site()}, "
                        f"but {' -> '.join(path)} was taken in that order before (first at {first})"
                    )
                    break
                known[lock.name] = _site()
        if message is not None:
            self._report(message)

    def _acquired(self, lock: CheckedLock) -> None:
        self._held().append(lock)
        with self._mutex:
            self.acquisitions[lock.name] += 1

    def _released(self, lock: CheckedLock) -> None:
        held = self._held()
        if lock in held:
            held.remove(lock)

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A chain of recorded edges start -> ... -> goal, if any (called under ``_mutex``)."""
        parents: dict[str, str] = {}
        frontier = [start]
        visited = {start}
        while frontier:
            node = frontier.pop()
            for nxt in self._after.get(node, {}):
                if nxt in visited:
                    continue
                parents[nxt] = node
                if nxt == goal:
                    path = [goal]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                visited.add(nxt)
                frontier.append(nxt)
        return None

    def _report(self, message: str) -> None:
        with self._mutex:
            self.violations.append(message)
        raise LockOrderViolation(message)


def _attributes(obj: object) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = list(getattr(obj, "__dict__", {}).items())
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if hasattr(obj, slot):
                found.append((slot, getattr(obj, slot)))
    return found
