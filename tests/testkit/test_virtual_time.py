"""Virtual time: the client's sleeps advance the fake's clock, its clock reads follow it, nothing waits.

No test here measures real time: "it did not really sleep" is shown by a stand-in for the real
``time.sleep`` installed before virtual time starts, which must never be called while it is on.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import time
from typing import Any

import anyio
import httpx
import pytest

import kling_testkit
from kling_testkit import VirtualTime, assert_retry_after_honoured, retry_after_waits
from mockserver import SystemClock, VirtualClock

AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
URL = "https://api.modelstream.ai/v1/video/generations"


@pytest.fixture
def real_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Stand-ins for the real time.sleep/asyncio.sleep that record instead of waiting."""
    calls: list[float] = []
    real_asyncio_sleep = asyncio.sleep

    def sleep(seconds: float) -> None:
        calls.append(seconds)

    async def asleep(delay: float, result: Any = None) -> Any:
        if delay:
            calls.append(delay)
        return await real_asyncio_sleep(0, result)

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(asyncio, "sleep", asleep)
    monkeypatch.setattr(asyncio.tasks, "sleep", asleep)
    return calls


def test_time_sleep_advances_the_fakes_clock_and_never_really_waits(real_sleeps: list[float]) -> None:
    with kling_testkit.mock(virtual_time=True) as api:
        start = api.clock.now()
        time.sleep(600)
        time.sleep(0)
        time.sleep(2.5)
        assert api.clock.now() - start == 602.5
    assert real_sleeps == []


def test_clock_reads_follow_the_virtual_clock_however_it_moves() -> None:
    with kling_testkit.mock(virtual_time=True) as api:
        start = api.clock.now()  # a virtual clock starts at the wall clock's whole second
        assert time.time() == start == int(start)
        assert datetime.datetime.now(datetime.timezone.utc).timestamp() == api.clock.now()
        api.advance_clock(30)  # the test's own controls
        assert time.time() == api.clock.now()
        with api.client(headers=AUTH) as client:
            api.arm_fault(operation="video_generations.create", error="rate_limited", latency=7)
            client.post("/v1/video/generations", json=BODY)  # injected latency is virtual too
        assert time.time() == api.clock.now() == start + 37
        assert time.time_ns() == int(api.clock.now()) * 1_000_000_000


def test_monotonic_grows_with_every_virtual_move_and_never_goes_back() -> None:
    with kling_testkit.mock(virtual_time=True) as api:
        start = api.clock.now()
        first = time.monotonic()
        time.sleep(100)
        after_sleep = time.monotonic()
        api.reset()  # rewinds the fake's clock (and time.time) to its start
        after_reset = time.monotonic()
        assert time.time() == start
    assert 100 <= after_sleep - first < 160  # the 100 virtual seconds, plus the real time the test took
    assert after_reset >= after_sleep
    assert time.monotonic_ns() > 0


def test_a_client_with_a_ten_minute_deadline_gives_up_after_ten_virtual_minutes(real_sleeps: list[float]) -> None:
    def wait_for_video(client: httpx.Client, task_id: str, deadline_s: float = 600, interval: float = 5) -> str:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            status = str(client.get(f"{URL}/{task_id}", headers=AUTH).json()["status"])
            if status in ("completed", "failed"):
                return status
            time.sleep(interval)
        return "gave up"

    with kling_testkit.mock(virtual_time=True, progression="manual") as api, httpx.Client() as client:
        task_id = client.post(URL, json=BODY, headers=AUTH).json()["task_id"]
        assert wait_for_video(client, task_id) == "gave up"
    assert 120 <= api.video_generations.get.call_count <= 121
    assert real_sleeps == []


def test_asyncio_sleep_advances_the_clock_while_the_loop_keeps_its_own_timing(real_sleeps: list[float]) -> None:
    async def client(api: kling_testkit.KlingMock) -> tuple[float, str, list[str]]:
        loop = asyncio.get_running_loop()
        order: list[str] = []
        loop.call_soon(order.append, "callback")  # the loop still runs callbacks and timers
        start = api.clock.now()
        assert await asyncio.sleep(30, result="slept") == "slept"
        event = asyncio.Event()
        loop.call_later(0, event.set)
        await asyncio.wait_for(event.wait(), timeout=60)
        order.append("timer")
        async with httpx.AsyncClient() as http:
            status = (await http.get(f"{URL}/task_x", headers=AUTH)).status_code
        return api.clock.now() - start, str(status), order

    with kling_testkit.mock(virtual_time=True) as api:
        assert asyncio.run(client(api)) == (30.0, "400", ["callback", "timer"])
    assert real_sleeps == []


def test_asyncio_timeouts_expire_in_virtual_time() -> None:
    async def poll() -> None:
        while True:
            await asyncio.sleep(5)

    async def poll_for_ten_minutes(api: kling_testkit.KlingMock) -> float:
        start = api.clock.now()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(poll(), timeout=600)
        return api.clock.now() - start

    with kling_testkit.mock(virtual_time=True) as api:
        assert 600 <= asyncio.run(poll_for_ten_minutes(api)) <= 615  # within a poll or two of the deadline


def test_anyio_sleep_is_virtual_too(real_sleeps: list[float]) -> None:
    async def main() -> None:
        await anyio.sleep(45)

    with kling_testkit.mock(virtual_time=True) as api:
        start = api.clock.now()
        anyio.run(main)
        assert api.clock.now() - start == 45
    assert real_sleeps == []


def test_an_sdk_that_sleeps_for_retry_after_passes_the_readme_assertion(real_sleeps: list[float]) -> None:
    def generate(prompt: str) -> dict[str, Any]:  # an SDK as found in the wild: time.sleep, its own client
        with httpx.Client() as client:
            while (created := client.post(URL, json={**BODY, "prompt": prompt}, headers=AUTH)).status_code == 429:
                time.sleep(float(created.headers["retry-after"]))
            return dict(created.json())

    with kling_testkit.mock(virtual_time=True) as api:
        api.arm_fault(operation="video_generations.create", error="rate_limited", retry_after=5, times=2)
        assert generate("a fox")["status"] == "queued"
        assert_retry_after_honoured(api)
        assert [(wait.asked, wait.waited) for wait in retry_after_waits(api)] == [(5.0, 5.0), (5.0, 5.0)]
    assert real_sleeps == []


def test_without_the_option_nothing_is_patched() -> None:
    originals = (time.sleep, time.monotonic, asyncio.sleep, anyio.sleep)
    with kling_testkit.mock() as api:
        assert (time.sleep, time.monotonic, asyncio.sleep, anyio.sleep) == originals
        api.advance_clock(3600)  # the fake's clock moves; the test's clock does not follow it
        assert time.time() < api.clock.now()


def test_every_patch_is_undone_when_the_fake_stops() -> None:
    originals = (time.sleep, time.monotonic, time.monotonic_ns, asyncio.sleep, asyncio.tasks.sleep, anyio.sleep)
    api = kling_testkit.mock(virtual_time=True)
    with api:
        assert time.sleep is not originals[0]
    assert (time.sleep, time.monotonic, time.monotonic_ns, asyncio.sleep, asyncio.tasks.sleep, anyio.sleep) == originals
    assert time.time() != api.clock.now()
    api.advance_clock(5)  # no listener left behind
    assert time.time() != api.clock.now()


def test_one_fake_at_a_time_owns_the_processs_time() -> None:
    with kling_testkit.mock(virtual_time=True), pytest.raises(RuntimeError, match="already active"):  # noqa: SIM117
        with kling_testkit.mock(virtual_time=True, base_urls="https://other.test"):
            pass
    with kling_testkit.mock(virtual_time=True):  # the refused one left nothing behind
        pass


def test_virtual_time_needs_a_virtual_clock() -> None:
    with pytest.raises(ValueError, match="VirtualClock"):
        kling_testkit.mock(virtual_time=True, clock=SystemClock())
    with pytest.raises(TypeError, match="VirtualClock"):
        VirtualTime(SystemClock())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "error"),
    [(-1, ValueError), (float("nan"), ValueError), ("5", TypeError), (None, TypeError)],
)
def test_a_bad_sleep_fails_as_the_real_one_does(seconds: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        time.sleep(seconds)  # the real one
    with VirtualTime(VirtualClock()), pytest.raises(error):
        time.sleep(seconds)


def test_sleeping_in_another_thread_advances_the_same_clock() -> None:
    import threading

    clock = VirtualClock()
    start = clock.now()
    with VirtualTime(clock):
        worker = threading.Thread(target=time.sleep, args=(12,))
        worker.start()
        worker.join()
        assert clock.now() - start == 12


def test_starting_twice_is_one_start_and_active_says_so() -> None:
    virtual = VirtualTime(VirtualClock())
    assert not virtual.active
    with virtual:
        assert virtual.start() is virtual  # a second start installs nothing twice
        assert virtual.active
        patched = time.sleep
    assert not virtual.active
    assert time.sleep is not patched


def test_monotonic_ns_moves_with_the_clock_in_nanoseconds() -> None:
    clock = VirtualClock()
    with VirtualTime(clock):
        before = time.monotonic_ns()
        clock.advance(2.5)
        assert time.monotonic_ns() - before >= 2_500_000_000


@pytest.mark.parametrize("seconds", [True, 2**3, pytest.param(decimal.Decimal("1.5"), id="decimal")])
def test_sleep_takes_what_the_real_one_takes(seconds: Any) -> None:
    clock = VirtualClock()
    start = clock.now()
    with VirtualTime(clock):
        time.sleep(seconds)
    assert clock.now() - start == pytest.approx(float(seconds))


def test_asyncio_sleep_forever_or_nan_is_left_to_the_real_one() -> None:
    clock = VirtualClock()
    start = clock.now()

    async def main() -> None:
        forever = asyncio.ensure_future(asyncio.sleep(float("inf")))
        await asyncio.sleep(0)
        forever.cancel()
        with pytest.raises(asyncio.CancelledError):
            await forever

    with VirtualTime(clock):
        asyncio.run(main())
    assert clock.now() == start  # "forever" did not move the fake's clock to infinity


def test_a_patch_that_fails_to_install_leaves_nothing_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    originals = (time.sleep, time.monotonic)
    virtual = VirtualTime(VirtualClock())

    def broken(owner: Any, name: str, replacement: Any) -> None:
        if name == "sleep" and owner is time:
            raise RuntimeError("cannot patch time.sleep")
        VirtualTime._patch(virtual, owner, name, replacement)

    monkeypatch.setattr(virtual, "_patch", broken)
    with pytest.raises(RuntimeError, match="cannot patch"):
        virtual.start()
    assert (time.sleep, time.monotonic) == originals
    assert not virtual.active
    with VirtualTime(VirtualClock()):  # and the process's time is free again
        pass
