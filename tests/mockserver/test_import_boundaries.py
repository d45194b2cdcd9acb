"""The layers of ARCHITECTURE.md: mockserver stands alone and reads contracts only through its loader."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_FILES = sorted((ROOT / "mockserver").rglob("*.py"))
FORBIDDEN = {"pytest", "respx", "hypothesis", "kling_testkit", "_pytest"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    names |= {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    }
    return names


@pytest.mark.parametrize("path", SERVER_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_mockserver_does_not_import_test_tooling(path: Path) -> None:
    assert not _imports(path) & FORBIDDEN


@pytest.mark.parametrize("path", SERVER_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_contract_loader_opens_contract_files(path: Path) -> None:
    if path.parent.name == "contract":
        return
    text = path.read_text(encoding="utf-8")
    assert "contracts_root" not in text
    assert '.json"' not in text.replace('openapi.json"', "").replace('journal.jsonl"', "")


def test_importing_the_server_package_parses_no_contract_and_no_test_tooling() -> None:
    code = (
        "import sys, mockserver, mockserver.serve\n"
        "from mockserver.contract.loader import load_contract\n"
        "print(load_contract.cache_info().currsize)\n"
        "print(sorted(m for m in ('pytest', 'respx', 'hypothesis', 'kling_testkit') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split("\n")
    assert out[:2] == ["0", "[]"]
