"""The contract's lifecycle as the kit's checks, assertions, strategies and state machine ask it.

One place computes which statuses are final and which can follow which, from
``contracts/lifecycle.json`` through the contract's ``status_projection`` (the wire spelling),
so no module re-derives the closure of the transition graph its own way.

>>> from mockserver import load_contract
>>> contract = load_contract()
>>> sorted(terminal_statuses(contract, wire=True)), sorted(terminal_statuses(contract, wire=False))
(['completed', 'failed'], ['failed', 'succeeded'])
>>> after = successors(contract, wire=True)
>>> sorted(after["queued"]), sorted(after["completed"])
(['completed', 'failed', 'in_progress'], [])
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

from mockserver import Contract

__all__ = ["format_seconds", "successors", "terminal_statuses"]


def _spell(contract: Contract, wire: bool) -> Mapping[str, str]:
    projection = contract.status_projection
    return projection if wire else {s: s for s in projection}


@functools.cache
def terminal_statuses(contract: Contract, *, wire: bool) -> frozenset[str]:
    """The final statuses, in the wire's spelling or the engine's."""
    spell = _spell(contract, wire)
    return frozenset(spell[s] for s in contract.lifecycle["terminal"])


@functools.cache
def successors(contract: Contract, *, wire: bool) -> Mapping[str, frozenset[str]]:
    """Each status -> the statuses reachable from it in one or more transitions."""
    spell = _spell(contract, wire)
    edges: dict[str, set[str]] = {spell[s]: set() for s in contract.lifecycle["statuses"]}
    for t in contract.lifecycle["transitions"]:
        edges[spell[t["from"]]].add(spell[t["to"]])
    out: dict[str, frozenset[str]] = {}
    for start in edges:
        seen: set[str] = set()
        todo = list(edges[start])
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(edges.get(node, ()))
        out[start] = frozenset(seen)
    return out


def format_seconds(value: float) -> str:
    """A duration as the kit's messages print it.

    >>> format_seconds(5), format_seconds(0.25), format_seconds(1 / 3), format_seconds(math.inf)
    ('5 s', '0.25 s', '0.333 s', 'inf')
    """
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s" if math.isfinite(value) else str(value)
