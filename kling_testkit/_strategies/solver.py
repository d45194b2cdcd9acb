"""Make a JSON Schema condition true or false on a request body by editing it, under locks.

The contract's named rules are ``requires`` pairs of JSON Schemas (``when`` → ``then``). To
build a body where every rule holds, or where exactly one is broken, the builder repairs a
broken rule by making its ``then`` true or its ``when`` false; this module is how: it reads
the condition's keywords and edits the body until the condition (checked by a compiled
validator) gives the wanted answer. The keywords understood are the ones conditions are
written with (:data:`CONDITION_KEYWORDS`); another one raises ``InvalidArgument`` naming it,
so a contract change is reported instead of producing refused bodies.

Every edit keeps the body valid against the request schema at the edited place (values come
from the field's own schema), and respects *locks*: a value, a member's presence or absence,
or an array's length that the caller pinned (hard locks) or an earlier repair set (soft locks,
which a dead end may revise). Edits are transactional: a failed attempt leaves the body as
it was.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn, SearchStrategy

from kling_testkit._forms import json_equal
from kling_testkit._strategies.common import BOOLEANS, choices, integers
from kling_testkit._strategies.schema import (
    long_texts,
    not_matching,
    numbers,
    only_types,
    texts,
    type_allows,
    types_of,
)
from mockserver.contract import compile_schema

Path = tuple[str | int, ...]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

#: keywords a rule condition may use (structure, logic and value keywords)
CONDITION_KEYWORDS: Final = frozenset(
    {
        "required",
        "properties",
        "not",
        "anyOf",
        "oneOf",
        "allOf",
        "const",
        "enum",
        "type",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "contains",
        "items",
        "pattern",
    }
)
_NOTES: Final = frozenset({"description", "$comment", "title"})
_VALUE_KEYWORDS: Final = frozenset(
    {"const", "enum", "type", "minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum", "pattern"}
)


_UNSUPPORTED: dict[int, tuple[Mapping[str, Any], frozenset[str]]] = {}


def unsupported(schema: Mapping[str, Any]) -> frozenset[str]:
    """Keywords of a condition (at any depth) this module cannot construct."""
    found = _UNSUPPORTED.get(id(schema))
    if found is None or found[0] is not schema:
        found = (schema, frozenset(_unsupported(schema)))
        _UNSUPPORTED[id(schema)] = found
    return found[1]


def _unsupported(schema: Mapping[str, Any]) -> set[str]:
    found = set(schema) - CONDITION_KEYWORDS - _NOTES
    for key in ("not", "contains", "items"):
        if isinstance(schema.get(key), Mapping):
            found |= unsupported(schema[key])
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, ()):
            found |= unsupported(branch)
    for sub in schema.get("properties", {}).values():
        found |= unsupported(sub)
    return found


@functools.lru_cache(maxsize=4096)
def _compiled(key: str) -> Any:
    return compile_schema(json.loads(key))


#: id(schema) -> (schema, validator): the schema is held, so its id cannot be reused while cached
_VALIDATORS: dict[int, tuple[Mapping[str, Any], Any]] = {}


def valid(schema: Mapping[str, Any], instance: Any) -> bool:
    """``instance`` satisfies ``schema`` (compiled once per distinct schema)."""
    found = _VALIDATORS.get(id(schema))
    if found is None or found[0] is not schema:
        if len(_VALIDATORS) > 20_000:  # one-off schemas (a narrowed field) must not pile up
            _VALIDATORS.clear()
        found = (schema, _compiled(json.dumps(schema, sort_keys=True)))
        _VALIDATORS[id(schema)] = found
    return bool(found[1].is_valid(instance))


# -- paths ------------------------------------------------------------------------------------


def get_at(value: Any, path: Path) -> Any:
    """The value at ``path``, or :data:`MISSING`."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not 0 <= step < len(value):
                return MISSING
        elif not isinstance(value, dict) or step not in value:
            return MISSING
        value = value[step]
    return value


def _overlap(a: Path, b: Path) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def _below(top: Path, path: Path) -> bool:
    """``path`` is strictly inside ``top``."""
    return len(path) > len(top) and path[: len(top)] == top


@dataclass
class Locks:
    """What may not change: a value (and everything inside it), a member's presence or
    absence, an array's length."""

    value: set[Path] = field(default_factory=set)
    present: set[Path] = field(default_factory=set)
    absent: set[Path] = field(default_factory=set)
    length: set[Path] = field(default_factory=set)

    def copy(self) -> Locks:
        return Locks(set(self.value), set(self.present), set(self.absent), set(self.length))

    def blocks_put(self, path: Path, missing: bool) -> bool:
        if any(_overlap(v, path) for v in self.value):
            return True
        if any(_below(path, p) for p in self.present) or any(
            _overlap(path, n) and len(n) >= len(path) for n in self.length
        ):
            return True
        return missing and path in self.absent

    def blocks_remove(self, path: Path) -> bool:
        if any(_overlap(v, path) for v in self.value):
            return True
        return any(p == path or _below(path, p) for p in self.present) or any(
            n == path or _below(path, n) for n in self.length
        )

    def blocks_resize(self, path: Path, new: int) -> bool:
        if any(_overlap(v, path) for v in self.value) or path in self.length:
            return True
        for p in self.present:
            if _below(path, p):
                index = p[len(path)]
                if isinstance(index, int) and index >= new:
                    return True
        return False


# -- the body being built ---------------------------------------------------------------------


@dataclass
class Body:
    """A body under construction: the request kind's schema, defaults, locks, and the draw."""

    draw: DrawFn
    schema: Mapping[str, Any]  # the kind's request schema
    union: Mapping[str, Mapping[str, Any]]  # top-level member -> schema, from any kind
    defaults: Mapping[str, Any]
    value: dict[str, Any]
    strategy: Callable[[Path, Mapping[str, Any]], SearchStrategy[Any]]
    hard: Locks = field(default_factory=Locks)
    soft: Locks = field(default_factory=Locks)
    #: repairs record their edits as soft locks; a case breaking its rule records hard ones
    record_hard: bool = False
    #: a dead end: soft locks may be revised
    relaxed: bool = False
    #: rules evaluated after the schema see the form's defaults for absent top-level members
    with_defaults: bool = True
    #: members outside the kind's schema may be added (a before-schema rule's case)
    foreign: bool = False

    # -- reading --

    def view(self) -> dict[str, Any]:
        return {**self.defaults, **self.value} if self.with_defaults else self.value

    def at(self, path: Path) -> Any:
        return get_at(self.view(), path)

    def schema_at(self, path: Path) -> Mapping[str, Any] | None:
        """The request schema of the member at ``path`` (None if the schema has no place for it)."""
        node: Mapping[str, Any] = self.schema
        for i, step in enumerate(path):
            if isinstance(step, int):
                items = node.get("items")
                if not isinstance(items, Mapping):
                    return None
                node = items
            else:
                props = node.get("properties", {})
                if step in props:
                    node = props[step]
                elif i == 0 and self.foreign and step in self.union:
                    node = self.union[step]
                else:
                    return None
        return node

    def fits(self, path: Path, value: Any) -> bool:
        schema = self.schema_at(path)
        return schema is not None and valid(schema, value)

    def values_for(self, path: Path, schema: Mapping[str, Any] | None = None) -> SearchStrategy[Any]:
        found = schema if schema is not None else self.schema_at(path)
        if found is None:
            raise InvalidArgument(f"the request schema has no member at {_show(path)}")
        return self.strategy(path, found)

    # -- locks --

    def _locks(self) -> tuple[Locks, ...]:
        return (self.hard,) if self.relaxed else (self.hard, self.soft)

    def _record(self) -> Locks:
        return self.hard if self.record_hard else self.soft

    def can_put(self, path: Path) -> bool:
        parent = get_at(self.value, path[:-1])
        if not isinstance(parent, (dict, list)) or self.schema_at(path) is None:
            return False
        missing = get_at(self.value, path) is MISSING
        return not any(lock.blocks_put(path, missing) for lock in self._locks())

    def can_remove(self, path: Path) -> bool:
        if not path or isinstance(path[-1], int) or get_at(self.value, path) is MISSING:
            return False
        parent_schema = self.schema_at(path[:-1]) if len(path) > 1 else self.schema
        if parent_schema is None or path[-1] in parent_schema.get("required", ()):
            return False
        parent = get_at(self.value, path[:-1])
        if isinstance(parent, dict) and len(parent) - 1 < int(parent_schema.get("minProperties", 0)):
            return False
        return not any(lock.blocks_remove(path) for lock in self._locks())

    # -- edits (each records a lock) --

    def put(self, path: Path, value: Any, *, lock: str = "value") -> bool:
        """Set the member at ``path`` if allowed and schema-valid there; record ``lock``."""
        if not self.can_put(path) or not self.fits(path, value):
            return False
        parent = get_at(self.value, path[:-1])
        parent[path[-1]] = value
        record = self._record()
        record.absent.discard(path)
        getattr(record, lock).add(path)
        return True

    def remove(self, path: Path) -> bool:
        if not self.can_remove(path):
            return False
        parent = get_at(self.value, path[:-1])
        del parent[path[-1]]
        self._record().absent.add(path)
        return True

    def resize(self, path: Path, items: list[Any]) -> bool:
        current = get_at(self.value, path)
        if not isinstance(current, list) or any(lock.blocks_resize(path, len(items)) for lock in self._locks()):
            return False
        schema = self.schema_at(path)
        if schema is None or not valid(schema, items):
            return False
        current[:] = items
        record = self._record()
        record.length.add(path)
        record.present.add(path)
        return True

    # -- transactions --

    def attempt(self, edit: Callable[[], bool]) -> bool:
        """Run ``edit``; if it fails, put the body and the locks back as they were."""
        saved = (copy.deepcopy(self.value), self.hard.copy(), self.soft.copy())
        if edit():
            return True
        self.value.clear()
        self.value.update(saved[0])
        self.hard, self.soft = saved[1], saved[2]
        return False


def _show(path: Path) -> str:
    return "/".join(str(p) for p in path) or "/"


# -- making a condition true or false ----------------------------------------------------------


def _rotation(b: Body, n: int) -> list[int]:
    """``range(n)`` rotated by a drawn offset: every option can come first, shrinking to 0."""
    start = b.draw(integers(0, n - 1)) if n > 1 else 0
    return [(start + i) % n for i in range(n)]


def _first(b: Body, options: Sequence[Callable[[], bool]]) -> bool:
    """Try ``options`` in a drawn order, transactionally; True at the first that succeeds."""
    return any(b.attempt(options[i]) for i in _rotation(b, len(options))) if options else False


def make(b: Body, schema: Mapping[str, Any], path: Path, want: bool) -> bool:
    """Edit the body so that the instance at ``path`` satisfies ``schema`` (``want``) or not."""
    bad = unsupported(schema)
    if bad:
        raise InvalidArgument(
            f"a rule condition uses {sorted(bad)}, which kling_testkit.strategies cannot construct yet; "
            "extend kling_testkit/_strategies/solver.py"
        )
    instance = b.at(path)
    if instance is not MISSING and valid(schema, instance) == want:
        return True
    if instance is MISSING:
        return False
    done = _make_true(b, schema, path) if want else _make_false(b, schema, path)
    return done and valid(schema, b.at(path)) == want


def _add(b: Body, path: Path, sub: Mapping[str, Any] | None) -> bool:
    """Add the member at ``path`` with a drawn value that satisfies ``sub`` too."""
    if b.at(path) is not MISSING:
        return True
    if not b.can_put(path):
        return False
    if not b.put(path, b.draw(b.values_for(path)), lock="present"):
        return False
    return sub is None or make(b, sub, path, True)


def _make_true(b: Body, schema: Mapping[str, Any], path: Path) -> bool:
    props: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if not _add(b, (*path, name), props.get(name)):
            return False
    for name, sub in props.items():
        if b.at((*path, name)) is not MISSING and not make(b, sub, (*path, name), True):
            return False
    if "not" in schema and not make(b, schema["not"], path, False):
        return False
    for branch in schema.get("allOf", ()):
        if not make(b, branch, path, True):
            return False
    if "anyOf" in schema and not any(valid(s, b.at(path)) for s in schema["anyOf"]):
        branches = schema["anyOf"]
        if not _first(b, [functools.partial(make, b, s, path, True) for s in branches]):
            return False
    if "oneOf" in schema:
        branches = schema["oneOf"]

        def only(i: int) -> bool:
            return make(b, branches[i], path, True) and all(
                make(b, s, path, False) for j, s in enumerate(branches) if j != i
            )

        if not _first(b, [functools.partial(only, i) for i in range(len(branches))]):
            return False
    if "contains" in schema and not _contains(b, schema["contains"], path):
        return False
    keywords = _value_part(schema)
    return not keywords or valid(keywords, b.at(path)) or _value_true(b, keywords, path)


_VALUE_PARTS: dict[int, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}


def _value_part(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The value keywords of a condition, the same object every time (validators are cached
    by identity)."""
    found = _VALUE_PARTS.get(id(schema))
    if found is None or found[0] is not schema:
        found = (schema, {k: v for k, v in schema.items() if k in _VALUE_KEYWORDS})
        _VALUE_PARTS[id(schema)] = found
    return found[1]


def _make_false(b: Body, schema: Mapping[str, Any], path: Path) -> bool:
    options: list[Callable[[], bool]] = []
    instance = b.at(path)
    for name in schema.get("required", ()):
        member = (*path, name)
        if b.at(member) is not MISSING and not (b.with_defaults and len(member) == 1 and name in b.defaults):
            options.append(functools.partial(_remove, b, member))
    for name, sub in schema.get("properties", {}).items():
        member = (*path, name)

        def falsify(member: Path = member, sub: Mapping[str, Any] = sub) -> bool:
            return _add(b, member, None) and make(b, sub, member, False)

        options.append(falsify)
    if "not" in schema:
        options.append(functools.partial(make, b, schema["not"], path, True))
    for branch in schema.get("allOf", ()):
        options.append(functools.partial(make, b, branch, path, False))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options.append(functools.partial(_none_true, b, schema[key], path))
    if "contains" in schema and isinstance(instance, list):
        items = [(*path, i) for i in range(len(instance))]
        options.append(functools.partial(_all_false, b, schema["contains"], items))
    for key, value in schema.items():
        if key in _VALUE_KEYWORDS:
            options.append(functools.partial(_value_false, b, key, value, path))
    return _first(b, options)


def _remove(b: Body, member: Path) -> bool:
    """Remove ``member``; from an object at its ``minProperties``, add another member first."""
    if b.can_remove(member) or len(member) < 2:
        return b.remove(member)
    parent = get_at(b.value, member[:-1])
    schema = b.schema_at(member[:-1])
    if not isinstance(parent, dict) or schema is None:
        return False
    spare = [(*member[:-1], n) for n in schema.get("properties", {}) if n not in parent and n != member[-1]]
    return _first(b, [functools.partial(_swap, b, other, member) for other in spare])


def _swap(b: Body, other: Path, member: Path) -> bool:
    return _add(b, other, None) and b.remove(member)


def _none_true(b: Body, branches: Sequence[Mapping[str, Any]], path: Path) -> bool:
    return all(make(b, s, path, False) for s in branches)


def _all_false(b: Body, sub: Mapping[str, Any], paths: Sequence[Path]) -> bool:
    return all(make(b, sub, p, False) for p in paths)


def _contains(b: Body, sub: Mapping[str, Any], path: Path) -> bool:
    items = b.at(path)
    if not isinstance(items, list) or not items:
        return False
    return _first(b, [functools.partial(make, b, sub, (*path, i), True) for i in range(len(items))])


def finite_values(schema: Mapping[str, Any]) -> list[Any] | None:
    """Every value the schema allows when that is a short list (const, enum, boolean)."""
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        return [v for v in schema["enum"] if type_allows(schema, v)] if "type" in schema else list(schema["enum"])
    kinds = types_of(schema)
    if set(kinds) <= {"boolean", "null"}:
        return [v for v in (None, False, True) if type_allows(schema, v)]
    return None


def _pick(b: Body, path: Path, candidates: Sequence[Any]) -> bool:
    """Put one of ``candidates`` (drawn) at ``path``."""
    usable = [v for v in candidates if b.fits(path, v)]
    if not usable:
        return False
    return b.put(path, b.draw(choices(tuple(_hashable(v) for v in usable))))


def _hashable(value: Any) -> Any:
    """``choices`` needs hashable tuples; enum values are scalars, so this only guards."""
    if isinstance(value, (dict, list)):
        raise InvalidArgument(f"a rule condition compares with a structured value {value!r}")
    return value


def _value_true(b: Body, keywords: Mapping[str, Any], path: Path) -> bool:
    """Put a value at ``path`` that satisfies the field's schema and ``keywords``."""
    schema = b.schema_at(path)
    if schema is None:
        return False
    finite = finite_values(schema)
    if finite is not None:
        return _pick(b, path, [v for v in finite if valid(keywords, v)])
    if "const" in keywords or "enum" in keywords:
        wanted = [keywords["const"]] if "const" in keywords else list(keywords["enum"])
        return _pick(b, path, [v for v in wanted if valid(keywords, v)])
    current = b.at(path)
    narrowed = dict(schema)
    if "type" in keywords:
        wanted_types = types_of(keywords)
        kinds = [k for k in types_of(schema) if k in wanted_types or (k == "integer" and "number" in wanted_types)]
        if not kinds:
            return False
        narrowed = only_types(schema, kinds)
    if isinstance(current, list) and ("maxItems" in keywords or "minItems" in keywords):
        lo = max(int(keywords.get("minItems", 0)), int(schema.get("minItems", 0)))
        hi = min(int(keywords.get("maxItems", len(current))), int(schema.get("maxItems", 10**6)))
        if lo > hi:
            return False
        if len(current) > hi:
            return b.resize(path, current[:hi])
        extra = b.draw(st.lists(b.values_for((*path, 0)), min_size=lo - len(current), max_size=hi - len(current)))
        return b.resize(path, [*current, *extra])
    for key in ("minLength", "maxLength", "minimum", "maximum", "pattern"):
        if key in keywords:
            narrowed[key] = _tighter(key, narrowed.get(key), keywords[key])
    value = b.draw(b.values_for(path, narrowed))
    return valid(keywords, value) and b.put(path, value)


def _tighter(key: str, current: Any, wanted: Any) -> Any:
    if current is None or key == "pattern":
        return wanted
    return max(current, wanted) if key in ("minLength", "minimum") else min(current, wanted)


def _value_false(b: Body, key: str, value: Any, path: Path) -> bool:
    """Put a value at ``path`` that the field's schema allows and ``{key: value}`` refuses."""
    schema = b.schema_at(path)
    current = b.at(path)
    if schema is None or current is MISSING:
        return False
    keyword = {key: value}
    finite = finite_values(schema)
    if finite is not None:
        return _pick(b, path, [v for v in finite if not valid(keyword, v)])
    if key in ("const", "enum"):
        avoid = [value] if key == "const" else list(value)
        return b.put(path, b.draw(other_values(schema, avoid)))
    if key == "type":
        refused = [k for k in types_of(schema) if not type_allows(keyword, _sample_of(k))]
        return bool(refused) and b.put(path, b.draw(b.values_for(path, only_types(schema, refused))))
    if key == "minLength" and isinstance(current, str):
        lo = int(schema.get("minLength", 0))
        return lo < value and b.put(path, b.draw(texts(lo, value - 1)))
    if key == "maxLength" and isinstance(current, str):
        hi = schema.get("maxLength")
        top = value + 16 if hi is None else min(int(hi), value + 16)
        return top > value and b.put(path, b.draw(long_texts(value + 1, top)))
    if key == "maxItems" and isinstance(current, list):
        hi = int(schema.get("maxItems", value + 3))
        if hi <= value:
            return False
        extra = b.draw(
            st.lists(b.values_for((*path, 0)), min_size=value + 1 - len(current), max_size=hi - len(current))
        )
        return b.resize(path, [*current, *extra])
    if key == "minItems" and isinstance(current, list):
        lo = int(schema.get("minItems", 0))
        return lo < value and b.resize(path, current[: max(lo, min(len(current), value - 1))])
    if key in ("minimum", "maximum") and isinstance(current, (int, float)):
        return b.put(path, b.draw(_beyond_within(schema, key, value)))
    if key == "pattern" and isinstance(current, str):
        lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
        return b.put(path, b.draw(not_matching(str(value), lo, hi)))
    return False


def _sample_of(kind: str) -> Any:
    return {"null": None, "boolean": True, "integer": 1, "number": 0.5, "string": "", "array": [], "object": {}}[kind]


def _beyond_within(schema: Mapping[str, Any], key: str, bound: float) -> SearchStrategy[Any]:
    """Numbers the field allows on the far side of ``bound``."""
    narrowed = dict(schema)
    if key == "minimum":
        narrowed["maximum"] = min(schema.get("maximum", math.inf), math.ceil(bound) - 1)
    else:
        narrowed["minimum"] = max(schema.get("minimum", -math.inf), math.floor(bound) + 1)
    if narrowed.get("minimum", -math.inf) > narrowed.get("maximum", math.inf):
        return st.nothing()
    return numbers(narrowed)


def other_values(schema: Mapping[str, Any], avoid: Sequence[Any]) -> SearchStrategy[Any]:
    """Values of the types the schema allows that are none of ``avoid`` (enum or const breakers)."""
    kinds = types_of(schema) if "type" in schema else tuple(dict.fromkeys(_kind_of(a) for a in avoid))
    options: list[SearchStrategy[Any]] = []
    for kind in kinds:
        if kind == "string":
            variants = [
                v
                for a in avoid
                if isinstance(a, str)
                for v in (a.lower(), a.upper(), a.title(), f" {a}", f"{a}s", f"{a}0")
            ]
            fixed = [v for v in dict.fromkeys(variants) if not any(json_equal(v, a) for a in avoid)]
            if fixed:
                options.append(st.sampled_from(fixed))
            options.append(st.text(min_size=1, max_size=12).map(lambda s: s if s not in avoid else s + "_"))
        elif kind == "boolean":
            others = [v for v in (False, True) if not any(json_equal(v, a) for a in avoid)]
            if others:
                options.append(st.sampled_from(others))
        elif kind in ("integer", "number"):

            def shift(value: Any) -> Any:
                while any(json_equal(value, a) for a in avoid):
                    value += 1
                return value

            options.append(numbers({"type": kind}).map(shift))
    if not options:
        return st.nothing()
    return st.one_of(options)


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    return "number"


def freeze(b: Body, schema: Mapping[str, Any], path: Path = ()) -> None:
    """Hard-lock what keeps ``schema``'s answer at ``path`` what it is now, so that a condition
    a case made true (or false) stays so whatever the repairs that follow do: the members and
    values a true condition reads, or one reason (a missing member, a value) a false one fails.
    """
    _freeze(b, schema, path, valid(schema, b.at(path)))


def _freeze(b: Body, schema: Mapping[str, Any], path: Path, truth: bool) -> None:
    instance = b.at(path)
    if instance is MISSING:
        return
    if not truth:
        _freeze_reason(b, schema, path)
        return
    for name in schema.get("required", ()):
        _freeze_presence(b, (*path, name))
    for name, sub in schema.get("properties", {}).items():
        member = (*path, name)
        _freeze_presence(b, member)
        if b.at(member) is not MISSING:
            _freeze(b, sub, member, True)
    if isinstance(schema.get("not"), Mapping):
        _freeze(b, schema["not"], path, False)
    for branch in schema.get("allOf", ()):
        _freeze(b, branch, path, True)
    if "anyOf" in schema:
        first = next(s for s in schema["anyOf"] if valid(s, instance))
        _freeze(b, first, path, True)
    for branch in schema.get("oneOf", ()):
        _freeze(b, branch, path, valid(branch, instance))
    _freeze_value(b, schema, path)


def _freeze_reason(b: Body, schema: Mapping[str, Any], path: Path) -> None:
    """Lock one reason ``schema`` is false at ``path``."""
    instance = b.at(path)
    for name in schema.get("required", ()):
        if b.at((*path, name)) is MISSING:
            b.hard.absent.add((*path, name))
            return
    for name, sub in schema.get("properties", {}).items():
        member = (*path, name)
        if b.at(member) is not MISSING and not valid(sub, b.at(member)):
            b.hard.present.add(member)
            _freeze(b, sub, member, False)
            return
    if isinstance(schema.get("not"), Mapping) and valid(schema["not"], instance):
        _freeze(b, schema["not"], path, True)
        return
    for branch in schema.get("allOf", ()):
        if not valid(branch, instance):
            _freeze(b, branch, path, False)
            return
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key, ()):
            _freeze(b, branch, path, valid(branch, instance))
    _freeze_value(b, schema, path)


def _freeze_value(b: Body, schema: Mapping[str, Any], path: Path) -> None:
    read = set(schema) & (_VALUE_KEYWORDS | {"contains", "items"})
    if path and read:
        b.hard.present.add(path)
        # a count of items reads the array's length only; anything else reads the value
        (b.hard.length if read <= {"minItems", "maxItems"} else b.hard.value).add(path)


def _freeze_presence(b: Body, path: Path) -> None:
    if get_at(b.value, path) is MISSING:
        b.hard.absent.add(path)
    else:
        b.hard.present.add(path)


# -- the repair loop ---------------------------------------------------------------------------


def broken(rule_when: Mapping[str, Any], rule_then: Mapping[str, Any], instance: Any) -> bool:
    return valid(rule_when, instance) and not valid(rule_then, instance)


def repair_one(b: Body, when: Mapping[str, Any], then: Mapping[str, Any]) -> bool:
    """Make one broken rule hold: ``then`` true, or ``when`` false (drawn order; shrinks to
    making ``then`` true)."""
    fix = functools.partial(make, b, then, (), True)
    dodge = functools.partial(make, b, when, (), False)
    order = [fix, dodge] if not b.draw(BOOLEANS) else [dodge, fix]
    return any(b.attempt(option) for option in order)
