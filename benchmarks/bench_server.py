"""Server throughput: the fake's create and poll against a bare Starlette JSON endpoint.

Both servers run under the same uvicorn settings (1 worker, uvloop + httptools when present,
no access log) in their own processes pinned to one core, with ``wrk`` on the other core.
Rounds alternate baseline and fake so machine noise hits both alike; the report is the median
ratio of requests per second. Targets (DESIGN.md): poll >= 0.80x, create >= 0.70x.

    python3 dev.py bench server [--quick]

Needs ``wrk`` (Debian: ``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from payloads import FULL_CREATE

CREATE_BODY = {**FULL_CREATE, "watermark_enabled": False}
AUTH = "Bearer sk-test"

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

TASK = {"id": "task_" + "a" * 32, "task_id": "task_" + "a" * 32, "object": "video", "model": "kling-v2-6",
        "status": "queued", "progress": 0, "created_at": 1767225600}

async def create(request):
    await request.json()
    return JSONResponse(TASK)

async def get(request):
    return JSONResponse(TASK)

app = Starlette(routes=[Route("/v1/video/generations", create, methods=["POST"]),
                        Route("/v1/video/generations/{task_id}", get)])
"""

# Started as `kling-testkit serve` starts it (same engine settings and GC tuning).
# Slots: a load test keeps far more tasks unfinished than an account may hold (5 by default);
# the slot check still runs on every official create.
FAKE_APP = """
from mockserver import Engine, Service, SystemClock, create_app
from mockserver.serve import tune_gc_for_server
app = create_app(Service(Engine(clock=SystemClock(), seed=1), slots=10**9))
tune_gc_for_server()
"""

OFFICIAL_CREATE = "/v1/videos/text2video"
OFFICIAL_BODY = {
    "model_name": "kling-v2-6",
    "prompt": "a red fox running through fresh snow at dawn",
    "negative_prompt": "blur, low quality",
    "mode": "pro",
    "sound": "on",
    "duration": "5",
    "aspect_ratio": "16:9",
    "external_task_id": "",
}


def official_auth() -> str:
    """One JWT for the whole run (clients that sign once per session; the fake caches it)."""
    import jwt

    from mockserver import load_contract

    pair = load_contract("official").index["auth"]["default_keys"][0]
    now = int(time.time())
    return "Bearer " + jwt.encode({"iss": pair["access_key"], "exp": now + 3600, "nbf": now - 5}, pair["secret_key"])


SERVER = """
import os, sys, uvicorn
sys.path.insert(0, os.getcwd())
from mockserver.serve import bind
exec(open(sys.argv[1]).read())
sock = bind("127.0.0.1", 0)
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")).run(sockets=[sock])
"""


def _start(app_code: str, workdir: Path, core: int) -> tuple[subprocess.Popen[str], str]:
    app_file = workdir / f"app_{abs(hash(app_code))}.py"
    app_file.write_text(app_code)
    server_file = workdir / "server.py"
    server_file.write_text(SERVER)
    proc = subprocess.Popen(
        [sys.executable, str(server_file), str(app_file)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        preexec_fn=(lambda: os.sched_setaffinity(0, {core})) if hasattr(os, "sched_setaffinity") else None,
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base + "/v1/video/generations/x", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return proc, base


def _wrk(url: str, script: Path, seconds: float, core: int) -> float:
    command = ["wrk", "-t1", "-c32", f"-d{int(seconds)}s", "-s", str(script), url]
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(core), *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match or "Non-2xx" in out:
        raise RuntimeError(f"wrk did not get clean 2xx answers from {url}:\n{out}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s instead of 5 rounds of 5 s")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_server needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    rounds, seconds = (2, 2.0) if args.quick else (5, 5.0)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    server_core, client_core = cores[0], cores[-1]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        post = workdir / "post.lua"
        post.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(json.dumps(CREATE_BODY))}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "{AUTH}"\n'
        )
        get = workdir / "get.lua"
        get.write_text(f'wrk.headers["Authorization"] = "{AUTH}"\n')
        token = official_auth()
        official_post = workdir / "official_post.lua"
        official_post.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(json.dumps(OFFICIAL_BODY))}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "{token}"\n'
        )
        official_get = workdir / "official_get.lua"
        official_get.write_text(f'wrk.headers["Authorization"] = "{token}"\n')
        operations = ("create", "poll", "official create", "official poll")
        results: dict[str, dict[str, list[float]]] = {op: {"bare": [], "fake": []} for op in operations}
        for round_no in range(rounds):
            for name, code in (("bare", BARE_APP), ("fake", FAKE_APP)):
                proc, base = _start(code, workdir, server_core)
                try:
                    headers = {"Authorization": AUTH}
                    created = httpx.post(base + "/v1/video/generations", json=CREATE_BODY, headers=headers)
                    task_id = created.json()["task_id"]
                    results["create"][name].append(_wrk(base + "/v1/video/generations", post, seconds, client_core))
                    results["poll"][name].append(
                        _wrk(f"{base}/v1/video/generations/{task_id}", get, seconds, client_core)
                    )
                    if name == "bare":  # the same bare endpoints are the official face's baseline
                        results["official create"][name].append(results["create"][name][-1])
                        results["official poll"][name].append(results["poll"][name][-1])
                        continue
                    created = httpx.post(
                        base + OFFICIAL_CREATE, json=OFFICIAL_BODY, headers={"Authorization": token}
                    ).json()
                    official_id = created["data"]["task_id"]
                    results["official create"][name].append(
                        _wrk(base + OFFICIAL_CREATE, official_post, seconds, client_core)
                    )
                    results["official poll"][name].append(
                        _wrk(f"{base}{OFFICIAL_CREATE}/{official_id}", official_get, seconds, client_core)
                    )
                finally:
                    proc.terminate()
                    proc.wait(10)
            print(f"round {round_no + 1}/{rounds} done", file=sys.stderr, flush=True)
    targets = {"create": 0.70, "poll": 0.80, "official create": 0.70, "official poll": 0.80}
    print(f"{'operation':<16}{'bare req/s':>12}{'fake req/s':>12}{'ratio':>8}{'target':>8}")
    for op, by in results.items():
        bare, fake = statistics.median(by["bare"]), statistics.median(by["fake"])
        ratios = [f / b for f, b in zip(by["fake"], by["bare"], strict=True)]
        ratio = statistics.median(ratios)
        ok = ratio >= targets[op]
        print(f"{op:<16}{bare:>12.0f}{fake:>12.0f}{ratio:>7.2f}x{targets[op]:>7.2f}x {'ok' if ok else 'BELOW TARGET'}")
    print("(median of per-round fake/bare ratios; same uvicorn settings; wrk -t1 -c32; official: JWT verified, cached)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
