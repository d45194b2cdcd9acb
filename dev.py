#!/usr/bin/env python3
"""Bootstrap for the README's commands; needs only python3.

    python3 dev.py serve [kling-testkit serve options]   # the fake on http://127.0.0.1:8000
    python3 dev.py test  [pytest options]                # ruff, mypy --strict, the suite, coverage floor
    python3 dev.py slow  [pytest options]                # the tests marked slow (CI runs them too)
    python3 dev.py lowest [pytest options]               # the suite on the lowest versions pyproject allows
    python3 dev.py bench [names] [--quick]               # benchmarks/, ratios against same-run baselines

Each creates or refreshes ``.venv`` first: it is rebuilt whenever ``pyproject.toml`` changes, so a
fresh clone and a stale checkout behave the same. ``test`` runs in random order (pytest-randomly
prints the seed; ``-p randomly --randomly-seed=N`` repeats an order) and enforces the coverage
floor of ``[tool.coverage.report]`` when run without options. ``lowest`` builds ``.venv-lowest``
with uv (installed there from PyPI) and ``--resolution lowest-direct``.
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
LOWEST = ROOT / ".venv-lowest"


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


def _lowest_python() -> Path:
    """``.venv-lowest``: the lowest direct dependency versions ``pyproject.toml`` allows."""
    python = LOWEST / BIN.name / "python"
    stamp = LOWEST / ".kling-testkit-stamp"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return python
    # Built afresh: installing over newer versions would keep what a raised bound no longer picks.
    print(f"dev.py: creating {LOWEST}", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(LOWEST)
    _run(python, "-m", "pip", "install", "--quiet", "uv")
    print("dev.py: installing kling-testkit[dev] at its lowest direct versions (uv)", flush=True)
    uv_install: list[str | Path] = [python, "-m", "uv", "pip", "install", "--quiet", "--python", python]
    _run(*uv_install, "--resolution", "lowest-direct", "-e", ".[dev]")
    stamp.write_text(wanted)
    return python


def _step(*step: str | Path) -> int:
    print("dev.py: $", " ".join(Path(str(step[0])).name if i == 0 else str(a) for i, a in enumerate(step)), flush=True)
    return subprocess.run([str(a) for a in step], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test", "slow", "lowest", "bench"}:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "serve":
        os.execv(BIN / "kling-testkit", [str(BIN / "kling-testkit"), "serve", *rest])
    if command == "bench":
        return subprocess.run([str(BIN / "python"), str(ROOT / "benchmarks" / "run.py"), *rest], cwd=ROOT).returncode
    if command == "slow":
        return _step(BIN / "python", "-m", "pytest", "-m", "slow", *rest)
    if command == "lowest":
        return _step(_lowest_python(), "-m", "pytest", *rest)
    steps: list[list[str | Path]] = [
        [BIN / "ruff", "check", "."],
        [BIN / "ruff", "format", "--check", "."],
        [BIN / "mypy"],
        [BIN / "python", "-m", "coverage", "run", "-m", "pytest", *rest],
        # The floor holds for the whole default run; options may select a part of it.
        [BIN / "python", "-m", "coverage", "report", *([] if not rest else ["--fail-under=0"])],
    ]
    return 1 if any(_step(*step) != 0 for step in steps) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
