"""In-process fake and fixtures: costs against baselines measured in the same run.

- every face's create and poll through the respx fake (gateway JSON; official JSON with a JWT,
  verified once and cached; openai a multipart form, as the OpenAI SDK sends it) vs a static respx
  route returning that face's canned answer (both injected as ``httpx.MockTransport`` into one
  ``httpx.Client``); target <= 1.5x;
- create -> poll -> poll -> download vs the same four requests on static routes; target <= 2x;
- ``kling_mock`` setup (build + patch + unpatch) against a 1 ms budget; respx's own
  ``respx.mock`` start/stop shown for reference;
- live server session start (to accepting connections) vs a bare uvicorn+Starlette start in a
  thread; target <= 1.5x; and its stop;
- per-test reset of the live server (what ``kling_server`` does); target <= 1 ms;
- importing the plugin module in a fresh interpreter, over ``import pytest`` (pytest has to be
  there anyway) and over ``python -c pass``; target <= 50 ms.

Rounds alternate baseline and subject so machine noise hits both; medians are reported.
In-process costs are CPU time of this process; start, stop and import are wall time.

    python3 dev.py bench inprocess [--quick]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import respx
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from kling_testkit import KlingMock, LiveServer
from mockserver.serve import bind

BASE = "https://api.modelstream.ai"
CREATE = f"{BASE}/v1/video/generations"
AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a red fox running through fresh snow", "duration": 5}]}


def per_call(fn: Callable[[], Any], n: int) -> float:
    """CPU seconds per call of ``fn`` over ``n`` calls.

    CPU time of this process, not wall time: the in-process paths never wait on anything, and on
    a shared machine wall time mostly measures the neighbours. GC is paused (noise at this scale).
    """
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(n):
            fn()
        return (time.process_time() - start) / n
    finally:
        gc.enable()


def rounds(pairs: dict[str, tuple[Callable[[], float], Callable[[], float]]], count: int) -> dict[str, list[float]]:
    """Alternate baseline and subject ``count`` times per pair; the ratio per round."""
    ratios: dict[str, list[float]] = {name: [] for name in pairs}
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in pairs}
    for _ in range(count):
        for name, (baseline, subject) in pairs.items():
            b, s = baseline(), subject()
            times[name][0].append(b)
            times[name][1].append(s)
            ratios[name].append(s / b)
    for name in pairs:
        b, s = statistics.median(times[name][0]), statistics.median(times[name][1])
        print(f"  {name:<34} baseline {b * 1e6:8.1f} µs   subject {s * 1e6:8.1f} µs", flush=True)
    return ratios


# -- static routes: the baseline ---------------------------------------------------------------


def static_client() -> tuple[httpx.Client, str]:
    """A respx router of static routes answering what the fake would, canned."""
    api = KlingMock(progression="immediate")
    with api.client(headers=AUTH) as client:
        created = client.post(CREATE, json=BODY)
        polled = client.get(f"{CREATE}/{created.json()['task_id']}")
        video = client.get(polled.json()["url"])
    router = respx.MockRouter(assert_all_called=False)
    router.post(CREATE).respond(200, json=created.json())
    router.get(url__regex=rf"^{BASE}/v1/video/generations/[^/]+$").respond(200, json=polled.json())
    router.get(url__regex=rf"^{BASE}/__media__/[^/]+$").respond(200, content=video.content, content_type="video/mp4")
    return httpx.Client(transport=httpx.MockTransport(router.handler), headers=AUTH), polled.json()["url"]


OFFICIAL_BASE = "https://api-singapore.klingai.com"
OFFICIAL_CREATE = "/v1/videos/text2video"
OFFICIAL_BODY = {"model_name": "kling-v2-6", "prompt": "a red fox in snow", "duration": "5", "mode": "std"}


def _official_auth(api: KlingMock) -> dict[str, str]:
    # One token per session, as SDKs that sign once do; the fake verifies it once and caches it.
    pair = api.service.faces["official"].contract.index["auth"]["default_keys"][0]
    now = api.clock.now()
    token = jwt.encode({"iss": pair["access_key"], "exp": now + 86_400, "nbf": now - 5}, pair["secret_key"])
    return {"Authorization": f"Bearer {token}"}


def official_clients() -> tuple[httpx.Client, KlingMock, httpx.Client, httpx.Client, str]:
    """Kling's own API: static routes answering what the fake answers, the fake for creates
    (with JWT verification), and one on a task that stays ``processing`` for polls."""
    sample = KlingMock(progression="manual")
    with sample.client(base_url=OFFICIAL_BASE, headers=_official_auth(sample)) as client:
        created = client.post(OFFICIAL_CREATE, json=OFFICIAL_BODY)
        polled = client.get(f"{OFFICIAL_CREATE}/{created.json()['data']['task_id']}")
    router = respx.MockRouter(assert_all_called=False)
    router.post(OFFICIAL_BASE + OFFICIAL_CREATE).respond(200, json=created.json())
    router.get(url__regex=rf"^{OFFICIAL_BASE}/v1/videos/text2video/[^/]+$").respond(200, json=polled.json())
    auth = _official_auth(sample)
    static = httpx.Client(transport=httpx.MockTransport(router.handler), base_url=OFFICIAL_BASE, headers=auth)
    fake = KlingMock(progression="manual")
    creating = fake.client(base_url=OFFICIAL_BASE, headers=_official_auth(fake))
    poller = KlingMock(progression="manual")
    polling = poller.client(base_url=OFFICIAL_BASE, headers=_official_auth(poller))
    task_id = str(polling.post(OFFICIAL_CREATE, json=OFFICIAL_BODY).json()["data"]["task_id"])
    return static, fake, creating, polling, task_id


OPENAI_CREATE = f"{BASE}/v1/videos"
OPENAI_BOUNDARY = "kling-bench-boundary"
#: what the OpenAI SDK's ``client.videos.create`` sends: a multipart form of text fields
OPENAI_FORM = (
    "".join(
        f'--{OPENAI_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("model", "kling-v2-6"), ("prompt", "a red fox in snow"), ("seconds", "5"))
    )
    + f"--{OPENAI_BOUNDARY}--\r\n"
).encode()
OPENAI_HEADERS = {"Content-Type": f"multipart/form-data; boundary={OPENAI_BOUNDARY}"}


def openai_clients() -> tuple[httpx.Client, httpx.Client, httpx.Client, str]:
    """The gateway's OpenAI-compatible route: static routes answering what the fake answers,
    the fake for creates (multipart forms), and one on a task that stays ``in_progress``."""
    sample = KlingMock(progression="manual")
    with sample.client(headers=AUTH) as client:
        created = client.post(OPENAI_CREATE, content=OPENAI_FORM, headers=OPENAI_HEADERS)
        polled = client.get(f"{OPENAI_CREATE}/{created.json()['id']}")
    router = respx.MockRouter(assert_all_called=False)
    router.post(OPENAI_CREATE).respond(200, json=created.json())
    router.get(url__regex=rf"^{BASE}/v1/videos/[^/]+$").respond(200, json=polled.json(), headers=polled.headers)
    static = httpx.Client(transport=httpx.MockTransport(router.handler), headers=AUTH)
    fake = KlingMock(progression="manual").client(headers=AUTH)
    poller = KlingMock(progression="manual").client(headers=AUTH)
    task_id = str(poller.post(OPENAI_CREATE, content=OPENAI_FORM, headers=OPENAI_HEADERS).json()["id"])
    return static, fake, poller, task_id


Pairs = dict[str, tuple[Callable[[], float], Callable[[], float]]]


def bench_requests(quick: bool) -> dict[str, list[float]]:
    n = 200 if quick else 1000
    static, media_url = static_client()
    fake = KlingMock(progression="manual")
    fake_client = fake.client(headers=AUTH)
    task_id = fake_client.post(CREATE, json=BODY).json()["task_id"]
    seq = KlingMock()
    seq_client = seq.client(headers=AUTH)

    def fake_create() -> float:
        fake.engine.journal.clear()
        return per_call(lambda: fake_client.post(CREATE, json=BODY), n)

    def fake_sequence() -> None:
        tid = seq_client.post(CREATE, json=BODY).json()["task_id"]
        seq_client.get(f"{CREATE}/{tid}")
        url = seq_client.get(f"{CREATE}/{tid}").json()["url"]
        seq_client.get(url)

    def static_sequence() -> None:
        static.post(CREATE, json=BODY).json()
        static.get(f"{CREATE}/task_x")
        static.get(f"{CREATE}/task_x").json()
        static.get(media_url)

    def seq_round() -> float:
        seq.reset()
        return per_call(fake_sequence, n // 4)

    official_static, official_fake, official_client, official_poller, official_task = official_clients()

    def official_fake_create() -> float:
        official_fake.engine.reset()  # the account's concurrency slots would fill up
        return per_call(lambda: official_client.post(OFFICIAL_CREATE, json=OFFICIAL_BODY), n)

    openai_static, openai_fake, openai_poller, openai_task = openai_clients()

    def openai_post(client: httpx.Client) -> Callable[[], float]:
        return lambda: per_call(lambda: client.post(OPENAI_CREATE, content=OPENAI_FORM, headers=OPENAI_HEADERS), n)

    pairs: Pairs = {
        "gateway create": (lambda: per_call(lambda: static.post(CREATE, json=BODY), n), fake_create),
        "gateway poll": (
            lambda: per_call(lambda: static.get(f"{CREATE}/task_x"), n),
            lambda: per_call(lambda: fake_client.get(f"{CREATE}/{task_id}"), n),
        ),
        "official create (JWT)": (
            lambda: per_call(lambda: official_static.post(OFFICIAL_CREATE, json=OFFICIAL_BODY), n),
            official_fake_create,
        ),
        "official poll (JWT)": (
            lambda: per_call(lambda: official_static.get(f"{OFFICIAL_CREATE}/1"), n),
            lambda: per_call(lambda: official_poller.get(f"{OFFICIAL_CREATE}/{official_task}"), n),
        ),
        "openai create (form)": (openai_post(openai_static), openai_post(openai_fake)),
        "openai poll": (
            lambda: per_call(lambda: openai_static.get(f"{OPENAI_CREATE}/video_x"), n),
            lambda: per_call(lambda: openai_poller.get(f"{OPENAI_CREATE}/{openai_task}"), n),
        ),
        "gateway create+2 polls+download": (lambda: per_call(static_sequence, n // 4), seq_round),
    }
    # Warm both paths (first-call imports, the MP4 read from the package).
    for baseline, subject in pairs.values():
        baseline(), subject()
    return rounds(pairs, 3 if quick else 7)


# -- fixture setup -----------------------------------------------------------------------------


def bench_setup(quick: bool) -> tuple[float, float, float]:
    n = 200 if quick else 1000

    def kling_mock_fixture() -> None:
        with KlingMock():
            pass

    def respx_mock_fixture() -> None:
        with respx.mock():
            pass

    kling_mock_fixture()
    build = statistics.median(per_call(KlingMock, n) for _ in range(5))
    setup = statistics.median(per_call(kling_mock_fixture, n) for _ in range(5))
    respx_setup = statistics.median(per_call(respx_mock_fixture, n) for _ in range(5))
    return build, setup, respx_setup


def bare_uvicorn_start() -> tuple[float, float]:
    async def endpoint(_request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    start = time.perf_counter()
    sock = bind("127.0.0.1", 0)
    app = Starlette(routes=[Route("/", endpoint)])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:  # uvicorn offers no event; this is how a bare fixture waits
        time.sleep(0.0005)
    started = time.perf_counter() - start
    start = time.perf_counter()
    server.should_exit = True
    thread.join()
    sock.close()
    return started, time.perf_counter() - start


def live_server_start() -> tuple[float, float]:
    start = time.perf_counter()
    server = LiveServer().start()
    started = time.perf_counter() - start
    start = time.perf_counter()
    server.stop()
    return started, time.perf_counter() - start


def bench_server(quick: bool) -> tuple[list[float], float, float, float]:
    bare_uvicorn_start(), live_server_start()  # imports and first-use caches
    ratios, bare_stop, live_stop = [], [], []
    bare_start, live_start = [], []
    for _ in range(3 if quick else 7):
        b_start, b_stop = bare_uvicorn_start()
        l_start, l_stop = live_server_start()
        bare_start.append(b_start)
        live_start.append(l_start)
        ratios.append(l_start / b_start)
        bare_stop.append(b_stop)
        live_stop.append(l_stop)
    print(
        f"  {'session start (bare -> live)':<34} baseline {statistics.median(bare_start) * 1e3:8.2f} ms  "
        f" subject {statistics.median(live_start) * 1e3:8.2f} ms"
    )
    with LiveServer() as server, httpx.Client(base_url=server.base_url, headers=AUTH) as client:
        for _ in range(20):
            task_id = client.post("/v1/video/generations", json=BODY).json()["task_id"]
            client.get(f"/v1/video/generations/{task_id}")

        def per_test_reset() -> None:  # what the kling_server fixture does before each test
            server.configure(progression=None, outcome=None, strict=False, keys=None)
            server.reset()

        reset = statistics.median(per_call(per_test_reset, 200 if quick else 1000) for _ in range(5))
    return ratios, statistics.median(bare_stop), statistics.median(live_stop), reset


# -- plugin import -----------------------------------------------------------------------------


def fresh(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def bench_import(quick: bool) -> tuple[float, float, int]:
    runs = 7 if quick else 21
    nothing, pytest_only, plugin = [], [], []
    for _ in range(runs):
        nothing.append(fresh("pass"))
        pytest_only.append(fresh("import pytest"))
        plugin.append(fresh("import pytest, kling_testkit.plugin"))
    over_pytest = statistics.median(plugin) - statistics.median(pytest_only)
    over_nothing = statistics.median(plugin) - statistics.median(nothing)
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest; import kling_testkit.plugin"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    cumulative = 0
    for line in out.splitlines():
        if line.rstrip().endswith("| kling_testkit.plugin"):
            cumulative = int(line.split("|")[1])
    return over_pytest, over_nothing, cumulative


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds (a smoke run)")
    quick = parser.parse_args().quick

    print("requests through an injected transport (median per call):", flush=True)
    ratios = bench_requests(quick)
    build, setup, respx_setup = bench_setup(quick)
    starts, bare_stop, live_stop, reset = bench_server(quick)
    over_pytest, over_nothing, importtime_us = bench_import(quick)

    start_ratio = statistics.median(starts)
    print("\nresults (ratios are medians of same-run rounds; baseline: a static respx route):")
    for name, values in ratios.items():
        ratio = statistics.median(values)
        target = 2.0 if "+" in name else 1.5
        print(f"  {name + ' / static':<42}{ratio:6.2f}x   target <= {target:g}x  {verdict(ratio, target)}")
    print(f"  kling_mock setup (build+patch)      {setup * 1e3:6.3f} ms  target <= 1 ms  {verdict(setup, 1e-3)}")
    print(f"    of which KlingMock() alone        {build * 1e3:6.3f} ms")
    print(f"    (respx.mock() start/stop, for reference: {respx_setup * 1e3:.3f} ms)")
    print(f"  live server start / bare uvicorn    {start_ratio:6.2f}x   target <= 1.5x  {verdict(start_ratio, 1.5)}")
    print(f"    stop: live {live_stop * 1e3:.1f} ms, bare uvicorn {bare_stop * 1e3:.1f} ms")
    print(f"  per-test reset (kling_server)       {reset * 1e3:6.3f} ms  target <= 1 ms  {verdict(reset, 1e-3)}")
    over = over_pytest * 1e3
    print(f"  plugin import over `import pytest`  {over:6.1f} ms  target <= 50 ms {verdict(over_pytest, 0.05)}")
    print(f"    over `python -c pass`: {over_nothing * 1e3:.1f} ms (pytest itself included); "
          f"-X importtime cumulative for kling_testkit.plugin: {importtime_us / 1e3:.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
