"""Walk the derived request JSON Schemas: value strategies for valid fields, and keyword sites.

Only the keywords listed in :data:`HONOURED` are understood. A schema that uses another
assertion keyword makes :func:`field_values` raise ``InvalidArgument`` when drawn (valid
requests cannot promise to honour it), and shows up in :func:`keyword_sites` without a breaker
(the rule-coverage test fails), so a contract change never passes silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn, SearchStrategy

#: keywords that describe, not constrain
ANNOTATIONS: Final = frozenset(
    {"description", "default", "title", "$comment", "$schema", "$id", "examples", "x-content"}
)
#: assertion and structure keywords the generators honour (valid) and can break (invalid)
HONOURED: Final = frozenset(
    {
        "type",
        "enum",
        "const",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "items",
        "properties",
        "required",
        "additionalProperties",
    }
)
#: a marker in instance paths for "some item of this array"
ITEM: Final = -1

#: no lone surrogates: they cannot be encoded as UTF-8, so not every client can send them
CHARACTERS: Final = st.characters(codec="utf-8")
_SHORT = 40
SAFE_INTEGER: Final = 2**53 - 1


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1`` (Python says it is), ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


@st.composite
def _near_limit(draw: DrawFn, lo: int, hi: int) -> str:
    """A string of ``hi - 8 .. hi`` characters: a short drawn unit repeated, so a 2500-character
    prompt costs a dozen choices, not 2500, and shrinks to the unit."""
    unit = draw(st.text(CHARACTERS, min_size=1, max_size=12))
    length = draw(st.integers(max(lo, hi - 8), hi))
    return (unit * (length // len(unit) + 1))[:length]


def texts(lo: int, hi: int | None) -> SearchStrategy[str]:
    """Strings of ``lo..hi`` code points (JSON Schema counts code points, as ``len`` does), real
    Unicode without surrogates, often short and sometimes at the upper limit."""
    short = st.text(CHARACTERS, min_size=lo, max_size=max(lo, min(hi if hi is not None else _SHORT, _SHORT)))
    if hi is None or hi <= _SHORT:
        return short
    return st.one_of(short, _near_limit(lo, hi))


def long_texts(lo: int, hi: int) -> SearchStrategy[str]:
    """Strings of exactly ``lo..hi`` code points, built by repetition (cheap for any length)."""
    return _near_limit(lo, hi) if hi - lo <= 8 else st.integers(lo, hi).flatmap(lambda n: _near_limit(n, n))


def _check_keywords(schema: Mapping[str, Any], where: str) -> None:
    unknown = set(schema) - ANNOTATIONS - HONOURED
    if unknown:
        raise InvalidArgument(
            f"the contract's schema at {where or '/'} uses {sorted(unknown)}, which kling_testkit.strategies "
            "cannot honour yet; extend kling_testkit/_strategies/schema.py"
        )


def numbers(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    """Integers and floats inside ``minimum``/``maximum`` (integers only for ``type: integer``)."""
    lo, hi = schema.get("minimum"), schema.get("maximum")
    # unbounded sides stop at JSON's safe-integer range: many encoders (orjson, JavaScript)
    # cannot send a larger integer, so it would test the client's encoder, not the contract
    ints = st.integers(
        -SAFE_INTEGER if lo is None else math.ceil(lo),
        SAFE_INTEGER if hi is None else math.floor(hi),
    )
    if schema.get("type") == "integer":
        return ints
    return st.one_of(ints, st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def field_values(schema: Mapping[str, Any], where: str, image_values: SearchStrategy[str]) -> SearchStrategy[Any]:
    """Values the schema accepts, built from its keywords (no filtering).

    Shrinks towards the first enum value, the smallest number, the shortest string, the fewest
    items and objects without their optional members.
    """
    _check_keywords(schema, where)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        values = list(schema["enum"])
        plain = st.sampled_from(values)
        if schema.get("type") == "number" and any(isinstance(v, int) and not isinstance(v, bool) for v in values):
            # a JSON client may well send 5.0 for 5; the contract accepts both
            whole = [float(v) for v in values if isinstance(v, int) and not isinstance(v, bool)]
            return st.one_of(plain, st.sampled_from(whole))
        return plain
    kind = schema.get("type")
    if kind == "string":
        if schema.get("x-content") == "image":
            return image_values
        return texts(int(schema.get("minLength", 0)), schema.get("maxLength"))
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return numbers(schema)
    if kind == "array":
        items = field_values(schema.get("items", {}), f"{where}/items", image_values)
        return st.lists(items, min_size=int(schema.get("minItems", 0)), max_size=schema.get("maxItems"))
    if kind == "object":
        props: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        strategies = {k: field_values(v, f"{where}/properties/{k}", image_values) for k, v in props.items()}
        return st.fixed_dictionaries(
            {k: s for k, s in strategies.items() if k in required},
            optional={k: s for k, s in strategies.items() if k not in required},
        )
    raise InvalidArgument(f"the contract's schema at {where or '/'} has no type this generator knows ({kind!r})")


@dataclass(frozen=True, slots=True)
class Site:
    """One assertion keyword in a schema: where it sits (``pointer``, as the fake's ``schema:``
    rule ids spell it), its value, and the instance path it constrains (:data:`ITEM` for
    "an item of this array")."""

    pointer: tuple[str, ...]
    keyword: str
    value: Any
    path: tuple[str | int, ...]
    schema: Mapping[str, Any]

    @property
    def id(self) -> str:
        return "schema:" + "/".join(self.pointer)


def keyword_sites(
    schema: Mapping[str, Any], pointer: tuple[str, ...] = (), path: tuple[str | int, ...] = ()
) -> Iterator[Site]:
    """Every assertion keyword of ``schema``, depth first (annotations skipped)."""
    for key, value in schema.items():
        if key in ANNOTATIONS:
            continue
        if key == "properties":
            for name, sub in value.items():
                yield from keyword_sites(sub, (*pointer, "properties", name), (*path, name))
        elif key == "items" and isinstance(value, Mapping):
            yield from keyword_sites(value, (*pointer, "items"), (*path, ITEM))
        elif key == "additionalProperties" and value is True:
            continue
        else:
            yield Site((*pointer, key), key, value, path, schema)
