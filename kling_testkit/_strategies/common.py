"""Helpers shared by the strategy modules: the face and its contract, fixed-value-or-strategy
arguments, the ABSENT marker, cached strategies.

Every strategy takes ``face=`` (a registered face name, default the first registered one,
``face_names()[0]``) and reads that face's contract when it is first drawn from, never at
import: a wrong face name is an ``InvalidArgument`` in the test that draws.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from mockserver.contract import Contract, ModelContract, load_contract
from mockserver.faces import face_names


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


def face_name(face: str | None) -> str:
    """``face``, or the default face (the first registered); InvalidArgument for unknown names."""
    names = face_names()
    if face is None:
        return names[0]
    if not isinstance(face, str) or face not in names:
        raise InvalidArgument(f"unknown face {face!r}; the registered faces are {list(names)}")
    return face


def contract_for(face: str | None) -> Contract:
    """The contract of ``face`` (default: the first registered face)."""
    return load_contract(face_name(face))


def resolve_model(name: str, face: str | None = None) -> ModelContract:
    """The model's contract on ``face``, or InvalidArgument naming the known ones (raised when drawn)."""
    contract = contract_for(face)
    models = contract.models
    if name not in models:
        raise InvalidArgument(f"unknown model {name!r} on face {contract.face!r}; it knows {sorted(models)}")
    return models[name]


def model_names(face: str | None = None) -> SearchStrategy[str]:
    """The face's model ids (deferred: the contract is read at the first draw); shrinks to the
    first in sorted order."""
    return st.deferred(lambda: st.sampled_from(sorted(contract_for(face).models)))


def draw_model(draw: st.DrawFn, model: Any, face: str | None) -> ModelContract:
    """The model a strategy argument names (a name, a strategy of names, or None for any)."""
    if model is None:
        model = model_names(face)
    name = model if isinstance(model, str) else draw(model)
    return resolve_model(str(name), face)


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
