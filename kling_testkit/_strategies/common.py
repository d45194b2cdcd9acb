"""Helpers shared by the strategy modules: fixed-value-or-strategy arguments, the ABSENT marker."""

from __future__ import annotations

from typing import Any, Final, TypeVar

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from mockserver.contract import ModelContract, load_contract

T = TypeVar("T")


class _Absent:
    """Marker: a narrowing argument set to ``ABSENT`` leaves the field out of the body."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()


def as_strategy(value: Any) -> SearchStrategy[Any]:
    """A strategy as given, any other value as ``st.just(value)`` (the Hypothesis convention)."""
    return value if isinstance(value, SearchStrategy) else st.just(value)


def resolve_model(name: str) -> ModelContract:
    """The model's contract, or InvalidArgument naming the known ones (raised when drawn)."""
    models = load_contract().models
    if name not in models:
        raise InvalidArgument(f"unknown model {name!r}; the contract knows {sorted(models)}")
    return models[name]


def model_names() -> SearchStrategy[str]:
    """The contract's model ids (deferred: the contract is read at the first draw)."""
    return st.deferred(lambda: st.sampled_from(sorted(load_contract().models)))
