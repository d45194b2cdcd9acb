"""The kit's error family: every error it raises on purpose is a :class:`KlingTestkitError`.

``except kling_testkit.KlingTestkitError`` catches all of them; each also keeps the built-in
base that says what kind of failure it is, so existing ``except`` clauses and pytest's reports
stay as they were (HTTPX and Hypothesis draw their trees the same way)::

    KlingTestkitError
    ├── ContractViolation (AssertionError)  an exchange breaks the contract   kling_testkit.failures
    ├── ContractNotClean (AssertionError)   assert_contract_clean found some  kling_testkit.assertions
    ├── ServerError (RuntimeError)          the live server's thread raised   kling_testkit.server
    ├── RecordingError                      a recording cannot be read        kling_testkit.recording
    └── ContractLoadError                   a folder is no contract/export    kling_testkit.contract_tools

The fake's own errors (``mockserver.TaskNotFound``, ``mockserver.ContractError``) belong to
``mockserver``, which never imports the kit. This module imports nothing, so importing the
base costs nothing.

>>> from kling_testkit import ContractViolation, KlingTestkitError
>>> issubclass(ContractViolation, KlingTestkitError) and issubclass(ContractViolation, AssertionError)
True
"""

from __future__ import annotations

__all__ = ["KlingTestkitError"]


class KlingTestkitError(Exception):
    """Base of every error kling_testkit raises on purpose (see the module's tree)."""
