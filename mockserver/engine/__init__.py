"""The engine: no HTTP, no wire format; see ``core.py``."""

from __future__ import annotations

from mockserver.contract import IdFormat
from mockserver.engine.clock import Clock, SystemClock, VirtualClock
from mockserver.engine.core import (
    CreateRefused,
    Delivery,
    Engine,
    ExternalIdTaken,
    OutcomeRule,
    SlotsExhausted,
    TaskNotFound,
    TaskView,
    VideoSpec,
)
from mockserver.engine.faults import FaultPlan
from mockserver.engine.journal import ContractWarning, Journal, JournalEntry
from mockserver.engine.lifecycle import Outcome, Progression, Status, terminal_statuses, transitions

__all__ = [
    "Clock",
    "ContractWarning",
    "CreateRefused",
    "Delivery",
    "Engine",
    "ExternalIdTaken",
    "FaultPlan",
    "IdFormat",
    "Journal",
    "JournalEntry",
    "Outcome",
    "OutcomeRule",
    "Progression",
    "SlotsExhausted",
    "Status",
    "SystemClock",
    "TaskNotFound",
    "TaskView",
    "VideoSpec",
    "VirtualClock",
    "terminal_statuses",
    "transitions",
]
