"""``kling-testkit serve`` in a subprocess, for tests that drive it as a real client would (on
pytest's ``pythonpath``)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import IO

__all__ = ["SERVE", "read_until_ready", "serve"]

#: the command the README gives, on a free port
SERVE = [sys.executable, "-m", "kling_testkit.cli", "serve", "--port", "0"]


def read_until_ready(stream: IO[str], lines: list[str]) -> None:
    """Collect a server's output lines up to its ``ready`` line (run it on a thread)."""
    for line in stream:
        lines.append(line.rstrip("\n"))
        if line.strip() == "ready":
            return


@contextlib.contextmanager
def serve(*extra: str) -> Iterator[tuple[str, list[str]]]:
    """Start ``serve`` with ``extra`` options; yield its base URL and what it printed up to
    ``ready``; stop it. A server that never says ready fails the test within 60 s instead of
    hanging CI."""
    process = subprocess.Popen([*SERVE, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=read_until_ready, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        reader.join(60)
        assert lines, "the server printed nothing"
        assert lines[-1] == "ready", lines
        found = re.search(r"at (https?://127\.0\.0\.1:\d+)", "\n".join(lines))
        assert found, lines
        yield found.group(1), lines
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()
