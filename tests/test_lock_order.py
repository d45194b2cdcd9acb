"""The lock-order checker that test_threads relies on finds what it claims, without timing."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from lock_order import CheckedLock, LockOrder, LockOrderViolation


class Inner:
    __slots__ = ("lock",)

    def __init__(self) -> None:
        self.lock = threading.Lock()


class Outer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inner = Inner()
        self.reentrant = threading.RLock()  # not a plain Lock: left alone
        self.foreign = threading.Event()  # not from an instrumented module: not walked


def _checked() -> tuple[LockOrder, Outer]:
    order = LockOrder()
    outer = Outer()
    assert order.instrument(outer, modules=("test_lock_order",)) == ["Inner.lock", "Outer.lock"]
    return order, outer


def _in_thread(work: Callable[[], None]) -> BaseException | None:
    caught: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return caught[0] if caught else None


def test_instrumenting_replaces_plain_locks_in_attributes_and_slots_only() -> None:
    _, outer = _checked()
    assert isinstance(outer.lock, CheckedLock)
    assert isinstance(outer.inner.lock, CheckedLock)
    assert not isinstance(outer.reentrant, CheckedLock)


def test_opposite_orders_in_two_threads_are_reported_though_they_never_collided() -> None:
    order, outer = _checked()

    def outer_then_inner() -> None:
        with outer.lock, outer.inner.lock:
            pass

    def inner_then_outer() -> None:
        with outer.inner.lock, outer.lock:
            pass

    assert _in_thread(outer_then_inner) is None  # the threads run one after the other
    found = _in_thread(inner_then_outer)
    assert isinstance(found, LockOrderViolation)
    assert "taking Outer.lock while holding Inner.lock" in str(found)
    assert "Outer.lock -> Inner.lock was taken in that order before" in str(found)
    assert order.violations == [str(found)]
    assert not outer.lock.locked(), "nothing stays held after the report"
    assert not outer.inner.lock.locked()


def test_taking_a_held_lock_again_is_a_self_deadlock() -> None:
    order, outer = _checked()
    with outer.lock, pytest.raises(LockOrderViolation, match=r"self-deadlock: .* takes Outer\.lock again"):
        outer.lock.acquire()
    assert len(order.violations) == 1


def test_one_consistent_order_everywhere_passes_and_is_counted() -> None:
    order, outer = _checked()

    def work() -> None:
        for _ in range(3):
            with outer.lock, outer.inner.lock:
                pass
            with outer.inner.lock:
                pass

    assert [_in_thread(work) for _ in range(2)] == [None, None]
    assert order.violations == []
    assert order.acquisitions == {"Outer.lock": 6, "Inner.lock": 12}


def test_a_try_lock_cannot_wait_so_it_records_no_order() -> None:
    order, outer = _checked()
    with outer.inner.lock:
        assert outer.lock.acquire(blocking=False)
        outer.lock.release()
    with outer.lock, outer.inner.lock:  # the reverse order, now taken blocking: still fine
        pass
    assert order.violations == []
