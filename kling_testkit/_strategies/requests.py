"""Create-request bodies: valid ones by construction, and labelled ones that break one rule.

How a valid body is built (no filtering anywhere):

1. pick the request kind (``text2video`` / ``image2video``) whose derived schema can hold the
   pinned fields; every property of that schema is drawn from its own keywords, optional
   ones present or absent;
2. *repair* the named ``requires`` rules of ``rules.json`` in contract order: a broken rule is
   made to hold either by making its ``then`` true (``mode = "pro"``) or its ``when`` false
   (``sound = "off"``), never touching a field the caller pinned or an earlier repair set;
3. *compose* every ``sum_equals`` rule: the item field (shot ``duration``) is drawn as a
   composition of the total (``duration``), each part within the item schema's range.

The rule forms understood are the ones ``rules.json`` uses (``required``, ``properties/X/const``,
``properties/X/maxItems``); a rule written differently raises ``InvalidArgument`` when drawn, so
a contract change cannot make valid_requests() silently produce refused bodies.

An invalid case starts from the same builder with *pins* that make the rule's ``when`` true and
its ``then`` false (and skips repairing that one rule), or from a valid body with one schema
keyword broken at one place. The label comes from the contract's error catalogue.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn, SearchStrategy

from kling_testkit._strategies.common import (
    ABSENT,
    BOOLEANS,
    as_strategy,
    choices,
    integers,
    model_names,
    resolve_model,
)
from kling_testkit._strategies.images import ImagePayload, images, problems_for_check
from kling_testkit._strategies.schema import (
    ITEM,
    Site,
    field_values,
    json_equal,
    keyword_sites,
    long_texts,
    numbers,
)
from mockserver.contract import ModelContract, Rule, load_contract
from mockserver.validation import format_param

Body = dict[str, Any]


# -- the model's shape, read once per model --------------------------------------------------


class _Shape:
    """A model's request shape, read once. A plain class on purpose: Hypothesis prints
    dataclass arguments of strategies field by field, and this one holds the whole contract."""

    __slots__ = ("image_values", "kinds", "model", "props", "required", "requires", "sums", "union")

    def __init__(self, model: ModelContract) -> None:
        self.model = model
        self.kinds: tuple[str, ...] = tuple(model.request_schemas)
        #: kind -> field -> schema
        self.props: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
            k: dict(s.get("properties", {})) for k, s in model.request_schemas.items()
        }
        self.required: Mapping[str, frozenset[str]] = {
            k: frozenset(s.get("required", ())) for k, s in model.request_schemas.items()
        }
        union: dict[str, Mapping[str, Any]] = {}
        for fields in self.props.values():
            for name, schema in fields.items():
                union.setdefault(name, schema)
        #: field -> schema, from any kind
        self.union: Mapping[str, Mapping[str, Any]] = union
        self.requires: tuple[Rule, ...] = tuple(r for r in model.rules if r.kind == "requires")
        self.sums: tuple[Rule, ...] = tuple(r for r in model.rules if r.kind == "sum_equals")
        self.image_values: SearchStrategy[str] = images(model.name).map(lambda p: p.value)

    def field_strategy(self, name: str) -> SearchStrategy[Any]:
        return _field_strategy(self, name)

    def __repr__(self) -> str:
        return f"<shape of {self.model.name}>"


@functools.cache
def _field_strategy(shape: _Shape, name: str) -> SearchStrategy[Any]:
    return field_values(shape.union[name], f"properties/{name}", shape.image_values)


@functools.cache
def shape_of(model: ModelContract) -> _Shape:
    return _Shape(model)


# -- rule forms ------------------------------------------------------------------------------

Conjunct = tuple[str, str, Any]  # ("present" | "const" | "max_items", field, argument)


def conjuncts(schema: Mapping[str, Any], rule: Rule) -> list[Conjunct]:
    """A rule's ``when``/``then`` as a conjunction the builder can satisfy or break."""
    out: list[Conjunct] = []
    for key, value in schema.items():
        if key == "required":
            out.extend(("present", name, None) for name in value)
        elif key == "properties":
            for name, sub in value.items():
                for keyword, arg in sub.items():
                    if keyword == "const":
                        out.append(("const", name, arg))
                    elif keyword == "maxItems":
                        out.append(("max_items", name, arg))
                    else:
                        raise InvalidArgument(_unsupported(rule, f"properties/{name}/{keyword}"))
        else:
            raise InvalidArgument(_unsupported(rule, key))
    return out


def _unsupported(rule: Rule, form: str) -> str:
    return (
        f"rule {rule.id!r} uses the form {form!r}, which kling_testkit.strategies cannot construct yet; "
        "extend kling_testkit/_strategies/requests.py"
    )


def _holds(conjunct: Conjunct, full: Mapping[str, Any]) -> bool:
    op, name, arg = conjunct
    if op == "present":
        return name in full
    if name not in full:
        return True
    if op == "const":
        return json_equal(full[name], arg)
    value = full[name]
    return not isinstance(value, list) or len(value) <= arg


def _alternatives(schema: Mapping[str, Any], avoid: Any) -> list[Any]:
    """Values the field schema allows other than ``avoid`` (for finite fields)."""
    if "enum" in schema:
        return [v for v in schema["enum"] if not json_equal(v, avoid)]
    if schema.get("type") == "boolean":
        return [v for v in (False, True) if not json_equal(v, avoid)]
    return []


# -- the builder -----------------------------------------------------------------------------


@dataclass
class _Build:
    shape: _Shape
    kind: str
    body: Body
    pinned: set[str]  # fields the caller (or the case) fixed; repairs never touch them
    touched: set[str] = field(default_factory=set)  # fields a repair set; later repairs keep them
    count_pinned: bool = False

    def full(self) -> Body:
        return {**self.shape.model.defaults, **self.body}

    relaxed: bool = False  # when repairs dead-end, earlier repairs may be revised

    def frozen(self, name: str) -> bool:
        return name in self.pinned or (name in self.touched and not self.relaxed)

    def in_kind(self, name: str) -> bool:
        return name in self.shape.props[self.kind]


def _rule_broken(rule: Rule, build: _Build) -> bool:
    assert rule.compiled is not None
    when, then = rule.compiled
    target = build.body if rule.phase == "before_schema" else build.full()
    return bool(when.is_valid(target) and not then.is_valid(target))


def _fixes(build: _Build, rule: Rule) -> list[Conjunct] | None:
    """The unsatisfied conjuncts of ``then`` if every one can be made true, else None."""
    full = build.full()
    todo = [c for c in conjuncts(rule.spec["then"], rule) if not _holds(c, full)]
    for op, name, _ in todo:
        if build.frozen(name) or not build.in_kind(name):
            return None
        if op == "max_items" and build.count_pinned:
            return None
    return todo


def _breakable(build: _Build, rule: Rule) -> list[Conjunct]:
    """The conjuncts of ``when`` that can be made false."""
    out = []
    for conjunct in conjuncts(rule.spec["when"], rule):
        op, name, arg = conjunct
        if build.frozen(name):
            continue
        removable = op == "present" and name not in build.shape.required[build.kind]
        if removable or (op == "const" and build.in_kind(name) and _alternatives(build.shape.union[name], arg)):
            out.append(conjunct)
    return out


def _apply_fix(draw: DrawFn, build: _Build, todo: list[Conjunct]) -> None:
    for op, name, arg in todo:
        if op == "present":
            build.body[name] = draw(build.shape.field_strategy(name))
        elif op == "const":
            build.body[name] = arg
        else:
            build.body[name] = build.body[name][:arg]
        build.touched.add(name)


def _apply_break(draw: DrawFn, build: _Build, conjunct: Conjunct) -> None:
    op, name, arg = conjunct
    if op == "present":
        build.body.pop(name, None)
    else:
        build.body[name] = draw(choices(tuple(_alternatives(build.shape.union[name], arg))))
    build.touched.add(name)


def _repair(draw: DrawFn, build: _Build, skip: str | None) -> None:
    rules = [r for r in build.shape.requires if r.id != skip]
    # each repair freezes the fields it sets, so this ends after about one repair per field
    for _ in range(2 * (len(build.shape.union) + len(rules)) + 1):
        broken = next((r for r in rules if _rule_broken(r, build)), None)
        if broken is None:
            return
        build.relaxed = False
        fix = _fixes(build, broken)
        breakable = _breakable(build, broken)
        options = (["then"] if fix is not None else []) + (["when"] if breakable else [])
        if not options:
            # Dead end: an earlier repair froze what this rule needs. Revise it, making the
            # rule's ``then`` true where possible (the direction that always converges).
            build.relaxed = True
            fix = _fixes(build, broken)
            breakable = [] if fix is not None else _breakable(build, broken)
            options = ["then"] if fix is not None else ["when"] if breakable else []
        if not options:
            raise InvalidArgument(
                f"the narrowing arguments contradict rule {broken.id!r} ({broken.message}); "
                f"pinned: {sorted(build.pinned)}"
            )
        if draw(choices(tuple(options))) == "then":
            assert fix is not None
            _apply_fix(draw, build, fix)
        else:
            _apply_break(draw, build, draw(choices(tuple(breakable))))
    raise InvalidArgument(f"could not satisfy the requires rules of {build.shape.model.name} (no fixed point)")


def _item_range(rule: Rule, shape: _Shape) -> tuple[int, int]:
    item = shape.union[rule.spec["items"]].get("items", {})
    schema = item.get("properties", {}).get(rule.spec["item_field"], {})
    if schema.get("type") != "integer" or "minimum" not in schema or "maximum" not in schema:
        raise InvalidArgument(f"rule {rule.id!r}: the summed item field needs an integer schema with bounds")
    return int(schema["minimum"]), int(schema["maximum"])


@st.composite
def _composition(draw: DrawFn, total: int, parts: int, lo: int, hi: int) -> list[int]:
    """``parts`` integers in ``lo..hi`` adding up to ``total`` (drawn left to right, each within
    what keeps the rest feasible, so every composition is reachable and none is rejected)."""
    out = []
    left = total
    for i in range(parts, 0, -1):
        if i == 1:
            out.append(left)
            break
        value = draw(integers(max(lo, left - (i - 1) * hi), min(hi, left - (i - 1) * lo)))
        out.append(value)
        left -= value
    return out


def _compose(draw: DrawFn, build: _Build, rule: Rule) -> None:
    spec = rule.spec
    items_name, item_field, total_name = spec["items"], spec["item_field"], spec["total"]
    items = build.body.get(items_name)
    if not isinstance(items, list) or not items:
        return
    lo, hi = _item_range(rule, build.shape)
    full = build.full()
    if items_name in build.pinned:
        actual = sum(item.get(item_field, 0) for item in items)
        total_schema = build.shape.union.get(total_name, {})
        if total_name in full and json_equal(full[total_name], actual):
            return
        if total_name in build.pinned or actual not in total_schema.get("enum", [actual]):
            raise InvalidArgument(
                f"rule {rule.id!r}: the pinned {items_name} add up to {actual}, not {full.get(total_name)}"
            )
        build.body[total_name] = actual
        return
    total = full.get(total_name)
    if not isinstance(total, (int, float)) or isinstance(total, bool) or total != int(total):
        raise InvalidArgument(f"rule {rule.id!r}: {total_name} is {total!r}; shots need a whole total")
    total = int(total)
    if not len(items) * lo <= total <= len(items) * hi:
        if not build.count_pinned and total >= lo:
            del items[max(1, total // lo) :]
            while len(items) * hi < total:
                items.append(dict(items[-1]))
        elif total_name not in build.pinned and build.in_kind(total_name):
            feasible = [
                v for v in build.shape.union[total_name].get("enum", []) if len(items) * lo <= v <= len(items) * hi
            ]
            if not feasible:
                raise InvalidArgument(f"rule {rule.id!r}: no {total_name} fits {len(items)} shots")
            build.body[total_name] = total = int(draw(st.sampled_from(feasible)))
        else:
            raise InvalidArgument(f"rule {rule.id!r}: {len(items)} shots cannot add up to {total_name}={total}")
    for item, part in zip(items, draw(_composition(total, len(items), lo, hi)), strict=True):
        item[item_field] = part


def _summed_items(shape: _Shape) -> dict[str, Rule]:
    return {r.spec["items"]: r for r in shape.sums}


@functools.cache
def _item_values(shape: _Shape, name: str, summed_field: str) -> tuple[SearchStrategy[Body], str | None]:
    """Items of the summed array without the summed field (composed later), and the name of
    their text field (what ``prompts`` narrows)."""
    item_schema = dict(shape.union[name].get("items", {}))
    props = dict(item_schema.get("properties", {}))
    props.pop(summed_field)
    text_field = next((k for k, v in props.items() if v.get("type") == "string"), None)
    item_schema["properties"] = props
    item_schema["required"] = [r for r in item_schema.get("required", []) if r in props]
    return field_values(item_schema, f"properties/{name}/items", shape.image_values), text_field


def _items(
    draw: DrawFn, shape: _Shape, name: str, rule: Rule, count: int, prompts: SearchStrategy[str] | None
) -> list[Body]:
    values, text_field = _item_values(shape, name, rule.spec["item_field"])
    lo, _hi = _item_range(rule, shape)
    out = []
    for _ in range(count):
        item = draw(values)
        if prompts is not None and text_field is not None:
            item[text_field] = draw(prompts)
        item[rule.spec["item_field"]] = lo
        out.append(item)
    return out


@dataclass(frozen=True)
class Pins:
    """What a case (or the caller) fixes before the builder draws the rest."""

    fields: Mapping[str, Any] = field(default_factory=dict)  # name -> value | ABSENT | strategy
    kind: Any = None  # str | strategy | None
    count: Any = None  # int | strategy | None: items of the summed array
    prompts: SearchStrategy[str] | None = None
    skip_rule: str | None = None
    foreign: bool = False  # allow pinned fields outside the kind's schema (before_schema cases)


def _draw_kind(draw: DrawFn, shape: _Shape, pinned: Mapping[str, Any], pins: Pins) -> str:
    present = {k for k, v in pinned.items() if v is not ABSENT}
    absent = {k for k, v in pinned.items() if v is ABSENT}
    candidates = [
        kind
        for kind in shape.kinds
        if not absent & shape.required[kind] and (pins.foreign or present <= set(shape.props[kind]))
    ]
    if pins.kind is not None:
        wanted = draw(as_strategy(pins.kind))
        if wanted not in shape.kinds:
            raise InvalidArgument(f"unknown request kind {wanted!r}; {shape.model.name} has {list(shape.kinds)}")
        candidates = [k for k in candidates if k == wanted]
    if pins.foreign:
        # a before-schema case: prefer a kind whose schema does not take the foreign field
        narrow = [k for k in candidates if not present <= set(shape.props[k])]
        candidates = narrow or candidates
    if not candidates:
        raise InvalidArgument(
            f"no request kind of {shape.model.name} takes fields {sorted(present)} without {sorted(absent)}"
        )
    return str(draw(choices(tuple(candidates))))


@st.composite
def build_body(draw: DrawFn, shape: _Shape, pins: Pins) -> Body:
    """A body the contract accepts (except for ``pins.skip_rule``), honouring ``pins``."""
    model = shape.model
    pinned: dict[str, Any] = {}
    for name, value in pins.fields.items():
        if name not in shape.union:
            raise InvalidArgument(f"{model.name} has no field {name!r}; its fields are {sorted(shape.union)}")
        drawn = draw(as_strategy(value))
        pinned[name] = drawn.value if isinstance(drawn, ImagePayload) else drawn
    kind = _draw_kind(draw, shape, pinned, pins)
    for name in shape.props[kind]:
        shape.field_strategy(name)  # refuses a schema keyword it cannot honour, pinned or not
    summed = _summed_items(shape)
    count = None if pins.count is None else draw(as_strategy(pins.count))
    body: Body = {}
    for name, schema in shape.props[kind].items():
        if name in pinned:
            if pinned[name] is not ABSENT:
                body[name] = pinned[name]
        elif name in summed:
            lo, hi = int(schema.get("minItems", 1)), int(schema.get("maxItems", 6))
            n = count if count is not None else draw(integers(lo, hi))
            body[name] = _items(draw, shape, name, summed[name], n, pins.prompts)
        elif name in shape.required[kind] or draw(BOOLEANS):
            body[name] = draw(shape.field_strategy(name))
    for name, value in pinned.items():
        if name not in body and value is not ABSENT:
            body[name] = value  # a foreign field of a before-schema case
    build = _Build(shape, kind, body, set(pinned), count_pinned=count is not None)
    for _ in range(3):
        _repair(draw, build, pins.skip_rule)
        for rule in shape.sums:
            if rule.id != pins.skip_rule:
                _compose(draw, build, rule)
        if not any(_rule_broken(r, build) for r in shape.requires if r.id != pins.skip_rule):
            return build.body
    raise InvalidArgument(f"could not build a body that satisfies every rule of {model.name}")


# -- valid requests --------------------------------------------------------------------------


@st.composite
def _valid(draw: DrawFn, model: Any, pins: Pins) -> Body:
    name = model if isinstance(model, str) else str(draw(model))
    return draw(build_body(shape_of(resolve_model(name)), pins))


def valid_requests(
    model: str | SearchStrategy[str] | None = None,
    *,
    kinds: str | SearchStrategy[str] | None = None,
    shot_counts: int | SearchStrategy[int] | None = None,
    prompts: str | SearchStrategy[str] | None = None,
    **fields: Any,
) -> SearchStrategy[Body]:
    """Create-request bodies the contract accepts (HTTP 200 from the fake), built by construction.

    Text-to-video and image-to-video (``kinds``), single-shot and multi-shot (``customize``
    and ``intelligence``), every optional field present or absent, shot durations that add up
    to ``duration``, prompts from one character up to the length limit in real Unicode (no
    lone surrogates), images that pass every image rule (see :func:`images`).

    Narrow it with keyword arguments, each a fixed value or a strategy: ``kinds``
    (``"text2video"``/``"image2video"``), ``shot_counts`` (items of ``multi_prompt``),
    ``prompts`` (each shot's prompt), and any top-level field of the model's form by its wire
    name -- ``mode="pro"``, ``sound="on"``, ``multi_shot=True``, ``duration=10``,
    ``image=images(encodings="url")``, or ``image_tail=ABSENT`` to leave a field out.
    Pinned values are kept as given; the other fields are chosen so every named rule holds.
    Contradictory pins (``sound="on", mode="std"``) raise ``InvalidArgument`` when drawn,
    naming the rule.

    Shrinks towards text-to-video with only the required fields, one shot, the shortest
    prompt, and the first value of each enum.

    >>> from hypothesis import given
    >>> @given(valid_requests(sound="on"))
    ... def test(body): assert body["mode"] == "pro"
    >>> test()
    """
    pins = Pins(
        fields=fields,
        kind=kinds,
        count=shot_counts,
        prompts=None if prompts is None else as_strategy(prompts),
    )
    return _valid(model if model is not None else model_names(), pins)


# -- invalid requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """How the fake must refuse an invalid request, from the contract's error catalogue.

    ``case`` names what the request breaks: a rule id of ``rules.json``
    (``"sound.requires_pro"``) or ``"schema:<pointer>"`` of the schema keyword broken.
    ``rule`` is the rule id the fake reports (in the message, ``"(rule <id>)"``): the same as
    ``case`` except where the fake checks the keyword earlier under its own name (an unknown
    field: ``"unknown_field"``; an unknown model: ``"model.known"``; a body that is not an
    object: ``"body.object"``). ``status``/``code`` are the catalogue's for ``error``.
    ``strict``: only a fake in strict mode refuses it (unknown fields).

    >>> Rejection("sound.requires_pro", "sound.requires_pro", "sound", 400, "invalid_request",
    ...           "rule_violation").diff(400, {"error": {"code": "invalid_request", "param": "sound",
    ...           "message": "Invalid value for 'sound': sound=on requires mode=pro (rule sound.requires_pro)",
    ...           "type": "invalid_request_error"}})
    []
    """

    case: str
    rule: str
    param: str | None
    status: int
    code: str | int
    error: str
    strict: bool = False
    kind: str | None = None

    def diff(self, status: int, body: Any) -> list[str]:
        """What differs between this label and an actual answer (empty when it matches)."""
        problems = []
        if status != self.status:
            problems.append(f"status {status} != {self.status}")
        error = body.get("error") if isinstance(body, Mapping) else None
        if not isinstance(error, Mapping):
            return [*problems, f"no error object in {body!r:.200}"]
        if error.get("code") != self.code:
            problems.append(f"code {error.get('code')!r} != {self.code!r}")
        if error.get("param") != self.param:
            problems.append(f"param {error.get('param')!r} != {self.param!r}")
        template = load_contract().errors[self.error].message
        if "{rule}" in template and f"(rule {self.rule})" not in str(error.get("message")):
            problems.append(f"message {error.get('message')!r} does not name rule {self.rule!r}")
        return problems


Builder = Callable[[DrawFn, str], tuple[Any, Rejection]]


@dataclass(frozen=True)
class Case:
    """One way to break the contract: its id, the kinds it applies to, and how to build it."""

    id: str
    kinds: tuple[str, ...]
    build: Builder
    strict: bool = False


def _rejection(case: str, rule: str, param: str | None, error: str, kind: str, *, strict: bool = False) -> Rejection:
    spec = load_contract().errors[error]
    return Rejection(case, rule, param, spec.http_status, spec.code, error, strict, kind)


# named rules


def _requires_case(model: ModelContract, rule: Rule) -> Case | None:
    shape = shape_of(model)
    try:
        when = conjuncts(rule.spec["when"], rule)
        then = conjuncts(rule.spec["then"], rule)
    except InvalidArgument:
        return None
    foreign = rule.phase == "before_schema"
    needed = {name for op, name, _ in when if op == "present"}
    dropped = {name for op, name, _ in then if op == "present"}
    # a before-schema rule is checked on the raw body, so its fields may lie outside the kind
    kinds = tuple(
        k
        for k in shape.kinds
        if (foreign or needed <= set(shape.props[k])) and not (foreign and dropped & shape.required[k])
    )

    def build(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
        fields: dict[str, Any] = {}
        count: Any = None
        for op, name, arg in when:
            if op == "present":
                fields[name] = shape.field_strategy(name)
            elif op == "const":
                default = model.defaults.get(name, ABSENT)
                fields[name] = st.sampled_from([arg, ABSENT]) if json_equal(default, arg) else st.just(arg)
            else:
                count = st.integers(1, arg)
        op, name, arg = draw(st.sampled_from(then))
        if op == "present":
            fields[name] = ABSENT
        elif op == "const":
            others: list[Any] = _alternatives(shape.union[name], arg)
            default = model.defaults.get(name, ABSENT)
            if default is not ABSENT and not json_equal(default, arg):
                others.append(ABSENT)
            fields[name] = st.sampled_from(others)
        else:
            count = st.integers(arg + 1, int(shape.union[name].get("maxItems", arg + 1)))
        pins = Pins(fields=fields, kind=kind, count=count, skip_rule=rule.id, foreign=foreign)
        body = draw(build_body(shape_of(model), pins))
        return body, _rejection(rule.id, rule.id, rule.param, rule.error, kind)

    return Case(rule.id, kinds, build) if kinds else None


def _sum_case(model: ModelContract, rule: Rule) -> Case:
    shape = shape_of(model)

    def build(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
        body = draw(build_body(shape_of(model), Pins(kind=kind)))
        items = body[rule.spec["items"]]
        lo, hi = _item_range(rule, shape)
        at = draw(st.integers(0, len(items) - 1))
        current = items[at][rule.spec["item_field"]]
        choices = [v for v in range(lo, hi + 1) if v != current]
        items[at][rule.spec["item_field"]] = draw(st.sampled_from(choices))
        return body, _rejection(rule.id, rule.id, rule.param, rule.error, kind)

    return Case(rule.id, shape.kinds, build)


def _image_case(model: ModelContract, rule: Rule) -> Case | None:
    shape = shape_of(model)
    labels = problems_for_check(str(rule.spec.get("check")))
    if not labels or rule.param not in shape.union:
        return None
    kinds = tuple(k for k in shape.kinds if rule.param in shape.props[k])

    def build(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
        bad = images(model.name, problems=st.sampled_from(labels)).map(lambda p: p.value)
        body = draw(build_body(shape_of(model), Pins(fields={rule.param: bad}, kind=kind)))
        return body, _rejection(rule.id, rule.id, rule.param, rule.error, kind)

    return Case(rule.id, kinds, build)


# schema keywords

_JSON_TYPES: Final = ("null", "boolean", "integer", "number", "string", "array", "object")


def _values_of_type(name: str, schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    if name == "null":
        return st.none()
    if name == "boolean":
        return st.booleans()
    if name == "integer":
        return st.integers(-(10**6), 10**6)
    if name == "number":
        # not an integer (1.0 counts as one in JSON Schema), and inside the schema's range so
        # that only ``type`` is broken, not ``minimum``/``maximum`` as well
        lo = math.ceil(schema.get("minimum", -(10**6)))
        hi = max(lo, math.floor(schema.get("maximum", 10**6)) - 1)
        return st.integers(lo, hi).map(lambda i: i + 0.5)
    if name == "string":
        return st.text(max_size=8)
    if name == "array":
        return st.lists(st.integers(0, 9), max_size=3)
    return st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 9), max_size=2)


def wrong_types(expected: str | Sequence[str], schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    """JSON values whose type the schema ``type`` refuses (and nothing else in ``schema``)."""
    allowed = {expected} if isinstance(expected, str) else set(expected)
    if "number" in allowed:
        allowed.add("integer")
    refused = [t for t in _JSON_TYPES if t not in allowed]
    return st.sampled_from(refused).flatmap(lambda name: _values_of_type(name, schema))


def _same_type_other(schema: Mapping[str, Any], avoid: Sequence[Any]) -> SearchStrategy[Any]:
    """Values of the schema's type that are none of ``avoid`` (enum or const breakers)."""
    sample = next(iter(avoid), None)
    kind = schema.get("type") or (
        "string" if isinstance(sample, str) else "boolean" if isinstance(sample, bool) else "number"
    )
    if kind == "string":
        variants = [v for a in avoid if isinstance(a, str) for v in (a.lower(), a.upper(), a.title(), f" {a}", f"{a}s")]
        fixed = [v for v in dict.fromkeys(variants) if v not in avoid]
        drawn = st.text(min_size=1, max_size=12).map(lambda s: s if s not in avoid else s + "_")
        return st.one_of(st.sampled_from(fixed), drawn) if fixed else drawn
    if kind == "boolean":
        others = [v for v in (False, True) if not any(json_equal(v, a) for a in avoid)]
        return st.sampled_from(others)

    def shift(value: Any) -> Any:
        while any(json_equal(value, a) for a in avoid):
            value += 1
        return value

    base = numbers({"type": kind})
    return base.map(shift)


def _beyond(schema: Mapping[str, Any], keyword: str) -> SearchStrategy[Any]:
    """Numbers just past ``minimum``/``maximum``, of the schema's own type."""
    bound = schema[keyword]
    if keyword == "minimum":
        ints = st.integers(math.ceil(bound) - 10**6, math.ceil(bound) - 1)
        floats = st.floats(bound - 1e6, bound, exclude_max=True, allow_nan=False, allow_infinity=False)
    else:
        ints = st.integers(math.floor(bound) + 1, math.floor(bound) + 10**6)
        floats = st.floats(bound, bound + 1e6, exclude_min=True, allow_nan=False, allow_infinity=False)
    return ints if schema.get("type") == "integer" else st.one_of(ints, floats)


def _unknown_name(known: Sequence[str]) -> SearchStrategy[str]:
    """Field names the schema does not know: typos of known ones, and drawn names."""

    def avoid(name: str) -> str:
        while name in known:
            name += "_"
        return name

    typos = st.sampled_from(list(known)).flatmap(
        lambda k: st.sampled_from([k[:-1] or "x", k + "s", k.replace("_", ""), "x_" + k, k.title()])
    )
    return st.one_of(typos, st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)).map(avoid)


def _locate(draw: DrawFn, body: Any, path: tuple[str | int, ...]) -> tuple[Any, list[str | int]]:
    """The container holding ``path`` in ``body`` (an item index drawn for :data:`ITEM`), and the
    concrete path. The last step may be missing (it is about to be set)."""
    concrete: list[str | int] = []
    node = body
    for step in path[:-1]:
        if step == ITEM:
            step = draw(st.integers(0, len(node) - 1))
        concrete.append(step)
        node = node[step]
    return node, concrete


def _schema_case(model: ModelContract, site: Site, kinds: tuple[str, ...]) -> Case | None:
    keyword, value = site.keyword, site.value
    shape = shape_of(model)
    field_schema = site.schema

    def mutate(
        make: Callable[[DrawFn, Any], tuple[Any, str | None]],
        rule: str | None = None,
        error: str = "invalid_parameter",
        strict: bool = False,
    ) -> Builder:
        def build(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
            body = draw(build_body(shape_of(model), Pins(kind=kind)))
            new_body, param = make(draw, body)
            return new_body, _rejection(site.id, rule or site.id, param, error, kind, strict=strict)

        return build

    def set_value(values: SearchStrategy[Any]) -> Builder:
        def make(draw: DrawFn, body: Any) -> tuple[Any, str | None]:
            container, concrete = _locate(draw, body, site.path)
            last = site.path[-1]
            if last == ITEM:
                last = draw(st.integers(0, len(container) - 1))
            container[last] = draw(values)
            return body, format_param([*concrete, last])

        return mutate(make)

    if keyword == "type":
        if not site.path:  # the body itself: the fake refuses a non-object before any schema
            values = wrong_types(value, field_schema)

            def build_top(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
                # null is left out: a client that sends no body at all gets a different message
                return draw(values.filter(lambda v: v is not None)), _rejection(
                    site.id, load_contract().request_rule("body_object"), None, "invalid_json", kind
                )

            return Case(site.id, kinds, build_top)
        return Case(site.id, kinds, set_value(wrong_types(value, field_schema)))
    if keyword == "const":
        if json_equal(value, model.name):  # the model selector: another value is another model
            known = set(load_contract().models)
            names = st.sampled_from(["kling-v2-5-turbo", "kling-v1", "Kling-V2-6", "kling-v2.6"]) | st.text(
                min_size=1, max_size=20
            )
            others = names.map(lambda n: n if n not in known else n + "-x")

            def build_model(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
                body = draw(build_body(shape_of(model), Pins(kind=kind)))
                body[str(site.path[-1])] = draw(others)
                rule = load_contract().request_rule("model_known")
                return body, _rejection(site.id, rule, str(site.path[-1]), "model_not_found", kind)

            return Case(site.id, kinds, build_model)
        return Case(site.id, kinds, set_value(_same_type_other(field_schema, [value])))
    if keyword == "enum":
        return Case(site.id, kinds, set_value(_same_type_other(field_schema, list(value))))
    if keyword in ("minimum", "maximum"):
        return Case(site.id, kinds, set_value(_beyond(field_schema, keyword)))
    if keyword == "minLength":
        return Case(site.id, kinds, set_value(long_texts(0, int(value) - 1))) if value > 0 else None
    if keyword == "maxLength":
        return Case(site.id, kinds, set_value(long_texts(int(value) + 1, int(value) + 16)))
    if keyword in ("minItems", "maxItems"):
        item = field_schema.get("items", {})
        lo, hi = (0, int(value) - 1) if keyword == "minItems" else (int(value) + 1, int(value) + 3)
        if hi < lo:
            return None
        items = st.lists(field_values(item, site.id, shape.image_values), min_size=lo, max_size=hi)
        return Case(site.id, kinds, set_value(items))
    if keyword == "required":
        reachable = [n for n in value if _removable(model, site, kinds, n)]
        if not reachable:
            return None

        def remove(draw: DrawFn, body: Any) -> tuple[Any, str | None]:
            container, concrete = _locate(draw, body, (*site.path, "?"))
            name = draw(st.sampled_from(reachable))
            container.pop(name, None)
            return body, format_param([*concrete, name])

        return Case(site.id, kinds, mutate(remove))
    if keyword == "additionalProperties" and value is False:
        members = list(field_schema.get("properties", {}))
        values = st.one_of(st.none(), st.booleans(), st.integers(0, 9), st.text(max_size=8))

        def add(draw: DrawFn, body: Any) -> tuple[Any, str | None]:
            container, concrete = _locate(draw, body, (*site.path, "?"))
            name = draw(_unknown_name(members))
            container[name] = draw(values)
            return body, format_param([*concrete, name])

        rule = load_contract().request_rule("unknown_field")
        return Case(site.id, kinds, mutate(add, rule=rule, error="unknown_field", strict=True), strict=True)
    return None


def _removable(model: ModelContract, site: Site, kinds: tuple[str, ...], name: str) -> bool:
    """Whether taking ``name`` out leaves a body of the same kind (removing the field that
    selects the kind, ``image``, makes another kind of request, not a missing field)."""
    if site.path:
        return True
    shape = shape_of(model)
    return all(model.mode_for({k: "" for k in shape.props[kind] if k != name}) == kind for kind in kinds)


@functools.cache
def cases(model: ModelContract) -> Mapping[str, Case]:
    """Every way :func:`invalid_requests` can break ``model``'s contract, by case id."""
    shape = shape_of(model)
    out: dict[str, Case] = {}
    for rule in model.rules:
        case: Case | None = None
        if rule.kind == "requires":
            case = _requires_case(model, rule)
        elif rule.kind == "sum_equals":
            case = _sum_case(model, rule)
        elif rule.kind == "image":
            case = _image_case(model, rule)
        if case is not None:
            out[case.id] = case
    sites: dict[str, tuple[Site, list[str]]] = {}
    for kind in shape.kinds:
        for site in keyword_sites(model.request_schemas[kind]):
            sites.setdefault(site.id, (site, []))[1].append(kind)
    for site_id, (site, kinds) in sites.items():
        found = _schema_case(model, site, tuple(kinds))
        if found is not None:
            out[site_id] = found
    return out


@st.composite
def _invalid(draw: DrawFn, model: Any, rules: Any, kinds: Any, strict: bool) -> tuple[Any, Rejection]:
    contract = resolve_model(draw(as_strategy(model)))
    table = cases(contract)
    if rules is None:
        ids = sorted(k for k, c in table.items() if strict or not c.strict)
        case_id = draw(st.sampled_from(ids))
    else:
        case_id = draw(as_strategy(rules))
        if case_id not in table:
            raise InvalidArgument(f"no invalid-request generator for {case_id!r}; known: {sorted(table)}")
        if table[case_id].strict and not strict:
            raise InvalidArgument(f"{case_id!r} is refused only by a strict fake: pass strict=True")
    case = table[case_id]
    usable = list(case.kinds)
    if kinds is not None:
        wanted = draw(as_strategy(kinds))
        usable = [k for k in usable if k == wanted]
        if not usable:
            raise InvalidArgument(f"{case_id!r} does not apply to {wanted!r} requests (only {list(case.kinds)})")
    return case.build(draw, draw(st.sampled_from(usable)))


def invalid_requests(
    model: str | SearchStrategy[str] | None = None,
    *,
    rules: str | SearchStrategy[str] | None = None,
    kinds: str | SearchStrategy[str] | None = None,
    strict: bool = False,
) -> SearchStrategy[tuple[Any, Rejection]]:
    """``(body, rejection)`` pairs: a create body that breaks exactly one rule, and the answer
    the fake must give (:class:`Rejection`: status, code, ``param`` and rule id).

    The cases are derived from the contract: one per named rule of ``rules.json``
    (cross-field ``requires`` rules, the shot-duration sum, each image check) and one per
    schema keyword found by walking the derived request schemas (type, enum, const,
    minimum/maximum, minLength/maxLength, minItems/maxItems, required and, with
    ``strict=True``, additionalProperties). Everything else in the body is valid, so the
    broken rule is the only one, and stays the only one while Hypothesis shrinks.

    ``rules`` narrows to case ids (a rule id or ``"schema:<pointer>"``, see
    :func:`invalid_case_ids`), ``kinds`` to ``"text2video"``/``"image2video"``. With
    ``strict=True`` unknown-field cases are included; they need a fake started with
    ``strict=True``.

    Shrinks towards the first case id in sorted order, with the rest of the body shrinking as
    :func:`valid_requests` does.

    >>> from hypothesis import given
    >>> @given(invalid_requests(rules="sound.requires_pro"))
    ... def test(case): assert case[1].param == "sound" and case[0]["sound"] == "on"
    >>> test()
    """
    return _invalid(model if model is not None else model_names(), rules, kinds, strict)


def invalid_case_ids(model: str | ModelContract | None = None, *, strict: bool = True) -> frozenset[str]:
    """The case ids :func:`invalid_requests` can generate for ``model`` (a name or a
    :class:`~mockserver.contract.ModelContract`; default: every model of the contract).

    Compare it with the contract's rule ids and schema keywords to find rules that have no
    generator (the test suite does).

    >>> "sound.requires_pro" in invalid_case_ids()
    True
    """
    if isinstance(model, ModelContract):
        models = [model]
    else:
        models = [resolve_model(n) for n in ([model] if model is not None else sorted(load_contract().models))]
    out: set[str] = set()
    for found in models:
        out.update(k for k, c in cases(found).items() if strict or not c.strict)
    return frozenset(out)
