"""Create-request bodies: valid ones by construction, and labelled ones that break one rule.

How a valid body is built (no filtering anywhere), for any face:

1. pick the request kind (``text2video`` / ``image2video``) whose derived schema can hold the
   pinned fields; every property of that schema is drawn from its own keywords, optional
   ones present or absent; the model is named by the face's model field when it is not the
   face's default model;
2. *repair* the named ``requires`` rules in contract order (those of the kind, see ``modes``):
   a broken rule is made to hold by making its ``then`` true (``mode = "pro"``) or its
   ``when`` false (``sound = "off"``), with :mod:`~kling_testkit._strategies.solver` editing
   the body; a field the caller pinned is never changed, and a field an earlier repair set is
   changed only when nothing else works;
3. *compose* every ``sum_equals`` rule that applies (its ``when``): the item field (shot
   ``duration``) is drawn as a composition of the total (``duration``), each part within the
   item schema's range, in the representation the item already has (``"3"`` or ``3``).

An invalid case starts from the same builder and breaks one rule with *hard* locks (so the
repairs that follow cannot undo it), or builds a valid body and breaks one schema keyword at
one place. The label comes from the face's error catalogue.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn, SearchStrategy

from kling_testkit._forms import json_equal, top_fields
from kling_testkit._strategies.common import (
    ABSENT,
    BOOLEANS,
    as_strategy,
    choices,
    contract_for,
    draw_model,
    face_name,
    integers,
)
from kling_testkit._strategies.images import (
    ImagePayload,
    available_problems,
    encodings_for,
    images,
    problems_for_check,
)
from kling_testkit._strategies.schema import (
    ITEM,
    JSON_TYPES,
    Site,
    field_values,
    keyword_sites,
    long_texts,
    not_matching,
    types_of,
)
from kling_testkit._strategies.solver import (
    MISSING,
    Body,
    Path,
    freeze,
    get_at,
    make,
    other_values,
    repair_one,
    unsupported,
    valid,
)
from kling_testkit._strategies.wire import JSON, MULTIPART, EncodedBody, encode_form
from mockserver.contract import Contract, ModelContract, Operation, Rule, load_contract
from mockserver.faces import face_names
from mockserver.http import dump_json
from mockserver.validation import format_param
from mockserver.validation.request import as_number

JsonBody = dict[str, Any]

# -- the model's shape, read once per model --------------------------------------------------


class _Shape:
    """A model's request shape on one face, read once. A plain class on purpose: Hypothesis
    prints dataclass arguments of strategies field by field, and this one holds the contract."""

    __slots__ = (
        "_strategies",
        "callback_field",
        "contract",
        "image_values",
        "kinds",
        "model",
        "props",
        "required",
        "requires",
        "restrict",
        "selectors",
        "sums",
        "union",
        "variant",
        "warnings",
    )

    def __init__(
        self, contract: Contract, model: ModelContract, variant: str = "", restrict: tuple[tuple[str, Any], ...] = ()
    ) -> None:
        self.contract = contract
        self.model = model
        self.variant = variant
        #: fields pinned in every body built on this shape (name -> value, ABSENT or strategy):
        #: a form mapped onto this model can send only some of its fields
        self.restrict: Mapping[str, Any] = dict(restrict)
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
        self.requires: tuple[Rule, ...] = tuple(r for r in model.rules if r.kind == "requires" and not r.warning)
        #: rules that only raise a contract warning (repaired when a clean body is asked for)
        self.warnings: tuple[Rule, ...] = tuple(r for r in model.rules if r.kind == "requires" and r.warning)
        self.sums: tuple[Rule, ...] = tuple(r for r in model.rules if r.kind == "sum_equals")
        spec = contract.request
        #: the fields that name the model, in the order the fake reads them
        self.selectors: tuple[str, ...] = (spec.model_field, *spec.model_aliases)
        # variants: "clean" -- images the fake inspects (a URL's content goes unchecked, with a
        # contract warning) and no callback to a host the fake would not call; "url" -- cheap
        # image URLs, for requests only rendered back (responses)
        limits = model.image_limits
        encodings = {"": None, "clean": st.sampled_from([e for e in encodings_for(limits) if e != "url"]), "url": "url"}
        self.image_values: SearchStrategy[str] = images(
            model.name, face=contract.face, encodings=encodings[variant]
        ).map(lambda p: p.value)
        callbacks = contract.index.get("callbacks", {})
        self.callback_field: str | None = callbacks.get("field") if variant == "clean" else None
        self._strategies: dict[int, tuple[Mapping[str, Any], SearchStrategy[Any]]] = {}

    def strategy(self, path: Path, schema: Mapping[str, Any]) -> SearchStrategy[Any]:
        """Values of ``schema`` (the member at ``path``), cached for the contract's own schemas."""
        if path == (self.callback_field,):
            return st.just("")  # no callback: a URL the fake would not call raises a warning
        found = self._strategies.get(id(schema))
        if found is not None and found[0] is schema:
            return found[1]
        where = "properties/" + "/".join("items" if isinstance(p, int) else str(p) for p in path)
        made = field_values(schema, where, self.image_values)
        if _in_contract(self, schema):
            self._strategies[id(schema)] = (schema, made)
        return made

    def __repr__(self) -> str:
        return f"<shape of {self.model.name} on {self.contract.face}{' ' + self.variant if self.variant else ''}>"


def _in_contract(shape: _Shape, schema: Mapping[str, Any]) -> bool:
    return id(schema) in _schema_ids(shape.model)


@functools.cache
def _schema_ids(model: ModelContract) -> frozenset[int]:
    found: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            found.add(id(node))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for schema in model.request_schemas.values():
        walk(schema)
    return frozenset(found)


@functools.cache
def _shape(
    contract: Contract, model: ModelContract, variant: str = "", restrict: tuple[tuple[str, Any], ...] = ()
) -> _Shape:
    return _Shape(contract, model, variant, restrict)


def contract_of(model: ModelContract, face: str | None = None) -> Contract:
    """The contract a model belongs to: ``face``'s, else the registered face that holds this
    very object, else the default face's (a test's modified copy of a model)."""
    if face is not None:
        return contract_for(face)
    for name in face_names():
        contract = load_contract(name)
        if contract.models.get(model.name) is model:
            return contract
    return contract_for(None)


def shape_of(model: ModelContract, face: str | None = None) -> _Shape:
    """The request shape of ``model`` (on ``face``, or the face it belongs to)."""
    return _shape(contract_of(model, face), model)


# -- rules ------------------------------------------------------------------------------------


def _view(body: JsonBody, shape: _Shape, rule: Rule) -> JsonBody:
    return body if rule.phase == "before_schema" else {**shape.model.defaults, **body}


def rule_broken(rule: Rule, body: JsonBody, shape: _Shape) -> bool:
    """Whether ``body`` breaks ``rule`` (requires or sum_equals) as the fake checks it."""
    view = _view(body, shape, rule)
    if rule.kind == "requires":
        assert rule.compiled is not None
        when, then = rule.compiled
        return bool(when.is_valid(view) and not then.is_valid(view))
    if rule.kind == "sum_equals":
        return _sum_broken(rule, view)
    return False


def _sum_applies(rule: Rule, view: JsonBody) -> bool:
    return rule.applies is None or bool(rule.applies.is_valid(view))


def _sum_broken(rule: Rule, view: JsonBody) -> bool:
    spec = rule.spec
    if not _sum_applies(rule, view) or spec["total"] not in view:
        return False
    items = view.get(spec["items"])
    if not isinstance(items, list):
        return False
    actual = sum(as_number(item.get(spec["item_field"], 0)) for item in items if isinstance(item, Mapping))
    return not math.isclose(actual, as_number(view[spec["total"]]))


def _check_rule_form(rule: Rule) -> None:
    if rule.kind == "requires":
        bad = unsupported(rule.spec["when"]) | unsupported(rule.spec["then"])
        if bad:
            raise InvalidArgument(
                f"rule {rule.id!r} uses {sorted(bad)}, which kling_testkit.strategies cannot construct yet; "
                "extend kling_testkit/_strategies/solver.py"
            )


# -- the builder ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pins:
    """What a case (or the caller) fixes before the builder draws the rest."""

    fields: Mapping[str, Any] = field(default_factory=dict)  # name -> value | ABSENT | strategy
    kind: Any = None  # str | strategy | None
    count: Any = None  # int | strategy | None: items of the summed array
    prompts: SearchStrategy[str] | None = None
    skip_rule: str | None = None
    foreign: bool = False  # allow pinned fields outside the kind's schema (before_schema cases)
    clean: bool = False  # also repair the rules that only warn
    variant: str = ""  # the shape variant ("url": image URLs only)


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


def _summed_items(shape: _Shape) -> dict[str, Rule]:
    return {r.spec["items"]: r for r in shape.sums}


def _item_range(rule: Rule, shape: _Shape, kind: str) -> tuple[int, int | None, tuple[str, ...]]:
    """The summed item field's bounds and the JSON types it may be sent as."""
    schema = shape.props[kind][rule.spec["items"]].get("items", {})
    item = schema.get("properties", {}).get(rule.spec["item_field"], {})
    kinds = tuple(k for k in types_of(item) if k in ("integer", "string"))
    coerce = rule.spec.get("coerce") == "integer"
    if "integer" not in kinds and not (coerce and kinds):
        raise InvalidArgument(f"rule {rule.id!r}: the summed item field needs an integer schema (or coerce)")
    if "minimum" not in item:
        raise InvalidArgument(f"rule {rule.id!r}: the summed item field needs a minimum")
    high = item.get("maximum")
    return int(item["minimum"]), None if high is None else int(high), kinds if coerce else ("integer",)


def _spelled(value: int, kinds: Sequence[str], current: Any) -> Any:
    """``value`` as the item already spells it (a string ``"3"`` or an integer)."""
    if isinstance(current, str) and "string" in kinds:
        return str(value)
    return value if "integer" in kinds else str(value)


@functools.cache
def _item_values(shape: _Shape, kind: str, name: str, summed_field: str) -> tuple[SearchStrategy[JsonBody], str | None]:
    """Items of the summed array without the summed field (composed later), and the name of
    their text field (what ``prompts`` narrows)."""
    item_schema = dict(shape.props[kind][name].get("items", {}))
    props = dict(item_schema.get("properties", {}))
    props.pop(summed_field)
    text_field = next((k for k, v in props.items() if "string" in types_of(v) and len(types_of(v)) == 1), None)
    item_schema["properties"] = props
    item_schema["required"] = [r for r in item_schema.get("required", []) if r in props]
    return field_values(item_schema, f"properties/{name}/items", shape.image_values), text_field


def _items(
    draw: DrawFn, shape: _Shape, kind: str, rule: Rule, count: int, prompts: SearchStrategy[str] | None
) -> list[JsonBody]:
    values, text_field = _item_values(shape, kind, rule.spec["items"], rule.spec["item_field"])
    lo, _hi, kinds = _item_range(rule, shape, kind)
    out = []
    for _ in range(count):
        item = draw(values)
        if prompts is not None and text_field is not None:
            item[text_field] = draw(prompts)
        item[rule.spec["item_field"]] = _spelled(lo, kinds, "" if draw(choices(kinds)) == "string" else 0)
        out.append(item)
    return out


def start(draw: DrawFn, shape: _Shape, pins: Pins) -> tuple[str, Body]:
    """Choose the kind and draw every field of it (pinned ones as given): the raw material the
    repairs turn into a valid body."""
    model = shape.model
    pinned: dict[str, Any] = {}
    for name, given in {**shape.restrict, **pins.fields}.items():
        if name not in shape.union:
            raise InvalidArgument(f"{model.name} has no field {name!r}; its fields are {sorted(shape.union)}")
        drawn = draw(as_strategy(given))
        pinned[name] = drawn.value if isinstance(drawn, ImagePayload) else drawn
    kind = _draw_kind(draw, shape, pinned, pins)
    for name, drawn in pinned.items():
        sub = shape.props[kind].get(name)
        if drawn is not ABSENT and sub is not None and not valid(sub, drawn):
            raise InvalidArgument(f"{name}={drawn!r:.80} is not a value the {kind} schema of {model.name} accepts")
    schema = model.request_schemas[kind]
    for name, sub in shape.props[kind].items():
        shape.strategy((name,), sub)  # refuses a schema keyword it cannot honour, pinned or not
    summed = _summed_items(shape)
    count = None if pins.count is None else draw(as_strategy(pins.count))
    value: JsonBody = {}
    b = Body(
        draw=draw,
        schema=schema,
        union=shape.union,
        defaults=model.defaults,
        value=value,
        strategy=shape.strategy,
        foreign=pins.foreign,
    )
    for name, sub in shape.props[kind].items():
        if name in pinned:
            if pinned[name] is not ABSENT:
                value[name] = pinned[name]
                b.hard.value.add((name,))
            else:
                b.hard.absent.add((name,))
        elif name in summed and (count is not None or name in shape.required[kind] or draw(BOOLEANS)):
            lo, hi = int(sub.get("minItems", 1)), int(sub.get("maxItems", 6))
            n = count if count is not None else draw(integers(lo, hi))
            value[name] = _items(draw, shape, kind, summed[name], n, pins.prompts)
            if count is not None:
                b.hard.length.add((name,))
                b.hard.present.add((name,))
        elif name in shape.required[kind] or draw(BOOLEANS):
            value[name] = draw(shape.strategy((name,), sub))
    for name, drawn in pinned.items():
        if name not in value and drawn is not ABSENT:
            value[name] = drawn  # a foreign field of a before-schema case
            b.hard.value.add((name,))
    if count is not None:
        # a pinned shot count means the shots count: the summed rule must apply
        for rule in shape.sums:
            if rule.spec["items"] in value and "when" in rule.spec:
                _hard(b, _applies(b, shape, kind, rule, pins.clean), f"{rule.id} to apply")
                freeze(b, rule.spec["when"])
    _select_model(b, shape, kind)
    return kind, b


def _applies(b: Body, shape: _Shape, kind: str, rule: Rule, clean: bool) -> Callable[[], bool]:
    """An edit making ``rule``'s condition hold; for a clean body, not through a value a warning
    rule on the same fields flags (Kling reads ``"true"`` as true, with a warning): the value
    is frozen, so no later repair could change it."""
    names = set(rule.spec["when"].get("properties", {}))
    related = [w for w in shape.warnings if w.applies_to(kind) and w.param.split(".")[0] in names]

    def flagged() -> bool:
        return clean and any(rule_broken(w, b.value, shape) for w in related)

    def edit() -> bool:
        if clean:
            # put each field the condition names to one of its values no warning flags (a
            # drawn "true" already satisfies the condition, so make alone would keep it)
            for name, sub in rule.spec["when"].get("properties", {}).items():
                options = [sub["const"]] if "const" in sub else list(sub.get("enum", ()))
                for option in options:
                    if name in b.value and b.value[name] == option and type(b.value[name]) is type(option):
                        if not flagged():
                            break
                    elif b.put((name,), option) and not flagged():
                        break
        return make(b, rule.spec["when"], (), True) and not flagged()

    return edit


def _hard(b: Body, edit: Callable[[], bool], what: str) -> None:
    b.record_hard = True
    try:
        if not b.attempt(edit):
            raise InvalidArgument(f"the narrowing arguments leave no way for {what}")
    finally:
        b.record_hard = False


def _select_model(b: Body, shape: _Shape, kind: str) -> None:
    """Name the model: a body without a model field is the face's default model's."""
    if any(name in b.value for name in shape.selectors):
        return
    if shape.model.name == shape.contract.request.default_model:
        return
    for name in shape.selectors:
        if name in shape.props[kind] and (name,) not in b.hard.absent:
            b.value[name] = shape.model.name
            b.hard.value.add((name,))
            return
    raise InvalidArgument(f"{shape.model.name} is not the default model: a body must name it ({shape.selectors[0]})")


def _rules_for(shape: _Shape, kind: str, skip: str | None, clean: bool) -> list[Rule]:
    return [r for r in _ordered_rules(shape, clean) if r.id != skip and r.applies_to(kind)]


@functools.cache
def _ordered_rules(shape: _Shape, clean: bool) -> tuple[Rule, ...]:
    rules = [*shape.requires, *(shape.warnings if clean else ())]
    order = {r.id: i for i, r in enumerate(shape.model.rules)}
    rules.sort(key=lambda r: order[r.id])
    for rule in rules:
        _check_rule_form(rule)
    return tuple(rules)


def repair(b: Body, shape: _Shape, rules: Sequence[Rule], *, lenient: bool = False) -> list[Rule]:
    """Make every rule of ``rules`` hold (first broken first), or raise InvalidArgument.

    ``lenient``: a rule (checked after the schema) that the hard locks contradict is left
    broken instead; the rules given up are returned.
    """
    given_up: list[Rule] = []
    active = list(rules)
    limit = 4 * (len(shape.union) + len(rules)) + 1
    for _ in range(limit):
        found = next((r for r in active if rule_broken(r, b.value, shape)), None)
        if found is None:
            return given_up
        b.with_defaults = found.phase != "before_schema"
        try:
            done = repair_one(b, found.spec["when"], found.spec["then"])
            if not done:
                # Dead end: an earlier repair set what this rule needs. Revise it.
                b.relaxed = True
                done = repair_one(b, found.spec["when"], found.spec["then"])
        finally:
            b.relaxed = False
            b.with_defaults = True
        if not done:
            if lenient and found.phase != "before_schema":
                active.remove(found)
                given_up.append(found)
                continue
            pinned = sorted(str(p[0]) for p in b.hard.value | b.hard.absent if p)
            raise InvalidArgument(
                f"the narrowing arguments contradict rule {found.id!r} ({found.message}); pinned: {pinned}"
            )
    raise InvalidArgument(f"could not satisfy the requires rules of {shape.model.name} (no fixed point)")


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


def compose(b: Body, shape: _Shape, kind: str, rule: Rule) -> None:
    """Make the summed item field add up to the total (if the rule applies to the body)."""
    spec = rule.spec
    items_name, item_field, total_name = spec["items"], spec["item_field"], spec["total"]
    view = b.view()
    items = b.value.get(items_name)
    if not isinstance(items, list) or not items or not _sum_applies(rule, view):
        return
    lo, high, kinds = _item_range(rule, shape, kind)
    raw_total = view.get(total_name)
    total_f = as_number(raw_total) if raw_total is not None else math.nan
    if not math.isfinite(total_f) or total_f != int(total_f):
        raise InvalidArgument(f"rule {rule.id!r}: {total_name} is {raw_total!r}; shots need a whole total")
    total = int(total_f)
    if not b.can_put((items_name, 0, item_field)) or any(
        not b.can_put((items_name, i, item_field)) for i in range(len(items))
    ):
        # the caller pinned the shots: only the total may follow them
        actual = sum(as_number(item.get(item_field, 0)) for item in items)
        if math.isclose(actual, total):
            return
        if actual == int(actual) and _put_total(b, shape, kind, total_name, int(actual), raw_total):
            return
        raise InvalidArgument(f"rule {rule.id!r}: the pinned {items_name} add up to {actual:g}, not {raw_total!r}")
    hi = high if high is not None else total
    n = len(items)
    if not n * lo <= total <= n * hi:
        sub = shape.props[kind][items_name]
        least = max(int(sub.get("minItems", 1)), math.ceil(total / hi) if hi else 1)
        most = min(int(sub.get("maxItems", n)), total // lo if lo else n)
        fits = least <= most
        target = min(max(n, least), most)
        longer = [*items, *(dict(items[-1]) for _ in range(max(0, target - n)))][:target]
        if not (fits and b.resize((items_name,), longer)):
            feasible = _feasible_totals(shape, kind, total_name, n, lo, high)
            if not feasible or not _put_total(b, shape, kind, total_name, b.draw(choices(tuple(feasible))), raw_total):
                raise InvalidArgument(f"rule {rule.id!r}: {n} shots cannot add up to {total_name}={raw_total!r}")
            total = int(as_number(b.view()[total_name]))
            hi = high if high is not None else total
        items = b.value[items_name]
    parts = b.draw(_composition(total, len(items), lo, hi))
    for item, part in zip(items, parts, strict=True):
        item[item_field] = _spelled(part, kinds, item.get(item_field))


def _feasible_totals(shape: _Shape, kind: str, name: str, n: int, lo: int, high: int | None) -> list[int]:
    values = shape.props[kind].get(name, {}).get("enum", [])
    totals = sorted({int(as_number(v)) for v in values if math.isfinite(as_number(v))})
    return [t for t in totals if n * lo <= t and (high is None or t <= n * high)]


def _put_total(b: Body, shape: _Shape, kind: str, name: str, total: int, current: Any) -> bool:
    values = [v for v in shape.props[kind].get(name, {}).get("enum", [total]) if as_number(v) == total]
    if not values:
        return False
    same = [v for v in values if type(v) is type(current)]
    return b.put((name,), (same or values)[0])


def settle(
    b: Body, shape: _Shape, kind: str, *, skip: str | None = None, clean: bool = False, lenient: bool = False
) -> None:
    """Repair and compose until every rule of the kind holds (but ``skip``). ``lenient``: rules
    the hard locks contradict are left broken (a schema case: the schema refuses first)."""
    rules = _rules_for(shape, kind, skip, clean)
    sums = [r for r in shape.sums if r.id != skip and r.applies_to(kind)]
    for _ in range(4):
        for rule in repair(b, shape, rules, lenient=lenient):
            rules.remove(rule)
        for rule in list(sums):
            try:
                compose(b, shape, kind, rule)
            except InvalidArgument:
                # Dead end: an earlier repair's (soft) lock holds a shot. Revise it, as repair
                # does; the rules it served are checked again on the next round.
                b.relaxed = True
                try:
                    compose(b, shape, kind, rule)
                except InvalidArgument:
                    if not lenient:
                        raise
                    sums.remove(rule)
                finally:
                    b.relaxed = False
        if not any(rule_broken(r, b.value, shape) for r in (*rules, *sums)):
            return
    raise InvalidArgument(f"could not build a body that satisfies every rule of {shape.model.name}")


@st.composite
def build_body(draw: DrawFn, shape: _Shape, pins: Pins) -> JsonBody:
    """A body the contract accepts (except for ``pins.skip_rule``), honouring ``pins``."""
    return _build(draw, shape, pins)[1]


def _build(draw: DrawFn, shape: _Shape, pins: Pins) -> tuple[str, JsonBody]:
    kind, b = start(draw, shape, pins)
    settle(b, shape, kind, skip=pins.skip_rule, clean=pins.clean)
    return kind, b.value


# -- valid requests --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """One create the fake accepts: where it goes and what it sends.

    ``operation`` is the face's operation id (``video_generations.create``,
    ``image2video.create``), ``method``/``path`` where to send ``body``; ``kind`` is the
    request kind (``text2video``/``image2video``) and ``model`` the model id.
    ``content_type`` is how the body is sent: ``application/json`` (``body`` is the JSON
    object), or ``multipart/form-data`` where the face's contract takes forms (``body`` holds
    the text fields, ``files`` the file parts as httpx takes them: name -> ``(filename,
    bytes, media type)``, so ``httpx.post(url, data=c.body, files=c.files)`` sends it).
    :meth:`encoded` gives the exact bytes and ``Content-Type`` either way.

    >>> CreateRequest("video_generations.create", "POST", "/v1/video/generations", "text2video",
    ...               "kling-v2-6", {"model": "kling-v2-6"}).path
    '/v1/video/generations'
    """

    operation: str
    method: str
    path: str
    kind: str
    model: str
    body: JsonBody
    content_type: str = "application/json"
    files: Mapping[str, tuple[str, bytes, str]] = field(default_factory=dict)

    def encoded(self) -> EncodedBody:
        """The body as it goes on the wire: its ``Content-Type`` and bytes.

        >>> create = CreateRequest("videos.create", "POST", "/v1/videos", "text2video", "kling-v2-6",
        ...                        {"prompt": "a fox"}, "multipart/form-data")
        >>> encoded = create.encoded()
        >>> encoded.content_type.startswith("multipart/form-data; boundary="), b'name="prompt"' in encoded.data
        (True, True)
        """
        if self.content_type == MULTIPART:
            files = [(name, *part) for name, part in self.files.items()]
            return encode_form([(k, str(v)) for k, v in self.body.items()], files)
        return EncodedBody(self.content_type, dump_json(self.body))


def create_operation(contract: Contract, kind: str) -> Operation:
    """The face's create operation for ``kind`` (one per kind, or one that takes every kind)."""
    for op in contract.operations.values():
        if op.verb == "task.create" and op.kind in (kind, None):
            return op
    raise InvalidArgument(f"face {contract.face!r} has no create operation for {kind!r} requests")


def _model_and_kind(draw: DrawFn, face: str | None, model: Any, kinds: Any) -> tuple[ModelContract, Any]:
    """The model, and the kind narrowing to pass on: with no model named, a narrowed kind is
    drawn first and the model among those that serve it."""
    if model is not None or kinds is None:
        return draw_model(draw, model, face), kinds
    kind = draw(as_strategy(kinds))
    serving = sorted(n for n, m in contract_for(face).models.items() if kind in m.request_schemas)
    if not serving:
        raise InvalidArgument(f"no model of face {face_name(face)!r} serves {kind!r} requests")
    return draw_model(draw, st.sampled_from(serving), face), kind


@st.composite
def _valid(draw: DrawFn, face: str | None, model: Any, pins: Pins, content_types: Any = None) -> CreateRequest:
    found, kind_pin = _model_and_kind(draw, face, model, pins.kind)
    contract = contract_for(face)
    if contract.form_mapping is not None:
        from kling_testkit._strategies.forms import valid_form

        return valid_form(draw, contract, found, replace(pins, kind=kind_pin), content_types)
    if content_types is not None:
        allowed = contract.request.content_types
        if draw(as_strategy(content_types)) not in allowed:
            raise InvalidArgument(f"face {contract.face!r} takes create bodies as {list(allowed)} only")
    variant = "clean" if pins.clean else pins.variant
    kind, body = _build(draw, _shape(contract, found, variant), replace(pins, kind=kind_pin))
    op = create_operation(contract, kind)
    return CreateRequest(op.id, op.method, op.path, kind, found.name, body)


def _pins(kinds: Any, shot_counts: Any, prompts: Any, clean: bool, fields: Mapping[str, Any]) -> Pins:
    return Pins(
        fields=fields,
        kind=kinds,
        count=shot_counts,
        prompts=None if prompts is None else as_strategy(prompts),
        clean=clean,
    )


def valid_creates(
    model: str | SearchStrategy[str] | None = None,
    *,
    face: str | None = None,
    kinds: str | SearchStrategy[str] | None = None,
    shot_counts: int | SearchStrategy[int] | None = None,
    prompts: str | SearchStrategy[str] | None = None,
    clean: bool = False,
    content_types: str | SearchStrategy[str] | None = None,
    **fields: Any,
) -> SearchStrategy[CreateRequest]:
    """Creates the fake accepts, as :class:`CreateRequest`: the body of :func:`valid_requests`
    with the operation and path it goes to. Use it on a face whose create path depends on the
    request kind (Kling's own API: ``/v1/videos/text2video``, ``/v1/videos/image2video``).

    Takes the same arguments as :func:`valid_requests`, and ``content_types``: how the body is
    sent, among the face's ``request.content_types`` (default: any of them). On a face whose
    contract takes ``multipart/form-data`` (the OpenAI-compatible route) a create is a form
    as the OpenAI SDK sends it: text fields in ``body``, an image-to-video frame as an uploaded
    JPEG or PNG file in ``files``.

    >>> from hypothesis import given
    >>> @given(valid_creates(face="official", kinds="image2video"))
    ... def test(create): assert create.path == "/v1/videos/image2video" and create.kind == "image2video"
    >>> test()
    """
    return _valid(face, model, _pins(kinds, shot_counts, prompts, clean, fields), content_types)


def valid_requests(
    model: str | SearchStrategy[str] | None = None,
    *,
    face: str | None = None,
    kinds: str | SearchStrategy[str] | None = None,
    shot_counts: int | SearchStrategy[int] | None = None,
    prompts: str | SearchStrategy[str] | None = None,
    clean: bool = False,
    **fields: Any,
) -> SearchStrategy[JsonBody]:
    """Create-request bodies the contract accepts (HTTP 200 from the fake), built by construction.

    ``face`` picks the wire dialect (default: the first registered face, the gateway;
    ``"official"`` for Kling's own API) and ``model`` one of its models (default: any).
    Text-to-video and image-to-video (``kinds``), single-shot and multi-shot, every optional
    field present or absent, shot durations that add up to ``duration``, prompts from one
    character up to the length limit in real Unicode (no lone surrogates), images that pass
    every image rule (see :func:`images`). On a face with one create path per kind, send the
    body to that kind's path: :func:`valid_creates` says which. Bodies are JSON objects; on a
    face that also takes forms, :func:`valid_creates` makes those.

    Narrow it with keyword arguments, each a fixed value or a strategy: ``kinds``
    (``"text2video"``/``"image2video"``), ``shot_counts`` (items of ``multi_prompt``; the
    shots then count, so on Kling's own API the body is a customized multi-shot one),
    ``prompts`` (each shot's prompt), and any top-level field of the model's form by its wire
    name -- ``mode="pro"``, ``sound="on"``, ``multi_shot=True``, ``duration=10``,
    ``image=images(encodings="url")``, or ``image_tail=ABSENT`` to leave a field out.
    Pinned values are kept as given; the other fields are chosen so every named rule holds.
    Contradictory pins (``sound="on", mode="std"``) raise ``InvalidArgument`` when drawn,
    naming the rule. ``clean=True`` also avoids everything the fake accepts with a contract
    warning (a field the model ignores, ``duration`` sent as a number...).

    Shrinks towards the first model, text-to-video with only the required fields, one shot,
    the shortest prompt, and the first value of each enum.

    >>> from hypothesis import given
    >>> @given(valid_requests(sound="on"))
    ... def test(body): assert body["mode"] == "pro"
    >>> test()
    >>> @given(valid_requests(face="official", model="kling-v2-6", sound="on"))
    ... def test_official(body): assert body["mode"] == "pro" and body.get("image_tail") is None
    >>> test_official()
    """
    pins = _pins(kinds, shot_counts, prompts, clean, fields)
    return _valid(face, model, pins, JSON).map(lambda c: c.body)


# -- invalid requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """How the fake must refuse an invalid request, from the face's error catalogue.

    ``case`` names what the request breaks: a rule id (``"sound.requires_pro"``) or
    ``"schema:<pointer>"`` of the schema keyword broken. ``rule`` is the rule id the fake
    reports (its journal records it; messages of templates with ``{rule}`` name it): the same
    as ``case`` except where the fake checks the keyword earlier under its own name (an
    unknown field: ``"unknown_field"``; an unknown model: ``"model.known"``; a body that is
    not an object: ``"body.object"``). ``param`` is the field it blames, ``status``/``code``
    the catalogue's for ``error`` (a string code on the gateway, an integer on Kling's own
    API). ``strict``: only a fake in strict mode refuses it (unknown fields). ``kind``,
    ``face``, ``operation`` and ``path`` say where the body is sent (the create path of its
    kind on Kling's own API).

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
    face: str | None = None
    operation: str | None = None
    path: str | None = None

    def diff(self, status: int, body: Any, entry: Any = None) -> list[str]:
        """What differs between this label and an actual answer (empty when it matches).

        The answer is read through the face's ``reader``: the status, the wire code, the field
        (where the error body has one) and the message, which must be the catalogue's template
        for ``error`` naming exactly this ``param`` and ``rule`` (any detail). A journal
        ``entry`` of the exchange (``kling_mock.entries()[-1]``) is compared too: it records
        the rule and field of every refusal, also on a face whose messages name neither.
        """
        contract = contract_for(self.face)
        reader = contract.reader
        problems = []
        if status != self.status:
            problems.append(f"status {status} != {self.status}")
        if not isinstance(body, Mapping) or reader.get("error_code", body) is None:
            return [*problems, f"no error code in {body!r:.200}"]
        code = reader.get("error_code", body)
        if code != self.code or isinstance(code, bool):
            problems.append(f"code {code!r} != {self.code!r}")
        if "error_param" in reader.pointers and reader.get("error_param", body) != self.param:
            problems.append(f"param {reader.get('error_param', body)!r} != {self.param!r}")
        message = reader.get("error_message", body)
        template = contract.errors[self.error].message
        if not isinstance(message, str) or not _message_pattern(template, self.param, self.rule).fullmatch(message):
            problems.append(f"message {message!r} is not {template!r} with param {self.param!r} and rule {self.rule!r}")
        if entry is not None:
            for name in ("rule", "param"):
                if getattr(entry, name, None) != getattr(self, name):
                    problems.append(f"journal {name} {getattr(entry, name, None)!r} != {getattr(self, name)!r}")
        return problems


@functools.lru_cache(maxsize=1024)
def _message_pattern(template: str, param: str | None, rule: str) -> re.Pattern[str]:
    """The template as a regular expression: ``{param}`` and ``{rule}`` exactly these values,
    any other placeholder any text."""
    out = []
    for i, part in enumerate(re.split(r"\{(\w+)\}", template)):
        if i % 2 == 0:
            out.append(re.escape(part))
        elif part == "param":
            out.append(re.escape(str(param)))
        elif part == "rule":
            out.append(re.escape(rule))
        else:
            out.append(".*")
    return re.compile("".join(out), re.DOTALL)


Builder = Callable[[DrawFn, str], tuple[Any, Rejection]]


@dataclass(frozen=True)
class Case:
    """One way to break the contract: its id, the kinds it applies to, and how to build it."""

    id: str
    kinds: tuple[str, ...]
    build: Builder
    strict: bool = False
    #: the media types the case can be sent as
    content_types: tuple[str, ...] = (JSON,)
    #: a builder that is told the media types to draw among (cases of forms)
    build_as: Callable[[DrawFn, str, tuple[str, ...]], tuple[Any, Rejection]] | None = None


def _rejection(
    shape: _Shape, case: str, rule: str, param: str | None, error: str, kind: str, *, strict: bool = False
) -> Rejection:
    contract = shape.contract
    spec = contract.errors[error]
    op = create_operation(contract, kind)
    return Rejection(case, rule, param, spec.http_status, spec.code, error, strict, kind, contract.face, op.id, op.path)


def _judged_kind(shape: _Shape, kind: str, body: JsonBody) -> str:
    """The kind the fake validates ``body`` as when it is sent to ``kind``'s create path."""
    spec = shape.contract.request
    if spec.mode_from == "body":
        return shape.model.mode_for(body, spec.mode_field)
    return kind


def _cleaned(body: JsonBody, schema: Mapping[str, Any]) -> JsonBody:
    props = schema.get("properties", {})
    return {k: v for k, v in body.items() if k in props}


def only_broken(shape: _Shape, kind: str, body: JsonBody, rule: Rule | None) -> bool:
    """Whether ``body`` (sent as ``kind``) breaks ``rule`` and nothing else the fake checks
    before it reports one (None: whether it breaks nothing)."""
    judged = _judged_kind(shape, kind, body)
    before = [r for r in shape.requires if r.phase == "before_schema" and r.applies_to(judged)]
    hit = [r.id for r in before if rule_broken(r, body, shape)]
    early = rule is not None and rule.phase == "before_schema"
    if hit != ([rule.id] if early and rule is not None else []):
        return False
    # everything after the refusal is valid too (fields outside the kind are dropped there)
    cleaned = _cleaned(body, shape.model.request_schemas[judged])
    if not shape.model.fast_validators[judged].is_valid(cleaned):
        return False
    after = [r for r in (*shape.requires, *shape.sums) if r.phase != "before_schema" and r.applies_to(judged)]
    found = [r.id for r in after if rule_broken(r, cleaned, shape)]
    return found == ([rule.id] if rule is not None and not early else [])


_ATTEMPTS: Final = 4


def _retrying(what: str, build: Callable[[], tuple[Any, Rejection] | None]) -> tuple[Any, Rejection]:
    """Build a case; a draw that could not keep the rule the only broken one is retried with
    new choices (rare), and a case that never succeeds is a bug reported as InvalidArgument."""
    for _ in range(_ATTEMPTS):
        try:
            found = build()
        except InvalidArgument:
            found = None
        if found is not None:
            return found
    raise InvalidArgument(f"could not build a body that breaks only {what}; extend kling_testkit/_strategies")


# named rules


Plain = tuple[frozenset[str], dict[str, list[Any]]]


def _plain(schema: Mapping[str, Any], *, exact: bool) -> Plain | None:
    """A condition as "these members present, these members within these values"
    (``required``, and ``properties`` with ``const``/``enum``). ``exact``: None when the
    condition says more than that; otherwise what it says more is dropped (a weaker condition)."""
    if exact and set(schema) - {"required", "properties"}:
        return None
    values: dict[str, list[Any]] = {}
    for name, sub in schema.get("properties", {}).items():
        if set(sub) - {"const", "enum"} or len(sub) != 1:
            if exact:
                return None
            continue
        values[name] = [sub["const"]] if "const" in sub else list(sub["enum"])
    return frozenset(schema.get("required", ())), values


def _alternatives(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``schema`` as a disjunction (its ``anyOf`` branches, each with the rest of it)."""
    if "anyOf" not in schema:
        return [schema]
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return [{"allOf": [rest, branch]} for branch in schema["anyOf"]]


def _flatten(schema: Mapping[str, Any]) -> Plain:
    """The plain part of a conjunction (``allOf`` branches merged; anything else dropped)."""
    required: set[str] = set()
    values: dict[str, list[Any]] = {}
    parts = [schema]
    for part in parts:
        parts.extend(part.get("allOf", ()))
    for part in parts:
        found = _plain(part, exact=False)
        assert found is not None
        required |= found[0]
        for name, allowed in found[1].items():
            values[name] = [v for v in values.get(name, allowed) if any(json_equal(v, a) for a in allowed)]
    return frozenset(required), values


def _needs(rule: Rule) -> list[Plain]:
    """What a body must satisfy for ``rule`` to be broken, as alternatives (weakened to their
    plain part: a shadow found for the weaker need holds for the need)."""
    if rule.kind == "requires":
        then = rule.spec["then"]
        broken = [then["not"]] if set(then) == {"not"} else [{}]
        return [
            _flatten({"allOf": [rule.spec["when"], alternative]})
            for part in broken
            for alternative in _alternatives(part)
        ]
    if rule.kind == "sum_equals":
        return [_flatten({"allOf": [rule.spec.get("when", {}), {"required": [rule.spec["items"]]}]})]
    return [(frozenset({rule.param}), {})]


def shadowed_by(shape: _Shape, rule: Rule, kind: str) -> tuple[Rule, ...]:
    """The rules that refuse outright what ``rule`` needs to be broken (each has ``then`` =
    ``not`` ``when``: a capability the model lacks), one per way of breaking it; empty when
    ``rule`` can be the only broken rule. The fake can never refuse a shadowed rule alone: on
    kling-v1, ``multi_shot.unsupported`` shadows every multi-shot rule."""
    forbidding = [
        (other, found)
        for other in shape.requires
        if other is not rule
        and other.applies_to(kind)
        and other.spec["then"] == {"not": other.spec["when"]}
        and (found := _plain(other.spec["when"], exact=True)) is not None
    ]
    out = []
    for required, values in _needs(rule):
        for other, (names, limits) in forbidding:
            if names <= required and all(
                name in values and all(any(json_equal(v, a) for a in allowed) for v in values[name])
                for name, allowed in limits.items()
            ):
                out.append(other)
                break
        else:
            return ()
    return tuple(out)


def _unshadowed(shape: _Shape, rule: Rule, kinds: Sequence[str]) -> tuple[str, ...]:
    return tuple(k for k in kinds if not shadowed_by(shape, rule, k))


def _requires_kinds(shape: _Shape, rule: Rule) -> tuple[str, ...]:
    when, then = rule.spec["when"], rule.spec["then"]
    if rule.phase == "before_schema":
        # checked on the raw body before the schema: its fields may lie outside the kind
        return tuple(k for k in shape.kinds if rule.applies_to(k) and not top_fields(then) & shape.required[k])
    fields = top_fields(when) | top_fields(then)
    return _unshadowed(shape, rule, [k for k in shape.kinds if rule.applies_to(k) and fields <= set(shape.props[k])])


def _break(b: Body, rule: Rule) -> bool:
    """Make ``rule``'s ``when`` true and its ``then`` false (each edit can undo the other, as
    a last frame of ``simple`` type added to keep an object non-empty: a few rounds settle it)."""
    when, then = rule.spec["when"], rule.spec["then"]

    def rounds(first: bool) -> bool:
        for _ in range(3):
            steps = [(when, True), (then, False)]
            if not all(make(b, s, (), want) for s, want in (steps if first else steps[::-1])):
                return False
            view = b.view()
            if valid(when, view) and not valid(then, view):
                return True
        return False

    return b.attempt(lambda: rounds(True)) or b.attempt(lambda: rounds(False))


def _requires_case(shape: _Shape, rule: Rule) -> Case | None:
    if unsupported(rule.spec["when"]) | unsupported(rule.spec["then"]):
        return None
    kinds = _requires_kinds(shape, rule)
    foreign = rule.phase == "before_schema"

    def build(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
        def once() -> tuple[Any, Rejection] | None:
            kind_, b = start(draw, shape, Pins(kind=kind, foreign=foreign))
            b.with_defaults = not foreign
            _hard(b, lambda: _break(b, rule), rule.id)
            freeze(b, rule.spec["when"])
            freeze(b, rule.spec["then"])
            b.with_defaults = True
            settle(b, shape, kind_, skip=rule.id)
            if not only_broken(shape, kind_, b.value, rule):
                return None
            judged = _judged_kind(shape, kind_, b.value)
            return b.value, _rejection(shape, rule.id, rule.id, rule.param, rule.error, judged)

        return _retrying(rule.id, once)

    return Case(rule.id, kinds, build) if kinds else None


def _sum_case(shape: _Shape, rule: Rule) -> Case | None:
    kinds = _unshadowed(
        shape, rule, [k for k in shape.kinds if rule.applies_to(k) and rule.spec["items"] in shape.props[k]]
    )

    def build(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
        def once() -> tuple[Any, Rejection] | None:
            kind_, b = start(draw, shape, Pins(kind=kind))
            applies = {"allOf": [rule.spec.get("when", {}), {"required": [rule.spec["items"], rule.spec["total"]]}]}
            _hard(b, lambda: make(b, applies, (), True), f"{rule.id} to apply")
            freeze(b, applies)
            settle(b, shape, kind_)
            items = b.value[rule.spec["items"]]
            lo, high, _kinds = _item_range(rule, shape, kind_)
            at = draw(integers(0, len(items) - 1))
            current = int(as_number(items[at][rule.spec["item_field"]]))
            top = high if high is not None else max(current + 5, lo + 1)
            others = [v for v in range(lo, top + 1) if v != current]
            items[at][rule.spec["item_field"]] = _spelled(
                draw(choices(tuple(others))), _kinds, items[at][rule.spec["item_field"]]
            )
            if not only_broken(shape, kind_, b.value, rule):
                return None
            return b.value, _rejection(shape, rule.id, rule.id, rule.param, rule.error, kind_)

        return _retrying(rule.id, once)

    return Case(rule.id, kinds, build) if kinds else None


def _image_case(shape: _Shape, rule: Rule) -> Case | None:
    model = shape.model
    labels = tuple(
        label
        for label in problems_for_check(str(rule.spec.get("check")))
        if label in available_problems(model.image_limits)
    )
    if not labels or rule.param not in shape.union:
        return None
    kinds = _unshadowed(shape, rule, [k for k in shape.kinds if rule.param in shape.props[k] and rule.applies_to(k)])
    bad = images(model.name, face=shape.contract.face, problems=st.sampled_from(labels)).map(lambda p: p.value)

    def build(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
        def once() -> tuple[Any, Rejection] | None:
            kind_, body = _build(draw, shape, Pins(fields={rule.param: bad}, kind=kind))
            return body, _rejection(shape, rule.id, rule.id, rule.param, rule.error, kind_)

        return _retrying(rule.id, once)

    return Case(rule.id, kinds, build) if kinds else None


# schema keywords


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
    refused = [t for t in JSON_TYPES if t not in allowed]
    return st.sampled_from(refused).flatmap(lambda name: _values_of_type(name, schema))


def _beyond(schema: Mapping[str, Any], keyword: str) -> SearchStrategy[Any]:
    """Numbers just past ``minimum``/``maximum``, of the schema's own numeric types."""
    bound = schema[keyword]
    if keyword == "minimum":
        ints = st.integers(math.ceil(bound) - 10**6, math.ceil(bound) - 1)
        floats = st.floats(bound - 1e6, bound, exclude_max=True, allow_nan=False, allow_infinity=False)
    else:
        ints = st.integers(math.floor(bound) + 1, math.floor(bound) + 10**6)
        floats = st.floats(bound, bound + 1e6, exclude_min=True, allow_nan=False, allow_infinity=False)
    return st.one_of(ints, floats) if "number" in types_of(schema) else ints


def _unknown_name(known: Sequence[str]) -> SearchStrategy[str]:
    """Field names the schema does not know: typos of known ones, and drawn names."""

    def avoid(name: str) -> str:
        while name in known:
            name += "_"
        return name

    typos = (
        st.sampled_from(list(known)).flatmap(
            lambda k: st.sampled_from([k[:-1] or "x", k + "s", k.replace("_", ""), "x_" + k, k.title()])
        )
        if known
        else st.just("x")
    )
    return st.one_of(typos, st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)).map(avoid)


def _ensure(b: Body, path: tuple[str | int, ...]) -> Path:
    """Make the members along ``path`` exist (an item drawn for :data:`ITEM`); hard-lock their
    presence; return the concrete path."""
    concrete: Path = ()
    b.record_hard = True
    try:
        for step in path:
            if step == ITEM:
                items = get_at(b.value, concrete)
                if not isinstance(items, list):
                    raise InvalidArgument(f"no array at {format_param(concrete)}")
                if not items:
                    one = b.draw(b.values_for((*concrete, 0)))
                    if not b.resize(concrete, [one]):
                        raise InvalidArgument(f"cannot add an item to {format_param(concrete)}")
                    items = get_at(b.value, concrete)
                step = b.draw(integers(0, len(items) - 1))
            elif get_at(b.value, (*concrete, step)) is MISSING and not b.put(
                (*concrete, step), b.draw(b.values_for((*concrete, step))), lock="present"
            ):
                raise InvalidArgument(f"cannot add {format_param((*concrete, step))}")
            concrete = (*concrete, step)
            b.hard.present.add(concrete)
    finally:
        b.record_hard = False
    return concrete


Mutation = Callable[[DrawFn, JsonBody, Path], tuple[JsonBody, str | None]]


def _schema_case(shape: _Shape, site: Site, kinds: tuple[str, ...]) -> Case | None:
    keyword, value = site.keyword, site.value
    field_schema = site.schema
    contract = shape.contract

    def mutate(
        make_it: Mutation,
        container: tuple[str | int, ...],
        rule: str | None = None,
        error: str = "invalid_parameter",
        strict: bool = False,
        pins: Mapping[str, Any] | None = None,
    ) -> Builder:
        def build(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
            def once() -> tuple[Any, Rejection]:
                kind_, b = start(draw, shape, Pins(kind=kind, fields=pins or {}))
                concrete = _ensure(b, container)
                settle(b, shape, kind_, lenient=True)
                new_body, param = make_it(draw, b.value, concrete)
                judged = _judged_kind(shape, kind_, new_body)
                return new_body, _rejection(shape, site.id, rule or site.id, param, error, judged, strict=strict)

            return _retrying(site.id, once)

        return build

    def set_value(values: SearchStrategy[Any], pins: Mapping[str, Any] | None = None) -> Builder:
        def make_it(draw: DrawFn, body: JsonBody, concrete: Path) -> tuple[JsonBody, str | None]:
            last = site.path[-1]
            if last == ITEM:
                last = draw(integers(0, len(get_at(body, concrete)) - 1))
            parent = get_at(body, concrete)
            parent[last] = draw(values)
            return body, format_param([*concrete, last])

        return mutate(make_it, site.path[:-1], pins=pins)

    if keyword == "type" and not site.path:
        values = wrong_types(value, field_schema)

        def build_top(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
            # null is left out: a client that sends no body at all gets a different message
            drawn = draw(values.filter(lambda v: v is not None))
            rule = contract.request_rule("body_object")
            return drawn, _rejection(shape, site.id, rule, None, "invalid_json", kind)

        return Case(site.id, kinds, build_top)
    selectors = shape.selectors
    if keyword == "const" and len(site.path) == 1 and site.path[0] in selectors:
        name = str(site.path[0])
        known = set(contract.models)
        names = st.sampled_from(["kling-v2-5-turbo", "kling-v1", "Kling-V2-6", "kling-v2.6", "kling-v9"]) | st.text(
            min_size=1, max_size=20
        )
        others = names.map(lambda n: n if n not in known else n + "-x")
        earlier = selectors[: selectors.index(name)]
        if any(s in shape.union for s in earlier):
            # a model field read after another (an alias): the earlier one names the model,
            # so a different value here breaks this const
            first = next(s for s in earlier if s in shape.union)
            usable = tuple(k for k in kinds if first in shape.props[k])
            return Case(site.id, usable, set_value(others, pins={first: shape.model.name}))
        later = {s: ABSENT for s in selectors if s != name and s in shape.union}

        def build_model(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
            kind_, body = _build(draw, shape, Pins(kind=kind, fields={**later, name: shape.model.name}))
            body[name] = draw(others)
            rule = contract.request_rule("model_known")
            return body, _rejection(shape, site.id, rule, name, "model_not_found", kind_)

        return Case(site.id, kinds, build_model)
    if keyword == "type":
        return Case(site.id, kinds, set_value(wrong_types(value, field_schema)))
    if keyword == "anyOf":
        # a value of a JSON type no branch admits (a branch without ``type`` admits any: no case)
        admitted = [types_of(branch) for branch in value]
        if not all(admitted):
            return None
        return Case(site.id, kinds, set_value(wrong_types([t for ts in admitted for t in ts], {})))
    if keyword == "const":
        return Case(site.id, kinds, set_value(other_values(field_schema, [value])))
    if keyword == "enum":
        return Case(site.id, kinds, set_value(other_values(field_schema, list(value))))
    if keyword in ("minimum", "maximum"):
        return Case(site.id, kinds, set_value(_beyond(field_schema, keyword)))
    if keyword == "minLength":
        return Case(site.id, kinds, set_value(long_texts(0, int(value) - 1))) if value > 0 else None
    if keyword == "maxLength":
        return Case(site.id, kinds, set_value(long_texts(int(value) + 1, int(value) + 16)))
    if keyword == "pattern":
        lo, hi = int(field_schema.get("minLength", 0)), field_schema.get("maxLength")
        return Case(site.id, kinds, set_value(not_matching(str(value), lo, hi)))
    if keyword in ("minItems", "maxItems"):
        item = field_schema.get("items", {})
        lo, hi = (0, int(value) - 1) if keyword == "minItems" else (int(value) + 1, int(value) + 3)
        if hi < lo:
            return None
        where = site.id.removeprefix("schema:")
        items = st.lists(field_values(item, where, shape.image_values), min_size=lo, max_size=hi)
        return Case(site.id, kinds, set_value(items))
    if keyword == "minProperties":
        props = list(field_schema.get("properties", {}))
        if value <= 0:
            return None

        def fewer(draw: DrawFn, body: JsonBody, concrete: Path) -> tuple[JsonBody, str | None]:
            parent = get_at(body, concrete[:-1])
            obj = parent[concrete[-1]]
            keep = draw(st.lists(st.sampled_from(sorted(obj)), max_size=int(value) - 1, unique=True)) if obj else []
            parent[concrete[-1]] = {k: obj[k] for k in keep}
            return body, format_param(concrete)

        return Case(site.id, kinds, mutate(fewer, site.path)) if props else None
    if keyword == "required":
        reachable = [n for n in value if _removable(shape, site, kinds, n)]
        if not reachable:
            return None

        def remove(draw: DrawFn, body: JsonBody, concrete: Path) -> tuple[JsonBody, str | None]:
            container = get_at(body, concrete)
            name = draw(st.sampled_from(reachable))
            container.pop(name, None)
            return body, format_param([*concrete, name])

        return Case(site.id, kinds, mutate(remove, site.path))
    if keyword == "additionalProperties" and value is False:
        members = list(field_schema.get("properties", {}))
        values = st.one_of(st.none(), st.booleans(), st.integers(0, 9), st.text(max_size=8))

        def add(draw: DrawFn, body: JsonBody, concrete: Path) -> tuple[JsonBody, str | None]:
            container = get_at(body, concrete)
            name = draw(_unknown_name(members))
            container[name] = draw(values)
            return body, format_param([*concrete, name])

        rule = contract.request_rule("unknown_field")
        return Case(site.id, kinds, mutate(add, site.path, rule=rule, error="unknown_field", strict=True), strict=True)
    return None


def _removable(shape: _Shape, site: Site, kinds: tuple[str, ...], name: str) -> bool:
    """Whether taking ``name`` out leaves a body of the same kind (on a face that reads the
    kind from the body, removing the field that selects it, ``image``, makes another kind of
    request, not a missing field)."""
    if site.path or shape.contract.request.mode_from != "body":
        return True
    field_name = shape.contract.request.mode_field
    return all(
        shape.model.mode_for({k: "" for k in shape.props[kind] if k != name}, field_name) == kind for kind in kinds
    )


@functools.cache
def _cases(shape: _Shape) -> Mapping[str, Case]:
    out: dict[str, Case] = {}
    for rule in shape.model.rules:
        case: Case | None = None
        if rule.warning:
            continue  # a warning never refuses: valid_requests() covers it
        if rule.kind == "requires":
            case = _requires_case(shape, rule)
        elif rule.kind == "sum_equals":
            case = _sum_case(shape, rule)
        elif rule.kind == "image":
            case = _image_case(shape, rule)
        if case is not None:
            out[case.id] = case
    sites: dict[str, tuple[Site, list[str]]] = {}
    for kind in shape.kinds:
        for site in keyword_sites(shape.model.request_schemas[kind]):
            sites.setdefault(site.id, (site, []))[1].append(kind)
    for site_id, (site, kinds) in sites.items():
        found = _schema_case(shape, site, tuple(kinds))
        if found is not None and found.kinds:
            out[site_id] = found
    return out


def cases(model: ModelContract, face: str | None = None) -> Mapping[str, Case]:
    """Every way :func:`invalid_requests` can break ``model``'s contract, by case id."""
    contract = contract_of(model, face)
    if contract.form_mapping is not None:
        from kling_testkit._strategies.forms import form_cases

        return form_cases(contract, model)
    return _cases(shape_of(model, face))


@st.composite
def _invalid(
    draw: DrawFn, face: str | None, model: Any, rules: Any, kinds: Any, strict: bool, content_types: Any = None
) -> tuple[Any, Rejection]:
    found, kinds = _model_and_kind(draw, face, model, kinds)
    table = cases(found, face_name(face))
    if rules is None:
        ids = sorted(k for k, c in table.items() if strict or not c.strict)
        if content_types is not None:
            wanted_type = draw(as_strategy(content_types))
            ids = [k for k in ids if wanted_type in table[k].content_types]
            if not ids:
                raise InvalidArgument(f"no invalid case of face {face_name(face)!r} is sent as {wanted_type!r}")
            content_types = wanted_type
        case_id = draw(st.sampled_from(ids))
    else:
        case_id = draw(as_strategy(rules))
        if case_id not in table:
            raise InvalidArgument(f"no invalid-request generator for {case_id!r}; known: {sorted(table)}")
        if table[case_id].strict and not strict:
            raise InvalidArgument(f"{case_id!r} is refused only by a strict fake: pass strict=True")
    case = table[case_id]
    if content_types is not None:
        wanted_type = draw(as_strategy(content_types))
        if wanted_type not in case.content_types:
            raise InvalidArgument(f"{case_id!r} is sent as {list(case.content_types)} only, not {wanted_type!r}")
        case = replace(case, content_types=(wanted_type,))
    usable = list(case.kinds)
    if kinds is not None:
        wanted = draw(as_strategy(kinds))
        usable = [k for k in usable if k == wanted]
        if not usable:
            raise InvalidArgument(f"{case_id!r} does not apply to {wanted!r} requests (only {list(case.kinds)})")
    kind = draw(st.sampled_from(usable))
    if case.build_as is not None:
        return case.build_as(draw, kind, case.content_types)
    return case.build(draw, kind)


def invalid_requests(
    model: str | SearchStrategy[str] | None = None,
    *,
    face: str | None = None,
    rules: str | SearchStrategy[str] | None = None,
    kinds: str | SearchStrategy[str] | None = None,
    strict: bool = False,
    content_types: str | SearchStrategy[str] | None = None,
) -> SearchStrategy[tuple[Any, Rejection]]:
    """``(body, rejection)`` pairs: a create body that breaks exactly one rule, and the answer
    the fake must give (:class:`Rejection`: status, code, ``param``, rule id, and the create
    path to send it to).

    The cases are derived from the face's contract: one per named rule that refuses
    (cross-field ``requires`` rules, the shot-duration sum, each image check) and one per
    schema keyword found by walking the derived request schemas (type, enum, const,
    minimum/maximum, minLength/maxLength, pattern, minItems/maxItems, minProperties, required
    and, with ``strict=True``, additionalProperties). Everything else in the body is valid, so
    the broken rule is the only one, and stays the only one while Hypothesis shrinks. Rules
    that only raise a contract warning have no case: the fake accepts them.

    ``rules`` narrows to case ids (a rule id or ``"schema:<pointer>"``, see
    :func:`invalid_case_ids`), ``kinds`` to ``"text2video"``/``"image2video"``. With
    ``strict=True`` unknown-field cases are included; they need a fake started with
    ``strict=True``.

    On a face whose contract takes ``multipart/form-data`` forms mapped onto another face's
    model (the OpenAI-compatible route), the cases are the form's own schema keywords (JSON
    bodies), the target model's named rules a form can break (sent as JSON or as a form), and
    the form's own rules: no boundary, cut short, a part without a name (``body.multipart``),
    too many parts, a part over its size limit, a field sent twice, a file part of a refused
    media type. A case sent as a form is an :class:`EncodedBody` (its ``Content-Type`` and
    bytes); ``content_types`` narrows the cases to those sent as that media type.

    Shrinks towards the first case id in sorted order, with the rest of the body shrinking as
    :func:`valid_requests` does.

    >>> from hypothesis import given
    >>> @given(invalid_requests(rules="sound.requires_pro"))
    ... def test(case): assert case[1].param == "sound" and case[0]["sound"] == "on"
    >>> test()
    >>> @given(invalid_requests(face="official", model="kling-v2-6", rules="image.encoding"))
    ... def test_official(case): assert (case[1].status, case[1].code, case[1].param) == (400, 1201, "image")
    >>> test_official()
    """
    return _invalid(face, model, rules, kinds, strict, content_types)


def invalid_case_ids(
    model: str | ModelContract | None = None, *, face: str | None = None, strict: bool = True
) -> frozenset[str]:
    """The case ids :func:`invalid_requests` can generate for ``model`` (a name or a
    :class:`~mockserver.contract.ModelContract`; default: every model of the face).

    Compare it with the contract's rule ids and schema keywords to find rules that have no
    generator (the test suite does).

    >>> "sound.requires_pro" in invalid_case_ids()
    True
    >>> "image.encoding" in invalid_case_ids(face="official")
    True
    """
    if isinstance(model, ModelContract):
        models = [model]
    else:
        contract = contract_for(face)
        if model is not None and model not in contract.models:
            raise InvalidArgument(
                f"unknown model {model!r} on face {contract.face!r}; it knows {sorted(contract.models)}"
            )
        models = [contract.models[n] for n in ([model] if model is not None else sorted(contract.models))]
    out: set[str] = set()
    for found in models:
        out.update(k for k, c in cases(found, face).items() if strict or not c.strict)
    return frozenset(out)
