"""Concurrent creates and polls against the live server: no task lost, no id duplicated, every
task's status monotone, no poll lost to a race.

A bounded loopback load: a fixed number of tasks, a fixed pool of workers and keep-alive
connections; the test stops by itself. The bigger run is marked ``slow``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from reliability_helpers import CREATE, Live
from sample_payloads import t2v

from mockserver import load_contract

CONTRACT = load_contract()
WIRE_TO_INTERNAL = {wire: internal for internal, wire in CONTRACT.status_projection.items()}
TERMINAL = frozenset(CONTRACT.lifecycle["terminal"])
INITIAL = CONTRACT.lifecycle["initial"]


def rank(wire_status: str) -> int:
    """Position along the lifecycle: initial 0, terminal 2, anything between 1."""
    internal = WIRE_TO_INTERNAL[wire_status]
    return 0 if internal == INITIAL else 2 if internal in TERMINAL else 1


@dataclass
class Load:
    tasks: int
    polls_per_task: int = 3
    shared_tasks: int = 0
    shared_polls: int = 5
    workers: int = 48
    seen: dict[str, list[str]] = field(default_factory=dict)
    shared: dict[str, list[str]] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return self.tasks * (1 + self.polls_per_task) + self.shared_tasks * (1 + self.shared_polls)


class Pool:
    """A small keep-alive HTTP/1.1 client over asyncio streams, one request per connection at
    a time. httpx spends ~1 ms of CPU per request in the same process as the server; this
    spends a fraction, so the load is thousands of requests in seconds, not minutes."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def __aenter__(self) -> Pool:
        for _ in range(self.size):
            self.idle.put_nowait(await asyncio.open_connection(self.host, self.port))
        return self

    async def __aexit__(self, *_: object) -> None:
        while not self.idle.empty():
            _reader, writer = self.idle.get_nowait()
            writer.close()
            await writer.wait_closed()

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, Any]:
        reader, writer = await self.idle.get()
        try:
            head = (
                f"{method} {target} HTTP/1.1\r\nhost: {self.host}\r\nauthorization: Bearer sk-test\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
        finally:
            self.idle.put_nowait((reader, writer))
        return int(status_line.split()[1]), json.loads(payload)


BODY = json.dumps(t2v()).encode()


async def _create(pool: Pool) -> tuple[str, str]:
    status, body = await pool.request("POST", CREATE, BODY)
    assert status == 200, body
    return body["task_id"], body["status"]


async def _poll(pool: Pool, task_id: str) -> str:
    status, body = await pool.request("GET", f"{CREATE}/{task_id}")
    assert status == 200, body
    assert body["task_id"] == task_id
    wire: str = body["status"]
    return wire


async def run_load(live: Live, load: Load) -> None:
    async with Pool(live.host, live.port, load.workers) as pool:
        counter = itertools.count()

        async def own_tasks() -> None:
            # Each worker creates a task and polls it in order: its statuses must never go back.
            while next(counter) < load.tasks:
                task_id, status = await _create(pool)
                load.created.append(task_id)
                statuses = [status]
                for _ in range(load.polls_per_task):
                    statuses.append(await _poll(pool, task_id))
                load.seen[task_id] = statuses

        async def shared_task() -> None:
            # Many polls of one task in flight at once: each must count, none may be lost.
            task_id, _ = await _create(pool)
            load.created.append(task_id)
            load.shared[task_id] = list(await asyncio.gather(*(_poll(pool, task_id) for _ in range(load.shared_polls))))

        await asyncio.gather(
            *(own_tasks() for _ in range(load.workers)), *(shared_task() for _ in range(load.shared_tasks))
        )


def check(live: Live, load: Load) -> None:
    __tracebackhide__ = True
    engine = live.service.engine
    held = {task.id: task for task in engine.tasks()}
    # no task lost, none invented, no id handed out twice
    assert len(load.created) == len(set(load.created)) == load.tasks + load.shared_tasks
    assert set(held) == set(load.created)
    # every task's observed status sequence is monotone along the lifecycle and ends terminal
    for task_id, statuses in load.seen.items():
        ranks = [rank(s) for s in statuses]
        assert ranks == sorted(ranks), (task_id, statuses)
        assert rank(statuses[-1]) == 2, (task_id, statuses)
        assert held[task_id].polls == load.polls_per_task
    # polls:1 progression: of k simultaneous polls exactly one saw the middle step
    for task_id, statuses in load.shared.items():
        assert Counter(map(rank, statuses)) == {1: 1, 2: load.shared_polls - 1}, (task_id, statuses)
        assert held[task_id].polls == load.shared_polls
    # the journal counted every exchange: kept + dropped == sent, sequence numbers contiguous
    entries = engine.journal.entries()
    assert len(entries) + engine.journal.dropped == load.requests
    seqs = [entry.seq for entry in entries]
    assert seqs == list(range(engine.journal.dropped + 1, load.requests + 1))


def test_concurrent_creates_and_polls_lose_nothing(live: Live) -> None:
    load = Load(tasks=2500, shared_tasks=250)  # 11 500 requests: the journal (10 000) overflows too
    asyncio.run(run_load(live, load))
    check(live, load)


@pytest.mark.slow
def test_ten_thousand_tasks_under_concurrent_load(live: Live) -> None:
    load = Load(tasks=20_000, shared_tasks=2000, workers=96)
    asyncio.run(run_load(live, load))
    check(live, load)
    assert live.service.engine.journal.dropped > 0, "this run is meant to overflow the journal"
