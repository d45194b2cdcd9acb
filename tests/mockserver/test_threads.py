"""The engine under real threads: the live server's thread and the test's thread share it.

The concurrency suite drives the server through uvicorn's single event-loop thread, which
serialises requests; here several OS threads call ``Service.handle`` at once while another
resets, advances the clock and lists tasks, so a missing lock would lose or corrupt state.
"""

from __future__ import annotations

import threading
from collections import Counter

from mock_bodies import AUTH, CREATE, t2v

from mockserver import Engine, Progression, Service, VirtualClock

THREADS = 6
PER_THREAD = 300


def test_parallel_creates_and_polls_lose_nothing_and_duplicate_no_id() -> None:
    service = Service(Engine(clock=VirtualClock(), progression=Progression.after_polls(1)))
    ids: list[list[str]] = [[] for _ in range(THREADS)]
    failures: list[str] = []
    start = threading.Barrier(THREADS + 2)  # the clients, the observer and this thread

    def client(slot: int) -> None:
        start.wait()
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
        for _ in range(200):
            service.engine.tasks()
            service.engine.advance_clock(1)
            service.engine.journal.entries()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(THREADS)]
    threads.append(threading.Thread(target=observer))
    for thread in threads:
        thread.start()
    start.wait()
    for thread in threads:
        thread.join(30)
    assert not [t.name for t in threads if t.is_alive()], "a thread is stuck: the engine deadlocked or livelocked"
    assert not failures, failures[:5]
    everything = [task_id for slot in ids for task_id in slot]
    assert len(everything) == THREADS * PER_THREAD
    assert not [i for i, n in Counter(everything).items() if n > 1]
    assert len(service.engine.tasks()) == THREADS * PER_THREAD
    assert all(task.polls == 3 for task in service.engine.tasks())


def test_reset_in_the_middle_of_traffic_leaves_a_consistent_engine() -> None:
    service = Service(Engine(clock=VirtualClock()))
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic() -> None:
        try:
            while not stop.is_set():
                created = service.handle_simple("POST", CREATE, t2v(), AUTH)
                if created.status == 200:
                    service.handle_simple("GET", f"{CREATE}/{created.payload['task_id']}", None, AUTH)
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    for _ in range(50):
        service.engine.reset()
    stop.set()
    for worker in workers:
        worker.join(30)
    assert not [w.name for w in workers if w.is_alive()], "a worker is stuck"
    assert not errors
    for task in service.engine.tasks():
        assert task.history[0][0].value == "submitted"
        assert task.polls <= 1
