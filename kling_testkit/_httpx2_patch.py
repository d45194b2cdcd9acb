"""Patched mode for ``httpx2`` clients, without importing ``httpx2`` unless a client uses it.

While any :class:`~kling_testkit.KlingMock` patches, ``httpx2`` clients are routed through it
(:mod:`kling_testkit._httpx2`). When ``httpx2`` is already imported that happens at once;
otherwise a one-shot import hook applies the patch when ``httpx2`` is first imported while a
fake patches (an SDK imported inside the test). The kit itself never imports ``httpx2`` here.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kling_testkit._mock import KlingMock

__all__ = ["start", "stop"]

_LOCK = threading.RLock()
#: the patching fakes, oldest first (the newest is asked first)
_ACTIVE: list[KlingMock] = []


def _install() -> None:
    from kling_testkit import _httpx2

    _httpx2.install(_ACTIVE)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Apply the patch right after ``httpx2`` is imported (once; then it leaves sys.meta_path)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,  # noqa: ARG002 - MetaPathFinder protocol
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "httpx2":
            return None
        _remove_hook()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            with _LOCK:
                if _ACTIVE:
                    _install()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


_HOOK = _PatchOnImport()


def _remove_hook() -> None:
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def start(mock: KlingMock) -> None:
    """``mock`` patches httpx2 clients from now on."""
    with _LOCK:
        if mock in _ACTIVE:
            return
        _ACTIVE.append(mock)
        if "httpx2" in sys.modules:
            _install()
        elif _HOOK not in sys.meta_path:
            sys.meta_path.insert(0, _HOOK)


def stop(mock: KlingMock) -> None:
    """``mock`` no longer patches; the last one to stop restores httpx2."""
    with _LOCK:
        if mock in _ACTIVE:
            _ACTIVE.remove(mock)
        if _ACTIVE:
            return
        _remove_hook()
        if "httpx2" in sys.modules:
            from kling_testkit import _httpx2

            _httpx2.uninstall()
