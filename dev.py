#!/usr/bin/env python3
"""Bootstrap for the README's commands; needs only python3.

    python3 dev.py serve [kling-testkit serve options]   # the fake on http://127.0.0.1:8000
    python3 dev.py test  [pytest options]                # ruff, mypy --strict, the suite, coverage floor
    python3 dev.py slow  [pytest options]                # the tests marked slow (CI runs them too)
    python3 dev.py lowest [pytest options]               # the suite on the lowest versions pyproject allows
    python3 dev.py bench [names] [--quick]               # benchmarks/, ratios against same-run baselines

Each but ``lowest`` creates or refreshes ``.venv`` first: it is rebuilt whenever ``pyproject.toml`` changes, so a
fresh clone and a stale checkout behave the same. ``serve`` installs only what the server needs
(the package without its test-kit dependencies, then the server's own: see SERVER_PACKAGES) and
runs ``python -m mockserver``; ``test`` and ``bench`` install everything (``.[dev]``). ``test``
runs in random order (pytest-randomly prints the seed; ``-p randomly --randomly-seed=N`` repeats
an order) and enforces the coverage floor of ``[tool.coverage.report]`` when run without options.
``lowest`` builds only ``.venv-lowest``, with uv (installed there from PyPI) and ``--resolution
lowest-direct``, so CI can run it beside ``test``.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".kling-testkit-stamp"
LOWEST = ROOT / ".venv-lowest"

#: The distributions ``python -m mockserver`` imports (tests/test_dev_script.py keeps this in step
#: with the package's imports); their versions come from pyproject.toml's dependencies.
SERVER_PACKAGES = (
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "jsonschema",
    "jsonschema-rs",
    "orjson",
    "pillow",
    "pyjwt",
    "trustme",
    "python-multipart",
)


def project_dependencies() -> list[str]:
    """``[project] dependencies`` of pyproject.toml (tomllib where it exists; 3.10 has none)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]  # 3.11+; mypy targets 3.10
    except ImportError:
        block = re.search(r"^dependencies = \[(.*?)^\]", text, re.M | re.S)
        assert block is not None, "pyproject.toml has no [project] dependencies list"
        return re.findall(r'^\s*"([^"]+)"', block.group(1), re.M)
    return list(tomllib.loads(text)["project"]["dependencies"])


def server_requirements() -> list[str]:
    """The dependencies of pyproject.toml that the server alone needs."""
    wanted = []
    for requirement in project_dependencies():
        name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()
        if name in SERVER_PACKAGES:
            wanted.append(requirement)
    return wanted


def _run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def ensure_venv(*, full: bool = True) -> None:
    """Install everything (``full``) or only what serving needs; a full install serves too."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = STAMP.read_text() if STAMP.exists() else ""
    if stamp == f"full:{digest}" or (not full and stamp == f"serve:{digest}"):
        return
    if not (BIN / "python").exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip: list[str | Path] = [BIN / "python", "-m", "pip", "install", "--quiet"]
    _run(*pip, "--upgrade", "pip")
    if full:
        print("dev.py: installing kling-testkit[dev] (editable)", flush=True)
        _run(*pip, "-e", ".[dev]")
    else:
        print("dev.py: installing the server only (kling-testkit without its test-kit dependencies)", flush=True)
        _run(*pip, "--no-deps", "-e", ".")
        _run(*pip, *server_requirements())
    STAMP.write_text(f"{'full' if full else 'serve'}:{digest}")


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
    command, rest = argv[0], argv[1:]
    if command == "lowest":
        # .venv-lowest only: CI runs this beside `test`, which builds .venv at the same time
        return _step(_lowest_python(), "-m", "pytest", *rest)
    ensure_venv(full=command != "serve")
    if command == "serve":
        # python -m mockserver: the same options as kling-testkit serve, without the test kit.
        os.execv(BIN / "python", [str(BIN / "python"), "-m", "mockserver", *rest])
    if command == "bench":
        return subprocess.run([str(BIN / "python"), str(ROOT / "benchmarks" / "run.py"), *rest], cwd=ROOT).returncode
    if command == "slow":
        return _step(BIN / "python", "-m", "pytest", "-m", "slow", *rest)
    steps: list[list[str | Path]] = [
        [BIN / "ruff", "check", "."],
        [BIN / "ruff", "format", "--check", "."],
        [BIN / "mypy"],
        # Subprocesses leave data files that the next run would combine: start from none.
        [BIN / "python", "-m", "coverage", "erase"],
        [BIN / "python", "-m", "coverage", "run", "-m", "pytest", *rest],
        # The floor holds for the whole default run; options may select a part of it.
        [BIN / "python", "-m", "coverage", "report", *([] if not rest else ["--fail-under=0"])],
    ]
    return 1 if any(_step(*step) != 0 for step in steps) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
