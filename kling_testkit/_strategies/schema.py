"""Walk the derived request JSON Schemas: value strategies for valid fields, and keyword sites.

Only the keywords listed in :data:`HONOURED` are understood. A schema that uses another
assertion keyword makes :func:`field_values` raise ``InvalidArgument`` when drawn (valid
requests cannot promise to honour it), and shows up in :func:`keyword_sites` without a breaker
(the rule-coverage test fails), so a contract change never passes silently.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
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
        "pattern",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "anyOf",
        "items",
        "properties",
        "required",
        "additionalProperties",
    }
)
#: keywords that assert nothing at these values (an empty ``required``, a zero lower bound)
VACUOUS: Final = {"required": [], "minLength": 0, "minItems": 0, "minProperties": 0}
#: a marker in instance paths for "some item of this array"
ITEM: Final = -1

#: no lone surrogates: they cannot be encoded as UTF-8, so not every client can send them
CHARACTERS: Final = st.characters(codec="utf-8")
#: strings for ``pattern`` fields: printable ASCII. Python's ``re`` (jsonschema) and ECMA 262
#: regexes (jsonschema-rs) agree on it; they differ on ``$`` before a final newline and on
#: which Unicode characters ``\s`` matches
PATTERN_ALPHABET: Final = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_SHORT = 40
SAFE_INTEGER: Final = 2**53 - 1
JSON_TYPES: Final = ("null", "boolean", "integer", "number", "string", "array", "object")


def json_type(value: Any) -> str:
    """The JSON Schema type of a Python JSON value (``integer`` for whole numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def types_of(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The schema's ``type`` as a tuple (every JSON type when it has none)."""
    kind = schema.get("type")
    if kind is None:
        return JSON_TYPES
    return (kind,) if isinstance(kind, str) else tuple(kind)


def type_allows(schema: Mapping[str, Any], value: Any) -> bool:
    """Whether ``value``'s JSON type is one the schema's ``type`` allows."""
    allowed = types_of(schema)
    found = json_type(value)
    return found in allowed or (found == "integer" and "number" in allowed)


@st.composite
def _near_limit(draw: DrawFn, lo: int, hi: int) -> str:
    """A string of ``hi - 8 .. hi`` characters: a short drawn unit repeated, so a 2500-character
    prompt costs a dozen choices, not 2500, and shrinks to the unit."""
    unit = draw(st.text(CHARACTERS, min_size=1, max_size=12))
    length = draw(st.integers(max(lo, hi - 8), hi))
    return (unit * (length // len(unit) + 1))[:length]


@functools.lru_cache(maxsize=256)
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


@functools.lru_cache(maxsize=64)
def matching(pattern: str, lo: int = 0, hi: int | None = None) -> SearchStrategy[str]:
    """Strings ``pattern`` finds a match in (JSON Schema's ``pattern`` is a search), of
    ``lo..hi`` characters, in :data:`PATTERN_ALPHABET`."""
    # from_regex lets ``$`` match before a final newline, as Python's ``re`` does; ECMA 262
    # (jsonschema-rs, and the JSON Schema spec) does not, so such strings are left out
    return st.from_regex(pattern, alphabet=PATTERN_ALPHABET).filter(
        lambda s: "\n" not in s and lo <= len(s) and (hi is None or len(s) <= hi)
    )


@functools.lru_cache(maxsize=64)
def not_matching(pattern: str, lo: int = 0, hi: int | None = None) -> SearchStrategy[str]:
    """Strings of ``lo..hi`` characters in :data:`PATTERN_ALPHABET` that ``pattern`` finds no
    match in (few strings match the contract's patterns, so the filter rarely rejects)."""
    compiled = re.compile(pattern)
    size = hi if hi is not None else max(lo, 12)
    return st.text(PATTERN_ALPHABET, min_size=lo, max_size=size).filter(lambda s: compiled.search(s) is None)


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
    if "number" not in types_of(schema):
        return ints
    return st.one_of(ints, st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def only_types(schema: Mapping[str, Any], kinds: Sequence[str]) -> dict[str, Any]:
    """``schema`` narrowed to the JSON types ``kinds`` (``type`` set to them, enum filtered)."""
    out = dict(schema)
    out["type"] = list(kinds) if len(kinds) != 1 else kinds[0]
    if "enum" in out:
        out["enum"] = [v for v in out["enum"] if type_allows(out, v)]
    return out


def field_values(schema: Mapping[str, Any], where: str, image_values: SearchStrategy[str]) -> SearchStrategy[Any]:
    """Values the schema accepts, built from its keywords (no filtering but for ``pattern``
    combined with a length bound).

    Shrinks towards the first enum value, the smallest number, the shortest string, the fewest
    items and objects without their optional members.
    """
    _check_keywords(schema, where)
    if "anyOf" in schema:
        # one branch at a time, each with the rest of the schema (shrinks to the first branch)
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return st.one_of(
            [
                field_values({**rest, **branch}, f"{where}/anyOf/{i}", image_values)
                for i, branch in enumerate(schema["anyOf"])
            ]
        )
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        values = list(schema["enum"])
        plain = st.sampled_from(values)
        if types_of(schema) == ("number",) and any(isinstance(v, int) and not isinstance(v, bool) for v in values):
            # a JSON client may well send 5.0 for 5; the contract accepts both
            whole = [float(v) for v in values if isinstance(v, int) and not isinstance(v, bool)]
            return st.one_of(plain, st.sampled_from(whole))
        return plain
    kinds = types_of(schema)
    if len(kinds) > 1:
        if "type" not in schema:
            raise InvalidArgument(f"the contract's schema at {where or '/'} has no type this generator knows")
        return st.one_of([field_values(only_types(schema, [k]), where, image_values) for k in kinds])
    kind = kinds[0]
    if kind == "string":
        if schema.get("x-content") == "image":
            return image_values
        lo, hi = int(schema.get("minLength", 0)), schema.get("maxLength")
        if "pattern" in schema:
            return matching(str(schema["pattern"]), lo, hi)
        return texts(lo, hi)
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        return numbers(schema)
    if kind == "null":
        return st.none()
    if kind == "array":
        items = field_values(schema.get("items", {}), f"{where}/items", image_values)
        return st.lists(items, min_size=int(schema.get("minItems", 0)), max_size=schema.get("maxItems"))
    if kind == "object":
        props: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        strategies = {k: field_values(v, f"{where}/properties/{k}", image_values) for k, v in props.items()}
        least = int(schema.get("minProperties", 0)) - len(required)
        most = schema.get("maxProperties")
        if least > 0 or most is not None:
            return _objects_with(
                strategies, required, max(least, 0), None if most is None else int(most) - len(required)
            )
        return st.fixed_dictionaries(
            {k: s for k, s in strategies.items() if k in required},
            optional={k: s for k, s in strategies.items() if k not in required},
        )
    raise InvalidArgument(f"the contract's schema at {where or '/'} has no type this generator knows ({kind!r})")


@st.composite
def _objects_with(
    draw: DrawFn, strategies: Mapping[str, SearchStrategy[Any]], required: set[str], least: int, most: int | None = None
) -> dict[str, Any]:
    """Objects with the required members and ``least`` to ``most`` optional ones
    (minProperties, maxProperties)."""
    optional = [k for k in strategies if k not in required]
    top = len(optional) if most is None else min(most, len(optional))
    if top < least:
        raise InvalidArgument(f"minProperties/maxProperties cannot be met by the members {sorted(strategies)}")
    chosen = set(draw(st.lists(st.sampled_from(optional), min_size=least, max_size=top, unique=True)))
    return {k: draw(s) for k, s in strategies.items() if k in required or k in chosen}


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


def vacuous(keyword: str, value: Any) -> bool:
    """Whether the keyword asserts nothing (``required: []``, ``minLength: 0``...)."""
    return keyword in VACUOUS and value == VACUOUS[keyword]


def keyword_sites(
    schema: Mapping[str, Any], pointer: tuple[str, ...] = (), path: tuple[str | int, ...] = ()
) -> Iterator[Site]:
    """Every assertion keyword of ``schema``, depth first (annotations and keywords that assert
    nothing skipped)."""
    for key, value in schema.items():
        if key in ANNOTATIONS or vacuous(key, value):
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
