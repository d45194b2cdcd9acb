"""Run the benchmarks: ``python3 dev.py bench [NAME ...] [--quick] [OPTION ...]``.

Each ``benchmarks/bench_<name>.py`` is a standalone script that measures its own baseline in
the same run and prints ratios (these machines are shared and noisy, so absolute numbers mean
little). This runner executes them one after another, in fresh interpreters so one cannot warm
or pollute another, and passes everything from the first option on through to each script:
``--quick`` for a shorter smoke run, or a script's own options with their values
(``python3 dev.py bench server --rounds 7 --faces gateway,official``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    # Names come first; from the first option on, everything is the scripts' (an option's value
    # such as "gateway,official" is no benchmark name).
    first_option = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    names, flags = argv[:first_option], argv[first_option:]
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        wanted = {f"bench_{n.removeprefix('bench_').removesuffix('.py')}.py" for n in names}
        unknown = wanted - {s.name for s in scripts}
        if unknown:
            known = ", ".join(s.stem.removeprefix("bench_") for s in scripts)
            print(f"unknown benchmark(s) {sorted(unknown)}; known: {known}", file=sys.stderr)
            return 2
        scripts = [s for s in scripts if s.name in wanted]
    status = 0
    for script in scripts:
        print(f"\n=== {script.stem.removeprefix('bench_')} ===", flush=True)
        status |= subprocess.run([sys.executable, str(script), *flags], cwd=HERE.parent).returncode
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
