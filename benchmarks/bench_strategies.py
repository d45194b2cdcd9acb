"""Strategies: ``valid_requests()`` against hypothesis-jsonschema's ``from_schema``, same run.

    .venv/bin/python benchmarks/bench_strategies.py [--quick]      # or: python3 dev.py bench strategies

For each request kind, both generators get the same job: the derived JSON Schema of that kind
(``from_schema``) and ``valid_requests(kinds=...)`` (which reads the same schema plus the named
rules). Each is timed as a ``@given`` test with only the generate phase, so the figure is
examples per second as a test sees them. Every generated body is then sent to the fake
in-process (``Service.handle_simple``) and refusals are counted: ``from_schema`` cannot know
the cross-field and content rules, ``valid_requests()`` must have none.

hypothesis-jsonschema 0.23.1 breaks with Hypothesis >= 6.170.10, so it runs in its own
throwaway virtualenv (``benchmarks/.venv-hjs``, git-ignored, created on first use from PyPI)
with Hypothesis pinned below that; the two Hypothesis versions differ by a few patch releases.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import venv
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

from kling_testkit.strategies import valid_requests
from mockserver import Engine, Service, VirtualClock
from mockserver.contract import load_contract

HERE = Path(__file__).resolve().parent
HJS_VENV = HERE / ".venv-hjs"
HJS_PINS = ["hypothesis<6.170.10", "hypothesis-jsonschema==0.23.1"]
AUTH = (("authorization", "Bearer sk-test"),)

# Runs inside the pinned venv: time from_schema under the same harness, dump what it drew.
_WORKER = r"""
import json, sys, time
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis_jsonschema import from_schema
schema = json.load(open(sys.argv[1]))
count = int(sys.argv[2])
out = []
@settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(from_schema(schema))
def collect(body):
    out.append(body)
start = time.perf_counter()
collect()
elapsed = time.perf_counter() - start
json.dump({"elapsed": elapsed, "bodies": out}, open(sys.argv[3], "w"))
import hypothesis; print(hypothesis.__version__)
"""


def ensure_hjs_venv() -> Path:
    python = HJS_VENV / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    stamp = HJS_VENV / ".pins"
    if python.exists() and stamp.exists() and stamp.read_text() == "\n".join(HJS_PINS):
        return python
    print(f"creating {HJS_VENV} with {' '.join(HJS_PINS)} (once)", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(HJS_VENV)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *HJS_PINS], check=True)
    stamp.write_text("\n".join(HJS_PINS))
    return python


def time_valid_requests(kind: str, count: int) -> tuple[float, list[Any]]:
    out: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(valid_requests(kinds=kind))
    def collect(body: Any) -> None:
        out.append(body)

    start = time.perf_counter()
    collect()
    return time.perf_counter() - start, out


def time_from_schema(python: Path, schema: Any, count: int) -> tuple[float, list[Any], str]:
    with tempfile.TemporaryDirectory() as tmp:
        schema_path, out_path = Path(tmp) / "schema.json", Path(tmp) / "out.json"
        schema_path.write_text(json.dumps(schema))
        done = subprocess.run(
            [str(python), "-c", _WORKER, str(schema_path), str(count), str(out_path)],
            check=True,
            capture_output=True,
            text=True,
        )
        data = json.loads(out_path.read_text())
    return float(data["elapsed"]), list(data["bodies"]), done.stdout.strip()


def refusals(bodies: list[Any]) -> Counter[str]:
    """How the fake answers each body: Counter of refusal reasons (rule ids); empty = all 200."""
    service = Service(Engine(clock=VirtualClock()))
    found: Counter[str] = Counter()
    for body in bodies:
        try:
            answer = service.handle_simple("POST", "/v1/video/generations", json=body, headers=AUTH)
        except (TypeError, ValueError, UnicodeEncodeError):  # e.g. a lone surrogate: not sendable as UTF-8
            found["not encodable as UTF-8 JSON"] += 1
            continue
        if answer.status != 200:
            message = answer.payload["error"]["message"]
            rule = (
                message.rsplit("(rule ", 1)[-1].rstrip(")") if "(rule " in message else answer.payload["error"]["code"]
            )
            found[rule] += 1
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples (a smoke run)")
    parser.add_argument("--examples", type=int, default=None)
    args = parser.parse_args(argv)
    count = args.examples or (200 if args.quick else 1000)
    python = ensure_hjs_venv()
    model = load_contract().models["kling-v2-6"]
    print(f"{count} examples per generator and kind; generate phase only; refusals counted by the fake in-process\n")
    ratios = []
    for kind, schema in model.request_schemas.items():
        valid_rest = [time_valid_requests(kind, count) for _ in range(2)]  # 2nd run: warm caches
        ours_time, ours = min(valid_rest, key=lambda r: r[0])
        theirs_time, theirs, version = time_from_schema(python, schema, count)
        ours_rate, theirs_rate = len(ours) / ours_time, len(theirs) / theirs_time
        ratio = ours_rate / theirs_rate
        ratios.append(ratio)
        ours_refused, theirs_refused = refusals(ours), refusals(theirs)
        print(f"== {kind}")
        refused = sum(ours_refused.values())
        print(f"  valid_requests()           {ours_rate:6.0f} examples/s   refused by the fake: {refused}/{len(ours)}")
        print(
            f"  from_schema (hyp {version}) {theirs_rate:5.0f} examples/s   "
            f"refused by the fake: {sum(theirs_refused.values())}/{len(theirs)}"
        )
        for rule, n in theirs_refused.most_common(6):
            print(f"      {n:5d}  {rule}")
        print(f"  ratio valid_requests / from_schema: {ratio:.1f}x (target >= 3x)")
        if ours_refused:
            print(f"  !! valid_requests() bodies refused: {dict(ours_refused)}")
    print(f"\nworst ratio {min(ratios):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
