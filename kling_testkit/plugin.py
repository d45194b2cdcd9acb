"""pytest plugin (entry point ``pytest11: kling``): the Kling fake as fixtures.

Installing ``kling-testkit`` is enough; pytest loads this module in every run, so it only
registers a marker, options and fixtures, and imports the fake inside the fixtures.

Fixtures (override any of them in a ``conftest.py``):

``kling_mock``
    A fresh in-process :class:`~kling_testkit.KlingMock` per test, patching httpx (respx) for
    code that builds its own client; inject ``kling_mock.transport()`` where you can.
``kling_server_session`` / ``kling_server``
    A live uvicorn server on ``kling_server_address`` (``127.0.0.1``) and a free port, started
    once per session; ``kling_server`` resets it (and applies the test's marker) per test.
``kling_contract``
    The loaded contract (``mockserver.load_contract()``).
``kling_settings`` / ``kling_options``
    The session defaults (options and ini keys), and this test's options (defaults updated by
    the ``kling`` marker): what ``kling_mock`` and ``kling_server`` are built from.

Marker: ``@pytest.mark.kling(progression="polls:3", outcome="failed:content_policy",
strict=True, keys=["sk-mine"], base_urls=["https://gw.example"], seed=7)``.

Options / ini keys (``--kling-progression`` / ``kling_progression`` ...): progression, outcome,
strict, base URLs, keys and seed defaults.

>>> sorted(MARKER_OPTIONS)
['base_urls', 'keys', 'outcome', 'progression', 'seed', 'strict']
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kling_testkit._mock import KlingMock
    from kling_testkit.server import LiveServer
    from mockserver import Contract

#: What ``@pytest.mark.kling(...)`` accepts (``KlingMock`` keyword arguments).
MARKER_OPTIONS = frozenset({"progression", "outcome", "strict", "keys", "base_urls", "seed"})

_OPTIONS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    # (option, ini key, ini type, argparse keywords)
    ("--kling-progression", "kling_progression", "string", {"help": "polls:N, seconds:T, manual or immediate"}),
    ("--kling-outcome", "kling_outcome", "string", {"help": "succeeded, failed or failed:<reason>"}),
    ("--kling-strict", "kling_strict", "bool", {"action": "store_true", "default": None,
                                               "help": "refuse unknown request fields (400)"}),
    ("--kling-base-url", "kling_base_url", "linelist", {"action": "append",
                                                       "help": "base URL the in-process fake serves (repeatable)"}),
    ("--kling-key", "kling_keys", "args", {"action": "append", "help": "accepted API key (repeatable; '*' = any)"}),
    ("--kling-seed", "kling_seed", "string", {"help": "seed for task ids; 'random' for a fresh one per fake"}),
)  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kling", "Kling fake (kling-testkit)")
    for option, ini, kind, keywords in _OPTIONS:
        group.addoption(option, dest=ini, **keywords)
        parser.addini(ini, f"default for {option} ({keywords['help']})", type=kind)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kling(progression=, outcome=, strict=, keys=, base_urls=, seed=): configure this test's Kling fake "
        "(kling_mock, kling_server)",
    )


def _setting(config: pytest.Config, ini: str) -> Any:
    value = config.getoption(ini)
    return value if value is not None else config.getini(ini)


@pytest.fixture(scope="session")
def kling_settings(pytestconfig: pytest.Config) -> dict[str, Any]:
    """The session's defaults for the fake, from ``--kling-*`` options and ``kling_*`` ini keys."""
    settings: dict[str, Any] = {}
    if progression := _setting(pytestconfig, "kling_progression"):
        settings["progression"] = progression
    if outcome := _setting(pytestconfig, "kling_outcome"):
        settings["outcome"] = outcome
    settings["strict"] = bool(_setting(pytestconfig, "kling_strict"))
    if base_urls := _setting(pytestconfig, "kling_base_url"):
        settings["base_urls"] = list(base_urls)
    if keys := _setting(pytestconfig, "kling_keys"):
        settings["keys"] = list(keys)
    seed = _setting(pytestconfig, "kling_seed") or "0"
    if seed == "random":
        settings["seed"] = None
    else:
        try:
            settings["seed"] = int(seed)
        except ValueError:
            raise pytest.UsageError(f"--kling-seed / kling_seed must be an integer or 'random', got {seed!r}") from None
    return settings


@pytest.fixture
def kling_options(request: pytest.FixtureRequest, kling_settings: dict[str, Any]) -> dict[str, Any]:
    """This test's options: ``kling_settings`` updated by the ``kling`` marker (closest first)."""
    options = dict(kling_settings)
    for marker in reversed(list(request.node.iter_markers("kling"))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.kling takes keyword arguments only ({sorted(MARKER_OPTIONS)})")
        unknown = set(marker.kwargs) - MARKER_OPTIONS
        if unknown:
            raise pytest.UsageError(
                f"@pytest.mark.kling got unknown option(s) {sorted(unknown)}; known: {sorted(MARKER_OPTIONS)}"
            )
        options.update(marker.kwargs)
    return options


@pytest.fixture
def kling_mock(kling_options: dict[str, Any]) -> Iterator[KlingMock]:
    """The fake in-process for one test, patching httpx on its base URLs while the test runs."""
    from kling_testkit._mock import KlingMock

    with KlingMock(**kling_options) as api:
        yield api


@pytest.fixture(scope="session")
def kling_server_address() -> str:
    """The address the live server binds (override to serve e.g. ``::1``)."""
    return "127.0.0.1"


@pytest.fixture(scope="session")
def kling_server_session(kling_server_address: str, kling_settings: dict[str, Any]) -> Iterator[LiveServer]:
    """The live server, started once per session (use ``kling_server`` in tests: it resets)."""
    from kling_testkit.server import LiveServer

    options = {k: v for k, v in kling_settings.items() if k != "base_urls"}
    server = LiveServer(host=kling_server_address, **options).start()
    try:
        yield server
    finally:
        server.stop()
    server.check()


@pytest.fixture
def kling_server(
    kling_server_session: LiveServer, kling_options: dict[str, Any], kling_settings: dict[str, Any]
) -> Iterator[LiveServer]:
    """The session's live server, reset and configured for this test (marker included); errors
    the server thread raised during the test fail it at teardown."""
    if kling_options.get("seed") != kling_settings.get("seed"):
        raise pytest.UsageError(
            "the live server's seed is per session: set it with --kling-seed or the kling_seed ini key, "
            "not @pytest.mark.kling(seed=...)"
        )
    server = kling_server_session
    server.configure(
        progression=kling_options.get("progression"),
        outcome=kling_options.get("outcome"),
        strict=bool(kling_options.get("strict", False)),
        keys=kling_options.get("keys"),
    )
    server.reset()
    yield server
    server.check()


@pytest.fixture(scope="session")
def kling_contract() -> Contract:
    """The fake's contract (``mockserver.load_contract()``): operations, errors, schemas, rules."""
    from mockserver import load_contract

    return load_contract()
