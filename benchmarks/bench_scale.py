"""Scale: 100 000 tasks held (memory per task, poll latency at 1k vs 100k, admin list cost) and
a 10 MB base64 image create (time and peak memory relative to the body).

Every figure is a ratio against a baseline measured in the same run:

* memory per task against the same request body held as a plain dict (the least a store keeps);
* poll latency at 100k tasks against 1k tasks (the target is flat: ratio ~1.0);
* admin list cost per task at 100k against 1k (linear: ratio ~1.0 per task);
* the 10 MB create against the least work any checker does (parse the JSON, decode the
  base64), and its peak traced memory against the body size;
* bodies of 4 000, 16 000 and 12 MB of unknown fields against an ordinary create (linear work,
  the last two refused by ``limits.max_json_values``);
* memory retained per task for a text-to-video, an image-to-video with two 10 MB images and a
  25 MB image URL request (each bounded by ``MAX_STORED_REQUEST`` plus the task's own fields).

    python3 dev.py bench scale [--quick]
"""

from __future__ import annotations

import argparse
import base64
import gc
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable

import orjson
from payloads import FULL_CREATE
from PIL import Image

from mockserver import ApiRequest, Engine, Progression, Service, VirtualClock
from mockserver.serve import tune_gc_for_server

AUTH = ("authorization", "Bearer sk-test")
JSON = ("content-type", "application/json")
CREATE = "http://127.0.0.1/v1/video/generations"
BODY = FULL_CREATE
RAW_BODY = orjson.dumps(BODY)
CREATE_REQUEST = ApiRequest.build("POST", CREATE, [AUTH, JSON], RAW_BODY)


def service_with(tasks: int, journal_limit: int = 10_000) -> tuple[Service, list[str]]:
    engine = Engine(clock=VirtualClock(), seed=1, progression=Progression.manual(), journal_limit=journal_limit)
    service = Service(engine)
    ids = []
    for _ in range(tasks):
        answer = service.handle(CREATE_REQUEST)
        assert answer.status == 200, answer.body
        ids.append(orjson.loads(answer.body)["task_id"])
    return service, ids


def traced(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated by ``build()`` once it returns (its result kept alive)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, kept


def memory_per_task(n: int) -> None:
    # journal_limit=1: the journal is bounded and measured on its own below; this is the store.
    task_bytes, _ = traced(lambda: service_with(n, journal_limit=1))
    plain_bytes, _ = traced(lambda: [orjson.loads(RAW_BODY) for _ in range(n)])
    per_task = task_bytes / n
    per_plain = plain_bytes / n
    print(f"memory per task: {per_task:,.0f} B ({n:,} tasks); the request as a plain dict: {per_plain:,.0f} B")
    print(f"  ratio task / plain request: {per_task / per_plain:.2f}x   (body on the wire: {len(RAW_BODY)} B)")
    journal_bytes, _ = traced(lambda: service_with(10_000, journal_limit=10_000))
    store_part = 10_000 * per_task
    print(f"journal entry (full journal of 10 000): {(journal_bytes - store_part) / 10_000:,.0f} B each")


def _noise_png(target_bytes: int) -> bytes:
    """A PNG of random pixels just under ``target_bytes`` (noise does not compress)."""
    side = int((target_bytes / 3) ** 0.5) - 8
    rng = random.Random(3)
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def kind_bodies() -> dict[str, bytes]:
    """The three kinds of request whose retained memory issue 13 asks for."""
    image = base64.b64encode(_noise_png(10_000_000)).decode("ascii")
    tail = base64.b64encode(_noise_png(9_900_000)).decode("ascii")
    return {
        "text2video": RAW_BODY,
        "image2video, two 10 MB images": orjson.dumps({**BODY, "sound": "off", "image": image, "image_tail": tail}),
        "image URL of 25 MB": orjson.dumps({**BODY, "image": "https://example.com/" + "a" * 25_000_000}),
    }


def memory_per_kind(n: int) -> None:
    """Retained bytes per task for each kind (the store; a one-entry journal), and the bound."""
    from mockserver.engine.core import MAX_STORED_REQUEST

    for name, raw in kind_bodies().items():
        request = ApiRequest.build("POST", CREATE, [AUTH, JSON], raw)

        def build(tasks: int, request: ApiRequest = request) -> Service:
            service = Service(Engine(clock=VirtualClock(), seed=1, progression=Progression.manual(), journal_limit=1))
            for _ in range(tasks):
                answer = service.handle(request)
                assert answer.status == 200, answer.body[:300]
            return service

        build(1)  # warm: contract, validators and schemas loaded outside the measurement
        # The slope between 2 and 2 + n tasks: the service's own fixed cost cancels out.
        few, _ = traced(lambda: build(2))
        many, _ = traced(lambda: build(2 + n))
        per_task = (many - few) / n
        print(f"  {name}: {per_task:,.0f} B per task ({n} tasks; body {len(raw) / 1e6:,.1f} MB)")
    print(f"  stored request at most {MAX_STORED_REQUEST} B per task (mockserver.engine.core.MAX_STORED_REQUEST)")


def unknown_fields(rounds: int) -> None:
    """Hostile bodies of unknown fields (issue 13) against an ordinary create, same run:
    4 000 unknown fields (under the value limit: dropped, one warning each), 16 000 (161 KiB)
    and 12 MB of them (refused by the limit after a linear parse)."""

    def body(fields: int, value: str = "") -> bytes:
        return orjson.dumps({**BODY, **{f"unknown_{i:07d}": value or i for i in range(fields)}})

    cases = {
        "ordinary create": RAW_BODY,
        "4 000 unknown fields (accepted)": body(4_000),
        "16 000 unknown fields": body(16_000),
        "12 MB of unknown fields": body(12 * 1024 * 1024 // 90, "v" * 64),
    }
    service = Service(Engine(clock=VirtualClock(), seed=1, progression=Progression.manual(), journal_limit=100))
    timings = {}
    for name, raw in cases.items():
        request = ApiRequest.build("POST", CREATE, [AUTH, JSON], raw)
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            status = service.handle(request).status
            samples.append(time.perf_counter() - start)
        timings[name] = statistics.median(samples)
        print(f"  {name} ({len(raw) / 1024:,.0f} KiB): {timings[name] * 1e3:.2f} ms, status {status}")
    base = timings["ordinary create"]
    for name, value in timings.items():
        if name != "ordinary create":
            print(f"  ratio {name} / ordinary create: {value / base:.0f}x")


def time_polls(service: Service, ids: list[str], polls: int, rounds: int) -> float:
    """Median microseconds per poll, random task ids, over ``rounds`` rounds."""
    rng = random.Random(7)
    requests = [ApiRequest.build("GET", f"{CREATE}/{rng.choice(ids)}", [AUTH]) for _ in range(polls)]
    handle = service.handle
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for request in requests:
            handle(request)
        samples.append((time.perf_counter() - start) / polls * 1e6)
    return statistics.median(samples)


def time_list(service: Service, rounds: int) -> float:
    request = ApiRequest.build("GET", "http://127.0.0.1/__mock__/tasks", [])
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        answer = service.handle(request)
        samples.append(time.perf_counter() - start)
        assert answer.status == 200
    return statistics.median(samples)


def poll_and_list(small: int, large: int, polls: int, rounds: int) -> None:
    small_service, small_ids = service_with(small)
    large_service, large_ids = service_with(large)
    # alternate so machine noise hits both alike
    small_us, large_us = [], []
    for _ in range(3):
        small_us.append(time_polls(small_service, small_ids, polls, rounds))
        large_us.append(time_polls(large_service, large_ids, polls, rounds))
    s, lg = statistics.median(small_us), statistics.median(large_us)
    print(
        f"poll latency: {s:.1f} us at {small:,} tasks, {lg:.1f} us at {large:,} tasks; ratio {lg / s:.2f}x (flat = 1.0)"
    )
    small_list = time_list(small_service, 5)
    large_list = time_list(large_service, 3)
    per_small, per_large = small_list / small * 1e6, large_list / large * 1e6
    print(
        f"admin GET /__mock__/tasks: {small_list * 1e3:.1f} ms at {small:,}, {large_list * 1e3:.0f} ms at {large:,}; "
        f"per task {per_small:.2f} vs {per_large:.2f} us, ratio {per_large / per_small:.2f}x (linear = 1.0)"
    )


def big_image_body(target_b64_bytes: int) -> bytes:
    # Random pixels do not compress: the PNG is about as large as its pixels.
    side = int((target_b64_bytes * 3 / 4 / 3) ** 0.5)
    pixels = os.urandom(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, "PNG", compress_level=0)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return orjson.dumps({**BODY, "image": encoded})


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1])


def big_create(path: str, rounds: int) -> None:
    """Run in a fresh process that only reads the body (main builds it), so the peak resident
    size (a high-water mark) grows because of this step alone."""
    with open(path, "rb") as file:
        body = file.read()
    request = ApiRequest.build("POST", CREATE, [AUTH, JSON], body)
    service = Service(Engine(clock=VirtualClock(), seed=1))

    def baseline() -> None:
        base64.b64decode(orjson.loads(body)["image"], validate=True)

    def create() -> None:
        answer = service.handle(request)
        assert answer.status == 200, answer.body[:300]

    def median_time(call: Callable[[], None]) -> float:
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    # warm up with a small image: lazy imports and compiled validators are not the body's cost
    small = io.BytesIO()
    Image.new("RGB", (400, 400)).save(small, "PNG")
    warm = orjson.dumps({**BODY, "image": base64.b64encode(small.getvalue()).decode()})
    assert service.handle(ApiRequest.build("POST", CREATE, [AUTH, JSON], warm)).status == 200
    gc.collect()
    # Linux: writing 5 to clear_refs resets the resident high-water mark (VmHWM), which otherwise
    # survives fork and exec from the parent that held 100k tasks.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    rss_before = _status_kb("VmRSS")
    create()
    rss_peak = max(0, _status_kb("VmHWM") - rss_before) * 1024
    base_t, create_t = median_time(baseline), median_time(create)
    print(
        f"10 MB image create: body {len(body) / 1e6:.1f} MB, {create_t * 1e3:.0f} ms; "
        f"parse+decode baseline {base_t * 1e3:.0f} ms; ratio {create_t / base_t:.2f}x"
    )
    growth = f"{rss_peak / 1e6:.1f} MB = {rss_peak / len(body):.2f}x the body"
    print(f"  peak resident growth during the first create: {growth}")
    # tracemalloc counts what is requested, not what is touched: orjson reserves a parse buffer
    # of ~13x a large input and touches a fraction of it, so its traced peak overstates memory.
    for name, call in (("parse+decode", baseline), ("create", create)):
        gc.collect()
        tracemalloc.start()
        call()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"  traced (requested) peak, {name}: {peak / 1e6:.1f} MB = {peak / len(body):.2f}x the body")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="10k tasks instead of 100k, fewer rounds")
    parser.add_argument("--only", choices=("poll", "big", "kinds", "unknown"), help=argparse.SUPPRESS)
    parser.add_argument("--body", help=argparse.SUPPRESS)
    parser.add_argument("--gc", choices=("default", "server"), default="default", help=argparse.SUPPRESS)
    args = parser.parse_args()
    large = 10_000 if args.quick else 100_000
    rounds = 3 if args.quick else 5
    if args.gc == "server":
        tune_gc_for_server()  # what `kling-testkit serve` does before it accepts connections
    if args.only == "poll":
        poll_and_list(1_000, large, polls=2_000, rounds=rounds)
        return 0
    if args.only == "kinds":
        memory_per_kind(10 if args.quick else 50)
        return 0
    if args.only == "unknown":
        unknown_fields(rounds=rounds)
        return 0
    if args.only == "big":
        big_create(args.body, rounds=2 if args.quick else 5)
        return 0
    memory_per_task(large)
    print("hostile bodies of unknown fields:")
    unknown_fields(rounds=rounds)
    print("retained memory per task, by kind of request:")
    memory_per_kind(10 if args.quick else 50)
    flags = ["--quick"] if args.quick else []
    print("-- in-process (the interpreter's default GC, as the respx mock runs):")
    poll_and_list(1_000, large, polls=2_000, rounds=rounds)
    print("-- the server process's GC settings (mockserver.serve.tune_gc_for_server):")
    subprocess.run([sys.executable, __file__, "--only", "poll", "--gc", "server", *flags], check=True)
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(big_image_body(10_000_000))
        file.flush()
        subprocess.run([sys.executable, __file__, "--only", "big", "--body", file.name, *flags], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
