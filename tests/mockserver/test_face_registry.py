"""The faces' order does not depend on which face module a program imports first: the first
face is the default one, and routes are tried in face order (Kling's ``/v1/videos/text2video``
must reach Kling's own API before the OpenAI route's ``/v1/videos/{id}`` can claim it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mockserver.faces import face_names

PROGRAM = """
import mockserver.faces.{first}
from mockserver import Engine, Service, VirtualClock
from mockserver.faces import face_names
face, _, _ = Service(Engine(clock=VirtualClock())).match("GET", "/v1/videos/text2video")
print(",".join(face_names()), face.name)
"""


@pytest.mark.parametrize("first", ["openai", "official", "gateway"])
def test_importing_one_face_first_changes_neither_the_default_face_nor_routing(first: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(first=first)], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [",".join(face_names()), "official"]
    assert face_names()[0] == "gateway"
