"""The wheel carries the contracts and the MP4 assets, and works outside the repository."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def wheel_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh environment with only the built wheel installed: (its python, its site-packages)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
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
    return env / ("Scripts" if sys.platform == "win32" else "bin") / "python", target


def test_a_built_wheel_installed_in_a_fresh_environment_finds_its_contracts(
    wheel_python: tuple[Path, Path], tmp_path: Path
) -> None:
    python, target = wheel_python
    result = subprocess.run([str(python), "-I", "-c", CHECK], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout.strip().splitlines()[-1]
    assert str(target) in out
    assert '"status": "completed"' in out
    assert '"mp4": "ftyp"' in out


def test_a_downstream_project_runs_the_readmes_tests_as_written_from_the_wheel(
    wheel_python: tuple[Path, Path], tmp_path: Path
) -> None:
    import doc_examples
    import doc_placeholders

    python, _ = wheel_python
    readme = doc_examples.SYBIL.parse(ROOT / "README.md")
    (block,) = [
        str(e.parsed)
        for e in readme.examples()
        if e.region.evaluator is doc_examples.run_python
        and "def test_" in str(e.parsed)
        and "kling_mock" in str(e.parsed)
    ]
    (tmp_path / "doc_placeholders.py").write_text(Path(doc_placeholders.__file__).read_text(encoding="utf-8"))
    (tmp_path / "test_from_readme.py").write_text("from doc_placeholders import my_sdk\n" + block, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n", encoding="utf-8")
    result = subprocess.run(
        [str(python), "-I", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:randomly"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_python_m_build_makes_an_sdist_and_a_wheel_with_complete_metadata(tmp_path: Path) -> None:
    import email
    import tarfile
    import zipfile

    import kling_testkit

    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in (result.stdout + result.stderr).lower()
    version = kling_testkit.__version__
    wheel = zipfile.ZipFile(tmp_path / f"kling_testkit-{version}-py3-none-any.whl")
    names = set(wheel.namelist())
    metadata = email.message_from_bytes(wheel.read(f"kling_testkit-{version}.dist-info/METADATA"))
    assert (metadata["Name"], metadata["Version"]) == ("kling-testkit", version)
    assert (metadata["License-Expression"], metadata["License-File"]) == ("MIT", "LICENSE")
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "Framework :: Pytest" in (metadata.get_all("Classifier") or [])
    requires = metadata.get_all("Requires-Dist") or []
    required = {r.split(";")[0].split("<")[0].split(">")[0].split("[")[0] for r in requires}
    assert {"httpx", "respx", "pytest", "hypothesis", "time-machine", "starlette", "uvicorn"} <= required
    entry_points = wheel.read(f"kling_testkit-{version}.dist-info/entry_points.txt").decode()
    assert "kling = kling_testkit.plugin" in entry_points
    assert "kling-testkit = kling_testkit.cli:main" in entry_points
    assert {
        "kling_testkit/py.typed",
        "mockserver/py.typed",
        f"kling_testkit-{version}.dist-info/licenses/LICENSE",
    } <= names
    assert "mockserver/_contracts/gateway/index.json" in names
    assert "mockserver/assets/videos/1280x720_5s_audio.mp4" in names
    assert not any(name.startswith(("tests/", "docs/")) for name in names)
    with tarfile.open(tmp_path / f"kling_testkit-{version}.tar.gz") as sdist:
        members = {name.partition("/")[2] for name in sdist.getnames()}
    assert {"LICENSE", "README.md", "dev.py", "docs/pytest-plugin.md", "contracts/gateway/index.json"} <= members


def test_another_distributions_mockserver_module_is_named_with_the_fix(tmp_path: Path) -> None:
    # What mockserver-client leaves behind when it is installed after kling-testkit.
    (tmp_path / "mockserver").mkdir()
    (tmp_path / "mockserver" / "__init__.py").write_text('"""MockServer Python client."""\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", "import kling_testkit"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # the current folder comes first on sys.path, as site-packages would
        check=False,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kling_testkit._conflict.MockserverConflict: the 'mockserver' package at ")
    assert "most likely mockserver-client" in last
    assert "pip uninstall -y mockserver-client kling-testkit" in last
