"""The wheel carries the contracts and the MP4 assets, and works outside the repository."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import json, pathlib, mockserver
from mockserver.contract import contracts_root, load_contract
from mockserver import Service
root = contracts_root()
assert pathlib.Path(mockserver.__file__).parent in root.parents, (mockserver.__file__, root)
service = Service()
body = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "x", "duration": 5}]}
auth = [("authorization", "Bearer sk-test")]
task = service.handle_simple("POST", "/v1/video/generations", body, auth).payload["task_id"]
for _ in range(2):
    done = service.handle_simple("GET", "/v1/video/generations/" + task, None, auth).payload
media = service.handle_simple("GET", done["url"].removeprefix("http://127.0.0.1"))
print(json.dumps({"root": str(root), "status": done["status"], "mp4": media.body[4:8].decode()}))
"""


def test_a_built_wheel_installed_in_a_fresh_environment_finds_its_contracts(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("kling_testkit-*.whl"))
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    target = Path(sysconfig.get_paths(vars={"base": str(env), "platbase": str(env)})["purelib"])
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    # The fresh environment gets the wheel; its dependencies come from this environment's
    # site-packages, appended after it, never the repository (cwd is elsewhere, no .pth of ours).
    deps = sysconfig.get_paths()["purelib"]
    (target / "zz_deps.pth").write_text(deps + "\n", encoding="utf-8")
    python = env / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    result = subprocess.run([str(python), "-I", "-c", CHECK], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip().splitlines()[-1]
    assert str(target) in out
    assert '"status": "completed"' in out
    assert '"mp4": "ftyp"' in out
