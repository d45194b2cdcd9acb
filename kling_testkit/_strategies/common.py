"""Helpers shared by the strategy modules: fixed-value-or-strategy arguments, the ABSENT marker."""

from __future__ import annotations

import functools
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from mockserver.contract import ModelContract, load_contract


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


# Strategies built inside a composite are new objects on every draw, and Hypothesis computes
# their properties (emptiness, reusability) afresh each time: a third of the generation cost.
# The hot paths take them from these caches instead.


@functools.lru_cache(maxsize=4096)
def integers(lo: int, hi: int) -> SearchStrategy[int]:
    """``st.integers(lo, hi)``, cached."""
    return st.integers(lo, hi)


@functools.lru_cache(maxsize=4096)
def choices(values: tuple[Any, ...]) -> SearchStrategy[Any]:
    """``st.sampled_from(values)``, cached (``values`` must be hashable)."""
    return st.sampled_from(values)


BOOLEANS: Final = st.booleans()
