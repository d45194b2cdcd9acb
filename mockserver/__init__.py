"""The Kling v2.6 fake: a contract-driven engine, wire faces, and a Starlette app.

This package is the server alone: it imports the standard library, Starlette, uvicorn,
jsonschema, jsonschema-rs and Pillow, never pytest, respx, hypothesis or ``kling_testkit``
(a test enforces it), so it can run in a container for clients in any language.

>>> from mockserver import Engine, Service, VirtualClock
>>> engine = Engine(clock=VirtualClock())
>>> service = Service(engine)
>>> service.handle_simple("GET", "/v1/video/generations/task_x").status
401

The name ``mockserver`` is also the top-level module of the ``mockserver-client`` distribution
(MockServer's Python client); the two cannot share an environment. ``kling_testkit`` checks
for the marker below before it imports this package and explains the conflict if it is missing.
"""

from __future__ import annotations

from mockserver.app import create_app
from mockserver.contract import Contract, ContractError, load_contract
from mockserver.engine import (
    Clock,
    ContractWarning,
    Engine,
    FaultPlan,
    Journal,
    JournalEntry,
    Outcome,
    OutcomeRule,
    Progression,
    Status,
    SystemClock,
    TaskNotFound,
    TaskView,
    VideoSpec,
    VirtualClock,
)
from mockserver.http import ApiRequest, ApiResponse
from mockserver.service import Service

#: Marks this package as kling-testkit's (``kling_testkit._conflict`` reads this file for it).
KLING_TESTKIT_MOCKSERVER = True

__all__ = [
    # contract
    "Contract",
    "ContractError",
    "load_contract",
    # engine
    "Clock",
    "ContractWarning",
    "Engine",
    "FaultPlan",
    "Journal",
    "JournalEntry",
    "Outcome",
    "OutcomeRule",
    "Progression",
    "Status",
    "SystemClock",
    "TaskNotFound",
    "TaskView",
    "VideoSpec",
    "VirtualClock",
    # transport-neutral handler and its doors
    "ApiRequest",
    "ApiResponse",
    "Service",
    "create_app",
]
