"""dev.py: ``serve`` installs only what the server imports; ``test`` installs everything."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: import name -> distribution, for the third-party modules the server imports
DISTRIBUTIONS = {
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "jsonschema": "jsonschema",
    "jsonschema_rs": "jsonschema-rs",
    "referencing": "jsonschema",  # installed with jsonschema
    "orjson": "orjson",
    "PIL": "pillow",
    "jwt": "pyjwt",  # the official face's HS256 tokens
    "trustme": "trustme",  # serve --tls
    "python_multipart": "python-multipart",  # the openai face's multipart/form-data bodies
}


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _third_party_imports() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "mockserver").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names and name != "mockserver"}


def test_serve_installs_every_distribution_the_server_imports_and_no_test_tooling() -> None:
    dev = _dev()
    names = {r.split(";")[0].split(">")[0].split("<")[0].split("=")[0].strip() for r in dev.server_requirements()}
    assert set(DISTRIBUTIONS) == _third_party_imports()
    assert set(DISTRIBUTIONS.values()) <= names
    assert not names & {"pytest", "hypothesis", "respx", "httpx", "time-machine", "mypy", "ruff", "schemathesis"}
    # the versions are pyproject's own, not a second list
    assert set(dev.server_requirements()) <= set(dev.project_dependencies())


def test_the_dependency_list_reads_the_same_without_tomllib(monkeypatch: pytest.MonkeyPatch) -> None:
    dev = _dev()
    with_tomllib = dev.project_dependencies()
    monkeypatch.setitem(sys.modules, "tomllib", None)  # Python 3.10 has no tomllib
    assert dev.project_dependencies() == with_tomllib
    assert len(with_tomllib) > 5


def test_a_full_install_serves_too_but_a_server_install_does_not_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = _dev()
    runs: list[tuple[str, ...]] = []
    monkeypatch.setattr(dev, "STAMP", tmp_path / "stamp")
    monkeypatch.setattr(dev, "BIN", tmp_path)  # BIN/python "exists": no venv is created
    (tmp_path / "python").write_text("")
    monkeypatch.setattr(dev, "_run", lambda *args: runs.append(tuple(str(a) for a in args)))
    dev.ensure_venv(full=False)
    assert any("--no-deps" in run for run in runs)
    assert not any(".[dev]" in run for run in runs)
    runs.clear()
    dev.ensure_venv(full=False)
    assert runs == []  # up to date for serving
    dev.ensure_venv(full=True)
    assert any(".[dev]" in run for run in runs)
    runs.clear()
    dev.ensure_venv(full=False)
    dev.ensure_venv(full=True)
    assert runs == []  # a full install is enough for both
