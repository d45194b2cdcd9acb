"""The engine under real threads: the live server's thread and the test's thread share it.

The concurrency suite drives the server through uvicorn's single event-loop thread, which
serialises requests; here several OS threads call ``Service.handle`` at once while another
resets, advances the clock and lists tasks, so a missing lock would lose or corrupt state.

Deadlock is checked by lock order, not by wall time (``tests/support/lock_order.py``): every
lock in the service's object graph is instrumented, and taking one in an order that could
deadlock under *some* interleaving fails the test at once, whether or not this run's scheduling
hit it. So the joins below need no timeout: a cycle among these locks is reported before any
thread blocks on it (pytest's ``faulthandler_timeout`` dumps every stack should anything else
ever hang).
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from lock_order import LockOrder
from mock_bodies import AUTH, CREATE, t2v

from mockserver import Engine, Progression, Service, VirtualClock


@pytest.fixture
def lock_order() -> LockOrder:
    return LockOrder()


def _checked(service: Service, order: LockOrder) -> Service:
    names = order.instrument(service)
    # Without the engine's own lock the check would be vacuous; a rename still finds it.
    assert any(name.startswith("Engine.") for name in names), names
    return service


def _run(threads: list[threading.Thread], order: LockOrder) -> None:
    for thread in threads:
        thread.join()
    assert not order.violations, order.violations


THREADS = 6
PER_THREAD = 300


def test_parallel_creates_and_polls_lose_nothing_and_duplicate_no_id(lock_order: LockOrder) -> None:
    service = _checked(Service(Engine(clock=VirtualClock(), progression=Progression.after_polls(1))), lock_order)
    ids: list[list[str]] = [[] for _ in range(THREADS)]
    failures: list[str] = []
    start = threading.Barrier(THREADS + 2)  # the clients, the observer and this thread

    def client(slot: int) -> None:
        start.wait()
        try:
            _client(slot)
        except BaseException as exc:  # a lock-order violation raised inside the engine, say
            failures.append(repr(exc))

    def _client(slot: int) -> None:
        for _ in range(PER_THREAD):
            created = service.handle_simple("POST", CREATE, t2v(), AUTH)
            if created.status != 200:
                failures.append(f"create {created.status}")
                continue
            task_id = created.payload["task_id"]
            ids[slot].append(task_id)
            statuses = [
                service.handle_simple("GET", f"{CREATE}/{task_id}", None, AUTH).payload["status"] for _ in range(3)
            ]
            if statuses != ["in_progress", "completed", "completed"]:
                failures.append(f"{task_id}: {statuses}")

    def observer() -> None:
        start.wait()
        try:
            for _ in range(200):
                service.engine.tasks()
                service.engine.advance_clock(1)
                service.engine.journal.entries()
        except BaseException as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    threads.append(threading.Thread(target=observer))
    for thread in threads:
        thread.start()
    start.wait()
    _run(threads, lock_order)
    assert not failures, failures[:5]
    everything = [task_id for slot in ids for task_id in slot]
    assert len(everything) == THREADS * PER_THREAD
    assert not [i for i, n in Counter(everything).items() if n > 1]
    assert len(service.engine.tasks()) == THREADS * PER_THREAD
    assert all(task.polls == 3 for task in service.engine.tasks())


def test_reset_in_the_middle_of_traffic_leaves_a_consistent_engine(lock_order: LockOrder) -> None:
    service = _checked(Service(Engine(clock=VirtualClock())), lock_order)
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic() -> None:
        try:
            while not stop.is_set():
                created = service.handle_simple("POST", CREATE, t2v(), AUTH)
                if created.status == 200:
                    service.handle_simple("GET", f"{CREATE}/{created.payload['task_id']}", None, AUTH)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    for _ in range(50):
        service.engine.reset()
    stop.set()
    _run(workers, lock_order)
    assert not errors
    for task in service.engine.tasks():
        assert task.history[0][0].value == "submitted"
        assert task.polls <= 1


def test_the_checked_run_took_every_instrumented_lock_from_several_threads(lock_order: LockOrder) -> None:
    # The check above is only as good as its coverage: the clock's, the journal's and the
    # engine's locks must all have been taken while the threads ran.
    service = _checked(Service(Engine(clock=VirtualClock())), lock_order)

    def traffic() -> None:
        for _ in range(20):
            created = service.handle_simple("POST", CREATE, t2v(), AUTH)
            service.handle_simple("GET", f"{CREATE}/{created.payload['task_id']}", None, AUTH)
            service.engine.advance_clock(1)
            service.engine.reset()

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for thread in threads:
        thread.start()
    _run(threads, lock_order)
    assert set(lock_order.acquisitions) == set(lock_order.instrumented)
