"""The public API of ``kling_testkit`` is what ``__all__`` says, and nothing slips in or out."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import kling_testkit

PUBLIC = {
    "__version__",
    # the fake in-process
    "DEFAULT",
    "KlingMock",
    "KlingRoute",
    "KlingTransport",
    "UnmatchedRequest",
    "VirtualTime",
    "httpx2_transport",
    "mock",
    "transport",
    # the values the controls take and return
    "FaultPlan",
    "JournalEntry",
    "Outcome",
    "OutcomeRule",
    "Progression",
    "TaskView",
    "VirtualClock",
    # the live server
    "AdminClient",
    "LiveServer",
    "ServerError",
    # journal assertions
    "ContractNotClean",
    "assert_contract_clean",
    "assert_retry_after_honoured",
    "contract_violations",
    "min_poll_interval",
    "polls",
    "polls_before_end",
    "retry_after_waits",
    "assert_tokens_renewed",
    "assert_within_concurrency_slots",
    "slot_refusals",
    "token_refusals",
    # contract checks, failures and recordings
    "CHECKS",
    "ContractViolation",
    "Exchange",
    "Report",
    "Severity",
    "assert_conforms",
    "check_exchanges",
    "read_recording",
    "write_journal",
    # stateful testing
    "TaskLifecycleMachine",
    # the error family
    "KlingTestkitError",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(kling_testkit.__all__) == PUBLIC
    assert len(kling_testkit.__all__) == len(PUBLIC), "a name is listed twice"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_resolves_and_is_in_dir(name: str) -> None:
    assert getattr(kling_testkit, name) is not None
    assert name in dir(kling_testkit)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'KlingMok'"):
        _ = kling_testkit.KlingMok


def test_the_package_imports_names_on_first_use() -> None:
    code = "import sys, kling_testkit; print('mockserver' in sys.modules, kling_testkit.mock().base_url)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "https://api.modelstream.ai"]


@pytest.mark.parametrize(
    "name", ["FaultPlan", "JournalEntry", "Outcome", "OutcomeRule", "Progression", "TaskView", "VirtualClock"]
)
def test_the_control_values_are_the_servers_own_classes(name: str) -> None:
    import mockserver

    assert getattr(kling_testkit, name) is getattr(mockserver, name)


@pytest.mark.parametrize("name", sorted(PUBLIC - {"__version__", "DEFAULT", "CHECKS"}))
def test_every_public_name_has_a_docstring(name: str) -> None:
    assert (getattr(kling_testkit, name).__doc__ or "").strip(), name


def _public_modules() -> list[str]:
    return sorted(
        f"kling_testkit.{m.name}" for m in pkgutil.iter_modules(kling_testkit.__path__) if not m.name.startswith("_")
    )


@pytest.mark.parametrize("module", _public_modules())
def test_every_public_exception_of_the_kit_is_a_kling_testkit_error(module: str) -> None:
    namespace = importlib.import_module(module)
    errors = [
        name
        for name in getattr(namespace, "__all__", ())
        if isinstance(getattr(namespace, name), type) and issubclass(getattr(namespace, name), BaseException)
    ]
    assert [n for n in errors if not issubclass(getattr(namespace, n), kling_testkit.KlingTestkitError)] == []


def test_the_error_family_is_the_documented_tree() -> None:
    import kling_testkit.errors as errors_module
    from kling_testkit.contract_tools import ContractLoadError
    from kling_testkit.recording import RecordingError

    family = {
        kling_testkit.ContractViolation: AssertionError,
        kling_testkit.ContractNotClean: AssertionError,
        kling_testkit.ServerError: RuntimeError,
        RecordingError: Exception,
        ContractLoadError: Exception,
    }
    for error, kind in family.items():
        assert issubclass(error, kling_testkit.KlingTestkitError), error
        assert issubclass(error, kind), error
        assert error.__name__ in (errors_module.__doc__ or ""), f"{error.__name__} is missing from the drawn tree"
