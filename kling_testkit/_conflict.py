"""Detect another distribution's ``mockserver`` module before the kit imports it.

``mockserver-client`` (MockServer's Python client) installs a top-level ``mockserver`` package,
as kling-testkit does. Installed together, whichever came last overwrote the other's
``mockserver/__init__.py``; if it was the client, ``from mockserver import Engine`` fails deep
inside the kit with an error that names neither distribution. The check reads that one file (it
does not import the package, which the plugin's import-time budget forbids) and replaces the
obscure failure with one that says what happened and what to do.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["MockserverConflict", "check_mockserver"]

MARKER = "KLING_TESTKIT_MOCKSERVER = True"


class MockserverConflict(ImportError):
    """The importable ``mockserver`` package is not kling-testkit's."""


def check_mockserver() -> None:
    """Raise :class:`MockserverConflict` if ``import mockserver`` would not load kling-testkit's server.

    >>> check_mockserver()  # this environment has kling-testkit's
    """
    spec = importlib.util.find_spec("mockserver")
    origin = spec.origin if spec is not None else None
    if origin is None or not origin.endswith("__init__.py"):
        raise MockserverConflict(
            "kling-testkit cannot find its 'mockserver' package: reinstall kling-testkit "
            "(pip install --force-reinstall --no-deps <the same source>)"
        )
    try:
        head = Path(origin).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return  # unreadable (a zip import, say): let the import itself decide
    if MARKER not in head:
        raise MockserverConflict(
            f"the 'mockserver' package at {Path(origin).parent} is not kling-testkit's: another distribution "
            "installed a top-level 'mockserver' module over it, most likely mockserver-client (MockServer's "
            "Python client). The two cannot be installed in one environment. Fix: pip uninstall -y "
            "mockserver-client kling-testkit, then install kling-testkit again; keep mockserver-client in "
            "another virtualenv."
        )
