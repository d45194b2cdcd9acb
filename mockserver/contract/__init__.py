"""The one loader of ``contracts/``: every wire shape the fake speaks comes from here."""

from __future__ import annotations

from mockserver.contract.loader import (
    Contract,
    ContractError,
    ErrorSpec,
    FormMapping,
    IdFormat,
    ModelContract,
    Operation,
    Reader,
    RequestRule,
    RequestSpec,
    Rule,
    compile_schema,
    contracts_root,
    load_contract,
    load_lifecycle,
)

__all__ = [
    "Contract",
    "ContractError",
    "ErrorSpec",
    "FormMapping",
    "IdFormat",
    "ModelContract",
    "Operation",
    "Reader",
    "RequestRule",
    "RequestSpec",
    "Rule",
    "compile_schema",
    "contracts_root",
    "load_contract",
    "load_lifecycle",
]
