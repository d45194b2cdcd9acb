"""Server throughput: the fake's create and poll against a bare Starlette JSON endpoint.

Both servers run under the same uvicorn settings (those of ``kling-testkit serve``: 1 worker,
uvloop + httptools when present, no access log, no Server header; the fake with its door's
protocol, which bounds request heads and sends each answer in one write where stock uvicorn sends
a head and a body) in their own processes pinned to one core, with ``wrk`` on the other core.
Every face's create and poll (gateway JSON, official JSON with a cached JWT, openai a multipart
form) is measured against the same bare endpoint, each fake run back to back with a bare run in
the same round (the bare one first in odd rounds, the fake one in even rounds), so machine noise
hits both alike; the report is the median ratio of requests per second, with the lowest and the
highest round beside it. Targets (DESIGN.md, issue 14): poll >= 0.80x, create >= 0.70x. Beside
it, the ratio of the two servers' CPU time per request (from /proc, same runs): on a shared
machine it moves less between runs than requests per second do.

    python3 dev.py bench server [--quick] [--rounds N] [--seconds S] [--faces gateway,official]

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

# Started as `kling-testkit serve` starts it: same engine settings, GC tuning and uvicorn
# protocol (``uvicorn_options``: the door's head bound and one write per answer); the bare
# endpoint runs stock uvicorn.
# Slots: a load test keeps far more tasks unfinished than an account may hold (5 by default);
# the slot check still runs on every official create.
FAKE_APP = """
from mockserver import Engine, Service, SystemClock, create_app
from mockserver.door import uvicorn_options
from mockserver.serve import tune_gc_for_server
service = Service(Engine(clock=SystemClock(), seed=1), slots=10**9)
app = create_app(service)
options = uvicorn_options(service)
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

OPENAI_CREATE = "/v1/videos"
#: what the OpenAI SDK's ``client.videos.create`` sends: a multipart form of text fields
OPENAI_FORM = {"model": "kling-v2-6", "prompt": "a red fox running through fresh snow at dawn", "seconds": "5"}
BOUNDARY = "kling-bench-boundary"


def form_body(fields: dict[str, str]) -> str:
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    return "".join(parts) + f"--{BOUNDARY}--\r\n"


@dataclass(frozen=True)
class Face:
    """One face's create and poll as wrk sends them, and where its answer keeps the task id."""

    name: str
    create_path: str
    body: str
    content_type: str
    auth: str
    task_id: Callable[[Any], str]


def faces() -> list[Face]:
    token = official_auth()
    return [
        Face(
            "gateway",
            "/v1/video/generations",
            json.dumps(CREATE_BODY),
            "application/json",
            AUTH,
            lambda a: a["task_id"],
        ),
        Face(
            "official",
            OFFICIAL_CREATE,
            json.dumps(OFFICIAL_BODY),
            "application/json",
            token,
            lambda a: a["data"]["task_id"],
        ),
        Face(
            "openai",
            OPENAI_CREATE,
            form_body(OPENAI_FORM),
            f"multipart/form-data; boundary={BOUNDARY}",
            AUTH,
            lambda a: a["id"],
        ),
    ]


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
# the settings `kling-testkit serve` runs with, for both servers; the fake's app file adds its
# protocol options
config = uvicorn.Config(
    app, log_level="warning", access_log=False, lifespan="off", server_header=False, **globals().get("options", {})
)
uvicorn.Server(config).run(sockets=[sock])
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


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process so far (None where there is no /proc)."""
    try:
        # after the ")" that ends the command name: utime and stime are the 12th and 13th fields
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(url: str, script: Path, seconds: float, core: int, pid: int) -> tuple[float, float | None]:
    """Requests per second, and the server's CPU µs per request over the run (None: unknown)."""
    command = ["wrk", "-t1", "-c32", f"-d{int(seconds)}s", "-s", str(script), url]
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(core), *command]
    before = _cpu_seconds(pid)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = _cpu_seconds(pid)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if not match or not count or "Non-2xx" in out:
        raise RuntimeError(f"wrk did not get clean 2xx answers from {url}:\n{out}")
    cpu = None if before is None or after is None else (after - before) / int(count.group(1)) * 1e6
    return float(match.group(1)), cpu


def _script(workdir: Path, name: str, face: Face | None, *, post: bool) -> Path:
    """The wrk script of one face's create (``post``) or poll; ``face`` None: the bare JSON POST."""
    path = workdir / f"{name}.lua"
    if face is None:
        body, content_type, auth = json.dumps(CREATE_BODY), "application/json", AUTH
    else:
        body, content_type, auth = face.body, face.content_type, face.auth
    lines = [f'wrk.headers["Authorization"] = "{auth}"']
    if post:
        lines += [
            'wrk.method = "POST"',
            f"wrk.body = {json.dumps(body)}",
            f'wrk.headers["Content-Type"] = "{content_type}"',
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s per run instead of 5 of 3 s")
    parser.add_argument("--rounds", type=int, help="rounds (each measures every pair once)")
    parser.add_argument("--seconds", type=float, help="seconds per wrk run")
    parser.add_argument("--faces", help="comma-separated faces to measure (default: every face)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_server needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    # Five shorter rounds rather than three long ones, same time in all: a median of five pairs
    # is moved less by one round that a neighbour disturbed (rounds moved a ratio by up to 0.3).
    rounds, seconds = (2, 2.0) if args.quick else (5, 3.0)
    rounds, seconds = args.rounds or rounds, args.seconds or seconds
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    server_core, client_core = cores[0], cores[-1]
    chosen = [f for f in faces() if args.faces is None or f.name in args.faces.split(",")]
    results: dict[str, dict[str, list[float]]] = {}
    for face in chosen:
        for op in ("create", "poll"):
            results[f"{face.name} {op}"] = {"bare": [], "fake": [], "cpu": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bare_post, bare_get = (
            _script(workdir, "bare_post", None, post=True),
            _script(workdir, "bare_get", None, post=False),
        )
        for round_no in range(rounds):
            # Both servers run at once on the same core, each loaded in turn: every fake run has
            # its baseline measured right beside it, under the same neighbours.
            bare, bare_base = _start(BARE_APP, workdir, server_core)
            fake, fake_base = _start(FAKE_APP, workdir, server_core)
            try:
                for face in chosen:
                    created = httpx.post(
                        fake_base + face.create_path,
                        content=face.body.encode(),
                        headers={"Authorization": face.auth, "Content-Type": face.content_type},
                    )
                    created.raise_for_status()
                    task_id = face.task_id(created.json())
                    post, get = (
                        _script(workdir, f"{face.name}_{op}", face, post=op == "post") for op in ("post", "get")
                    )
                    runs = (
                        ("create", bare_base + "/v1/video/generations", bare_post, fake_base + face.create_path, post),
                        (
                            "poll",
                            bare_base + "/v1/video/generations/x",
                            bare_get,
                            f"{fake_base}{face.create_path}/{task_id}",
                            get,
                        ),
                    )
                    for op, bare_url, bare_script, fake_url, fake_script in runs:
                        by = results[f"{face.name} {op}"]
                        # Which server goes first alternates by round (bare, fake; then fake, bare):
                        # a drift within a pair then favours neither.
                        if round_no % 2 == 0:
                            bare_rps, bare_cpu = _wrk(bare_url, bare_script, seconds, client_core, bare.pid)
                            fake_rps, fake_cpu = _wrk(fake_url, fake_script, seconds, client_core, fake.pid)
                        else:
                            fake_rps, fake_cpu = _wrk(fake_url, fake_script, seconds, client_core, fake.pid)
                            bare_rps, bare_cpu = _wrk(bare_url, bare_script, seconds, client_core, bare.pid)
                        by["bare"].append(bare_rps)
                        by["fake"].append(fake_rps)
                        if bare_cpu is not None and fake_cpu:
                            by["cpu"].append(bare_cpu / fake_cpu)
            finally:
                for proc in (bare, fake):
                    proc.terminate()
                    proc.wait(10)
            print(f"round {round_no + 1}/{rounds} done", file=sys.stderr, flush=True)
    targets = {"create": 0.70, "poll": 0.80}
    print(
        f"{'face operation':<18}{'bare req/s':>12}{'fake req/s':>12}{'ratio':>8}{'rounds':>13}{'target':>8}"
        f"{'cpu ratio':>11}"
    )
    for name, by in results.items():
        target = targets[name.split()[-1]]
        bare_rps, fake_rps = statistics.median(by["bare"]), statistics.median(by["fake"])
        per_round = [f / b for f, b in zip(by["fake"], by["bare"], strict=True)]
        ratio = statistics.median(per_round)
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}"
        verdict = "ok" if ratio >= target else "BELOW TARGET"
        cpu = f"{statistics.median(by['cpu']):>10.2f}x" if by["cpu"] else f"{'n/a':>11}"
        print(f"{name:<18}{bare_rps:>12.0f}{fake_rps:>12.0f}{ratio:>7.2f}x{spread:>13}{target:>7.2f}x{cpu} {verdict}")
    print(
        "(median of per-round fake/bare ratios, the lowest and highest beside it; the two runs of a pair back to\n"
        " back, bare first in odd rounds and fake first in even ones; one bare Starlette JSON\n"
        " endpoint is every face's baseline; same uvicorn settings, the fake with its door's protocol (head bound,\n"
        " one write per answer); wrk -t1 -c32; official: JWT verified, cached;\n"
        " openai create: a multipart form, as the OpenAI SDK sends it, against the bare JSON POST;\n"
        " cpu ratio: the bare server's CPU time per request over the fake's, from /proc, in the same runs: steadier\n"
        " than req/s where neighbours take the cores (the verdict is the req/s ratio))"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
