"""kling-testkit: test code that uses the Kling v2.6 video API, without the real service.

The server itself lives in :mod:`mockserver`; this package adds what tests need around it:
the fake in-process (:func:`mock`, :func:`transport`), as a live server (:class:`LiveServer`),
journal assertions, contract checks and recordings, Hypothesis strategies
(:mod:`kling_testkit.strategies`) and a lifecycle state machine. The pytest plugin
(:mod:`kling_testkit.plugin`) wraps them in fixtures.

>>> import kling_testkit
>>> with kling_testkit.mock() as api:
...     api.base_url
'https://api.modelstream.ai'

The values the controls take are here too, so a test needs one import:

>>> from kling_testkit import Outcome, Progression
>>> api = kling_testkit.mock(progression=Progression.after_polls(3))
>>> api.set_outcome(Outcome.fail("content_policy"))

Names are imported on first use (PEP 562): pytest imports this package for the plugin in every
run of a project that installs it, and the fake's dependencies would make that import cost
tens of milliseconds for runs that never touch the fake.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kling_testkit._conflict import check_mockserver

__version__ = "0.1.0"

# Another distribution's ``mockserver`` (mockserver-client) would make every later import fail
# obscurely; say so here, at the one import every use of the kit (and the plugin) goes through.
check_mockserver()

__all__ = [
    "__version__",
    # the fake in-process (respx; sync and async httpx)
    "DEFAULT",
    "KlingMock",
    "KlingRoute",
    "KlingTransport",
    "UnmatchedRequest",
    "VirtualTime",
    "httpx2_transport",
    "mock",
    "transport",
    # the values the controls take and return (also in mockserver, re-exported for tests)
    "FaultPlan",
    "JournalEntry",
    "Outcome",
    "OutcomeRule",
    "Progression",
    "TaskView",
    "VirtualClock",
    # the fake as a live server (any client)
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
    # a state machine users subclass to drive their own client (strategies live in
    # kling_testkit.strategies, as Hypothesis keeps its own in hypothesis.strategies)
    "TaskLifecycleMachine",
    # the base of every error above (and of RecordingError, ContractLoadError)
    "KlingTestkitError",
]

_LOCATIONS = {
    "DEFAULT": "kling_testkit._mock",
    "KlingMock": "kling_testkit._mock",
    "KlingRoute": "kling_testkit._mock",
    "UnmatchedRequest": "kling_testkit._mock",
    "mock": "kling_testkit._mock",
    "VirtualTime": "kling_testkit._virtual_time",
    "FaultPlan": "mockserver",
    "JournalEntry": "mockserver",
    "Outcome": "mockserver",
    "OutcomeRule": "mockserver",
    "Progression": "mockserver",
    "TaskView": "mockserver",
    "VirtualClock": "mockserver",
    "KlingTransport": "kling_testkit.transports",
    "transport": "kling_testkit.transports",
    "httpx2_transport": "kling_testkit.transports",
    "AdminClient": "kling_testkit.server",
    "LiveServer": "kling_testkit.server",
    "ServerError": "kling_testkit.server",
    "ContractNotClean": "kling_testkit.assertions",
    "assert_contract_clean": "kling_testkit.assertions",
    "assert_retry_after_honoured": "kling_testkit.assertions",
    "contract_violations": "kling_testkit.assertions",
    "min_poll_interval": "kling_testkit.assertions",
    "polls": "kling_testkit.assertions",
    "polls_before_end": "kling_testkit.assertions",
    "retry_after_waits": "kling_testkit.assertions",
    "assert_tokens_renewed": "kling_testkit.assertions",
    "assert_within_concurrency_slots": "kling_testkit.assertions",
    "slot_refusals": "kling_testkit.assertions",
    "token_refusals": "kling_testkit.assertions",
    "CHECKS": "kling_testkit.checks",
    "assert_conforms": "kling_testkit.checks",
    "check_exchanges": "kling_testkit.checks",
    "ContractViolation": "kling_testkit.failures",
    "Report": "kling_testkit.failures",
    "Severity": "kling_testkit.failures",
    "Exchange": "kling_testkit.recording",
    "read_recording": "kling_testkit.recording",
    "write_journal": "kling_testkit.recording",
    "TaskLifecycleMachine": "kling_testkit.stateful",
    "KlingTestkitError": "kling_testkit.errors",
}

if TYPE_CHECKING:
    from kling_testkit._mock import DEFAULT, KlingMock, KlingRoute, UnmatchedRequest, mock
    from kling_testkit._virtual_time import VirtualTime
    from kling_testkit.assertions import (
        ContractNotClean,
        assert_contract_clean,
        assert_retry_after_honoured,
        assert_tokens_renewed,
        assert_within_concurrency_slots,
        contract_violations,
        min_poll_interval,
        polls,
        polls_before_end,
        retry_after_waits,
        slot_refusals,
        token_refusals,
    )
    from kling_testkit.checks import CHECKS, assert_conforms, check_exchanges
    from kling_testkit.errors import KlingTestkitError
    from kling_testkit.failures import ContractViolation, Report, Severity
    from kling_testkit.recording import Exchange, read_recording, write_journal
    from kling_testkit.server import AdminClient, LiveServer, ServerError
    from kling_testkit.stateful import TaskLifecycleMachine
    from kling_testkit.transports import KlingTransport, httpx2_transport, transport
    from mockserver import FaultPlan, JournalEntry, Outcome, OutcomeRule, Progression, TaskView, VirtualClock


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module 'kling_testkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
