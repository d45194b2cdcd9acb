"""Another distribution's ``mockserver`` package (MockServer's Python client installs one) is
named as such before the kit imports it, instead of failing deep inside an import."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

from kling_testkit._conflict import MARKER, MockserverConflict, check_mockserver


def _init(tmp_path: Path, text: str | None) -> str:
    package = tmp_path / "mockserver"
    package.mkdir()
    init = package / "__init__.py"
    if text is None:
        init.mkdir()  # unreadable as a file, as a zip import's member would be
    else:
        init.write_text(text, encoding="utf-8")
    return str(init)


@pytest.mark.parametrize(
    ("text", "raises"),
    [
        pytest.param(f'"""kling-testkit"""\n{MARKER}\n', None, id="the-kits-own"),
        pytest.param("from mockserver.client import *\n", "is not kling-testkit's", id="mockserver-client"),
        pytest.param(None, None, id="unreadable-left-to-the-import"),
    ],
)
def test_the_installed_mockserver_is_told_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | None, raises: str | None
) -> None:
    origin = _init(tmp_path, text)
    spec = importlib.machinery.ModuleSpec("mockserver", None, origin=origin)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    if raises is None:
        check_mockserver()
    else:
        with pytest.raises(MockserverConflict, match=raises) as caught:
            check_mockserver()
        assert "pip uninstall -y" in str(caught.value)


@pytest.mark.parametrize("origin", [None, "/somewhere/mockserver.so"])
def test_a_missing_or_foreign_module_asks_for_a_reinstall(monkeypatch: pytest.MonkeyPatch, origin: str | None) -> None:
    found = None if origin is None else importlib.machinery.ModuleSpec("mockserver", None, origin=origin)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: found)
    with pytest.raises(MockserverConflict, match="reinstall kling-testkit"):
        check_mockserver()
