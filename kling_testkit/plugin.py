"""pytest plugin (entry point ``pytest11: kling``): the Kling fake as fixtures.

Installing ``kling-testkit`` is enough; pytest loads this module in every run, so it only
registers a marker, options and fixtures, and imports the fake inside the fixtures.

Fixtures (override any of them in a ``conftest.py``):

``kling_mock``
    A fresh in-process :class:`~kling_testkit.KlingMock` per test, patching httpx (respx) for
    code that builds its own client; inject ``kling_mock.transport()`` where you can. A request
    to a host the fake does not serve fails the test unless that host is passed through.
``kling_server_session`` / ``kling_server``
    A live uvicorn server on ``kling_server_address`` (``127.0.0.1``) and a free port, started
    once per session; ``kling_server`` resets it (and applies the test's marker) per test.
``kling_contract``
    The loaded contract (``mockserver.load_contract()``).
``kling_settings`` / ``kling_options``
    The session defaults (options and ini keys), and this test's options (defaults updated by
    the ``kling`` marker): what ``kling_mock`` and ``kling_server`` are built from.

Every setting has one name in three spellings: the marker option (``base_urls``), the command
line option (``--kling-base-urls``) and the ini key (``kling_base_urls``)::

    @pytest.mark.kling(progression="polls:3", outcome="failed:content_policy", strict=True,
                       keys=["sk-mine"], base_urls=["https://gw.example"], seed=7,
                       pass_through=["localhost"], virtual_time=True,
                       key_pairs={"ak-mine": "sk-mine-secret"}, slots=2)

Options and ini keys are checked when pytest starts: a bad value is one usage error, not an
error in every test. The spellings of 0.1 (``--kling-key``, ``--kling-base-url``,
``kling_base_url``) still work and warn.

>>> print(*sorted(MARKER_OPTIONS))
base_urls faces key_pairs keys outcome pass_through progression seed slots strict virtual_time
>>> [(s.option, s.ini) for s in SETTINGS if s.name == "base_urls"]
[('--kling-base-urls', 'kling_base_urls')]
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from kling_testkit._mock import KlingMock
    from kling_testkit.server import LiveServer
    from mockserver import Contract


@dataclass(frozen=True)
class Setting:
    """One setting of the fake under its three names (marker option, ``--kling-*``, ``kling_*``)."""

    name: str
    kind: str  # "text", "flag" or "list"
    help: str
    #: old command line spellings and ini keys, accepted with a deprecation warning
    old_options: tuple[str, ...] = ()
    old_ini: tuple[str, ...] = ()
    #: checks and converts a value given by option or ini key (imports only when used)
    check: Callable[[Any], Any] | None = field(default=None, compare=False)

    @property
    def option(self) -> str:
        return "--kling-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "kling_" + self.name


def _check_progression(value: str) -> Any:
    from mockserver import Progression

    return Progression.parse(value)


def _check_outcome(value: str) -> Any:
    from mockserver import Outcome

    return Outcome.parse(value)


def _check_seed(value: Any) -> int | None:
    if value is None or value == "random":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be an integer or 'random', got {value!r}") from None


def _check_base_urls(value: list[str]) -> list[str]:
    from kling_testkit._mock import _normalise_base

    for url in value:
        _normalise_base(url)
    return value


def _check_pass_through(value: list[str]) -> list[str]:
    from kling_testkit._mock import pass_through_hosts

    pass_through_hosts(value)
    return value


def _check_key_pairs(value: list[str]) -> dict[str, str]:
    from kling_testkit._mock import as_key_pairs

    return as_key_pairs(value) or {}


def _check_faces(value: list[str]) -> list[str]:
    from mockserver.faces import face_names

    unknown = [name for name in value if name not in face_names()]
    if unknown:
        raise ValueError(f"unknown face(s) {unknown}; known: {', '.join(face_names())}")
    return value


def _check_slots(value: str) -> int:
    if not str(value).isdigit() or int(value) < 1:
        raise ValueError(f"must be a whole number >= 1, got {value!r}")
    return int(value)


SETTINGS: tuple[Setting, ...] = (
    Setting("progression", "text", "how tasks move: polls:N, seconds:T, manual or immediate", check=_check_progression),
    Setting("outcome", "text", "how tasks end: succeeded, failed or failed:<reason>", check=_check_outcome),
    Setting("strict", "flag", "refuse unknown request fields (400) instead of dropping them"),
    Setting("keys", "list", "accepted API key (repeatable; '*' accepts any)", old_options=("--kling-key",)),
    Setting("base_urls", "list", "base URL the in-process fake serves (repeatable)", old_options=("--kling-base-url",),
            old_ini=("kling_base_url",), check=_check_base_urls),
    Setting("seed", "text", "seed for task ids; 'random' for a fresh one per fake (default 0)", check=_check_seed),
    Setting("pass_through", "list", "host (or host:port, URL, '*') that patched httpx may reach for real (repeatable)",
            check=_check_pass_through),
    Setting("virtual_time", "flag", "the client's time.sleep/asyncio.sleep advance the fake's clock; time.time and "
            "time.monotonic follow it"),
    Setting("key_pairs", "list", "ACCESS_KEY:SECRET_KEY whose HS256 JWTs Kling's own API face accepts (repeatable)",
            check=_check_key_pairs),
    Setting("faces", "list", "face the fake serves (repeatable; default: every face)", check=_check_faces),
    Setting("slots", "text", "unfinished tasks an account may hold on faces that limit them", check=_check_slots),
)  # fmt: skip

#: What ``@pytest.mark.kling(...)`` accepts (``KlingMock`` keyword arguments).
MARKER_OPTIONS = frozenset(s.name for s in SETTINGS)

_SETTINGS_KEY = pytest.StashKey[dict[str, Any]]()
_CALL_PASSED = pytest.StashKey[bool]()
_INI_TYPES = {"text": "string", "flag": "bool", "list": "linelist"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kling", "Kling fake (kling-testkit)")
    for setting in SETTINGS:
        keywords: dict[str, Any] = {"help": setting.help}
        if setting.kind == "flag":
            keywords.update(action="store_true", default=None)
        elif setting.kind == "list":
            keywords.update(action="append", metavar=setting.name.upper().rstrip("S"))
        group.addoption(setting.option, dest=setting.ini, **keywords)
        for old in setting.old_options:
            group.addoption(old, dest=_old_dest(old), action="append", help=f"old spelling of {setting.option}")
        parser.addini(setting.ini, f"default for {setting.option} ({setting.help})", type=_INI_TYPES[setting.kind])  # type: ignore[arg-type]
        for old in setting.old_ini:
            parser.addini(old, f"old spelling of {setting.ini}", type=_INI_TYPES[setting.kind])  # type: ignore[arg-type]


def _old_dest(option: str) -> str:
    return "kling_old_" + option.removeprefix("--kling-").replace("-", "_")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"kling({', '.join(s.name + '=' for s in SETTINGS)}): "
        "configure this test's Kling fake (kling_mock, kling_server)",
    )
    config.stash[_SETTINGS_KEY] = read_settings(config)


def read_settings(config: pytest.Config) -> dict[str, Any]:
    """The session's settings from ``--kling-*`` options and ``kling_*`` ini keys (options win),
    each checked: a bad value raises ``pytest.UsageError`` naming the option and ini key."""
    settings: dict[str, Any] = {}
    for setting in SETTINGS:
        value = config.getoption(setting.ini)
        for old in setting.old_options:
            if (old_value := config.getoption(_old_dest(old))) is not None:
                _warn_old(config, old, setting.option)
                value = [*(value or []), *old_value]
        if value is None or value == []:
            value = config.getini(setting.ini)
            for old in setting.old_ini:
                if not value and (old_value := config.getini(old)):
                    _warn_old(config, old, setting.ini)
                    value = old_value
        if setting.kind == "list":
            value = (
                [v for item in (value or []) for v in str(item).split()]
                if setting.name == "keys"
                else list(value or [])
            )
            if not value:
                continue
        elif setting.kind == "flag":
            settings[setting.name] = bool(value)
            continue
        elif not value:
            if setting.name == "seed":
                settings["seed"] = 0
            continue
        try:
            checked = setting.check(value) if setting.check is not None else value
        except ValueError as exc:
            raise pytest.UsageError(f"{setting.option} / {setting.ini}: {exc}") from None
        settings[setting.name] = checked if setting.name in ("seed", "key_pairs", "slots") else value
    return settings


def _warn_old(config: pytest.Config, old: str, new: str) -> None:
    config.issue_config_time_warning(
        DeprecationWarning(f"kling-testkit: {old} is the old spelling of {new}; it still works but will be removed"),
        stacklevel=2,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
    call: pytest.CallInfo[None],  # noqa: ARG001 (pytest passes hook arguments by name)
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # kling_mock's teardown fails a test that passed although the fake refused a request (a
    # client that swallows errors); a test that failed already says enough.
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    return report


@pytest.fixture(scope="session")
def kling_settings(pytestconfig: pytest.Config) -> dict[str, Any]:
    """The session's defaults for the fake, from ``--kling-*`` options and ``kling_*`` ini keys."""
    settings: dict[str, Any] = pytestconfig.stash[_SETTINGS_KEY]
    return dict(settings)


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
def kling_mock(request: pytest.FixtureRequest, kling_options: dict[str, Any]) -> Iterator[KlingMock]:
    """The fake in-process for one test, patching httpx on its base URLs while the test runs.

    A request to any other host fails (``UnmatchedRequest``) unless passed through; with
    ``virtual_time`` the test's sleeps and clock reads follow the fake's clock."""
    from kling_testkit._mock import KlingMock

    with KlingMock(**kling_options) as api:
        yield api
    if api.unmatched and request.node.stash.get(_CALL_PASSED, False):
        pytest.fail(
            f"the Kling fake refused {len(api.unmatched)} request(s) the test did not see fail: "
            f"{'; '.join(api.unmatched[:3])}. It serves {', '.join(api.base_urls)}; let other hosts through "
            "with @pytest.mark.kling(pass_through=[...]), --kling-pass-through or kling_pass_through",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def kling_server_address() -> str:
    """The address the live server binds (override to serve e.g. ``::1``)."""
    return "127.0.0.1"


_IN_PROCESS_ONLY = ("base_urls", "pass_through", "virtual_time")


@pytest.fixture(scope="session")
def kling_server_session(kling_server_address: str, kling_settings: dict[str, Any]) -> Iterator[LiveServer]:
    """The live server, started once per session (use ``kling_server`` in tests: it resets)."""
    from kling_testkit.server import LiveServer

    options = {k: v for k, v in kling_settings.items() if k not in _IN_PROCESS_ONLY}
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
    the server thread raised during the test fail it at teardown, and the admin client
    (``kling_server.admin()``) is closed. With ``virtual_time``, this process's sleeps and clock
    reads follow the server's clock during the test."""
    for name in ("seed", "faces"):
        if kling_options.get(name) != kling_settings.get(name):
            raise pytest.UsageError(
                f"the live server's {name} is per session: set it with --kling-{name} or the kling_{name} ini key, "
                f"not @pytest.mark.kling({name}=...)"
            )
    server = kling_server_session
    server.configure(
        progression=kling_options.get("progression"),
        outcome=kling_options.get("outcome"),
        strict=bool(kling_options.get("strict", False)),
        keys=kling_options.get("keys"),
        key_pairs=kling_options.get("key_pairs"),
        slots=kling_options.get("slots"),
    )
    server.reset()
    virtual = None
    if kling_options.get("virtual_time"):
        from kling_testkit._virtual_time import VirtualTime
        from mockserver import VirtualClock

        clock = server.clock
        if not isinstance(clock, VirtualClock):
            raise pytest.UsageError("virtual_time needs the live server on a VirtualClock (the default)")
        virtual = VirtualTime(clock).start()
    try:
        yield server
    finally:
        if virtual is not None:
            virtual.stop()
        server.close_admin()
    server.check()


@pytest.fixture(scope="session")
def kling_contract() -> Contract:
    """The fake's contract (``mockserver.load_contract()``): operations, errors, schemas, rules."""
    from mockserver import load_contract

    return load_contract()
