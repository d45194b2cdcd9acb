"""The public API of ``kling_testkit`` is what ``__all__`` says, and nothing slips in or out."""

from __future__ import annotations

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
    "mock",
    "transport",
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
