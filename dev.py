#!/usr/bin/env python3
"""Bootstrap for the two README commands; needs only python3.

    python3 dev.py serve [kling-testkit serve options]   # the fake on http://127.0.0.1:8000
    python3 dev.py test  [pytest options]                # ruff, mypy --strict, the test suite
    python3 dev.py bench [names] [--quick]               # benchmarks/, ratios against same-run baselines

Both create or refresh ``.venv`` first: it is rebuilt whenever ``pyproject.toml`` changes, so a
fresh clone and a stale checkout behave the same.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".kling-testkit-stamp"


def _run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing kling-testkit[dev] (editable)", flush=True)
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "bench"}:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "serve":
        os.execv(BIN / "kling-testkit", [str(BIN / "kling-testkit"), "serve", *rest])
    if command == "bench":
        return subprocess.run([str(BIN / "python"), str(ROOT / "benchmarks" / "run.py"), *rest], cwd=ROOT).returncode
    steps: list[list[str | Path]] = [
        [BIN / "ruff", "check", "."],
        [BIN / "ruff", "format", "--check", "."],
        [BIN / "mypy"],
        [BIN / "python", "-m", "pytest", *rest],
    ]
    for step in steps:
        print(
            "dev.py: $",
            " ".join(Path(str(step[0])).name if i == 0 else str(a) for i, a in enumerate(step)),
            flush=True,
        )
        if subprocess.run([str(a) for a in step], cwd=ROOT).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
