"""Validate a create request against a model's contract, in the order the contract states.

1. the body is a JSON object naming a known ``model``;
2. ``before_schema`` rules (they decide which mode's schema applies);
3. unknown fields: dropped with a :class:`ContractWarning` (what the real gateway does), or
   refused in strict mode;
4. the mode's JSON Schema: a compiled validator (jsonschema-rs) decides on the hot path, and
   only a rejected body is explained by ``jsonschema``, whose ``best_match`` names the field;
5. the named rules, on the body with the form's defaults applied, first failure wins.

Every refusal is a :class:`Violation` carrying the catalogue error, the ``param`` path
(``multi_prompt[1].prompt``) and the rule id (``sound.requires_pro``, or ``schema:<pointer>``
for schema keywords).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jsonschema
from jsonschema.exceptions import best_match

from mockserver._frozen import fast_init
from mockserver.contract import Contract, ModelContract, Operation, Rule, compile_schema
from mockserver.engine.journal import ContractWarning
from mockserver.http import TooManyValues, load_json
from mockserver.validation.images import ImageInfo, ImageProblem, inspect_image

Path = Sequence[str | int]


@dataclass(frozen=True, slots=True)
class Violation:
    """Why a request was refused: catalogue error key, field path, rule id, detail."""

    error: str
    param: str | None
    rule: str
    detail: str


@fast_init  # built for every accepted create
@dataclass(frozen=True, slots=True)
class Accepted:
    """A request the contract accepts, with the form's defaults applied."""

    model: ModelContract
    mode: str
    body: Mapping[str, Any]
    warnings: tuple[ContractWarning, ...] = ()
    images: Mapping[str, ImageInfo] = field(default_factory=dict)


def format_param(path: Iterable[str | int]) -> str:
    """``("multi_prompt", 1, "prompt")`` -> ``"multi_prompt[1].prompt"``.

    >>> format_param(["multi_prompt", 0, "duration"])
    'multi_prompt[0].duration'
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )


@dataclass(frozen=True, slots=True)
class _Shape:
    """The known member names of an object schema, and the shapes of nested ones."""

    keys: frozenset[str]
    children: Mapping[str, _Shape]  # objects, or arrays of objects, inside this one
    arrays: frozenset[str]


def _shape(schema: Mapping[str, Any]) -> _Shape:
    props: Mapping[str, Any] = schema.get("properties", {})
    children: dict[str, _Shape] = {}
    arrays = set()
    for name, sub in props.items():
        if "properties" in sub:
            children[name] = _shape(sub)
        elif isinstance(sub.get("items"), Mapping) and "properties" in sub["items"]:
            children[name] = _shape(sub["items"])
            arrays.add(name)
    return _Shape(frozenset(props), children, frozenset(arrays))


def _all_known(value: Any, shape: _Shape) -> bool:
    """Whether ``value`` has no member ``shape`` does not know, at any level: the usual body's
    answer, found without building the paths :func:`_unknown_paths` names."""
    if not isinstance(value, dict):
        return True
    if not value.keys() <= shape.keys:
        return False
    for name, child in shape.children.items():
        member = value.get(name)
        if name in shape.arrays:
            if isinstance(member, list):
                for item in member:  # a loop, not all(generator): this runs on every create
                    if not _all_known(item, child):
                        return False
        elif not _all_known(member, child):
            return False
    return True


def _unknown_paths(value: Any, shape: _Shape, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if not isinstance(value, dict):
        return []
    # The usual body has no unknown member: a subset test avoids building a difference set.
    found: list[tuple[str | int, ...]] = (
        [] if value.keys() <= shape.keys else [(*path, k) for k in value if k not in shape.keys]
    )
    for name, child in shape.children.items():
        member = value.get(name)
        if name in shape.arrays:
            if isinstance(member, list):
                for i, item in enumerate(member):
                    found.extend(_unknown_paths(item, child, (*path, name, i)))
        else:
            found.extend(_unknown_paths(member, child, (*path, name)))
    return found


@dataclass(frozen=True, slots=True)
class _ModeRules:
    """One mode's rules by the step that checks them, in contract order: picked once, so a
    request does not walk every rule of the model to find the few its mode has at each step."""

    refuse_early: tuple[Rule, ...]
    warn_early: tuple[Rule, ...]
    warn_late: tuple[Rule, ...]
    sums: tuple[Rule, ...]
    #: per group of ``requires`` rules above, one compiled schema that a body meets exactly
    #: when no rule of the group fires (None: an empty group): one check for the usual body
    #: instead of two per rule, which then run only to say which rules fire
    refuse_early_ok: Any = None
    warn_early_ok: Any = None
    warn_late_ok: Any = None
    #: one compiled schema a body as sent meets exactly when it has no member the contract does
    #: not know, no early rule (refusal or warning) fires and the mode's schema accepts it, and
    #: one that the body with defaults applied meets exactly when no other ``requires`` rule
    #: (refusal or warning) fires (None: the mode has no such rule): the usual create is
    #: accepted after two checks, not five checks and a walk of the body (the rule-by-rule path
    #: below runs for any other body)
    clean_body: Any = None
    clean_full: Any = None


def _closed(shape: _Shape) -> dict[str, Any]:
    """The JSON Schema an instance meets exactly when :func:`_all_known` says it has no unknown
    member: ``propertyNames`` holds only for objects, ``items`` only for arrays, ``properties``
    only for members that are present, as the walk skips anything else."""
    schema: dict[str, Any] = {"propertyNames": {"enum": sorted(shape.keys)}}
    members = {
        name: {"items": _closed(child)} if name in shape.arrays else _closed(child)
        for name, child in shape.children.items()
    }
    if members:
        schema["properties"] = members
    return schema


def _shut(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """``schema`` refusing, where :func:`_shape` looks, every member its ``properties`` do not
    name: what ``allOf: [_closed(_shape(schema)), schema]`` accepts, in one schema (None where a
    ``patternProperties`` or ``prefixItems`` would make ``additionalProperties`` mean less).

    jsonschema-rs checks ``properties`` with ``additionalProperties: false`` in one pass over the
    members, where ``propertyNames: {enum}`` compares every member's name with the list: the
    check every create makes costs about half as much.

    >>> _shut({"properties": {"a": {"properties": {"b": {}}}}})
    {'properties': {'a': {'properties': {'b': {}}, 'additionalProperties': False}}, 'additionalProperties': False}
    """
    if "patternProperties" in schema:
        return None
    members: dict[str, Any] = {}
    for name, sub in schema.get("properties", {}).items():
        if "properties" in sub:  # the same tests, in the same order, as _shape
            sub = _shut(sub)
        elif isinstance(sub.get("items"), Mapping) and "properties" in sub["items"]:
            items = None if "prefixItems" in sub else _shut(sub["items"])
            sub = None if items is None else {**sub, "items": items}
        if sub is None:
            return None
        members[name] = sub
    return {**schema, "properties": members, "additionalProperties": False}


def _closed_and(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Schemas a body meets together exactly when it has no unknown member and ``schema``
    accepts it: ``schema`` shut where it can be, else the two side by side."""
    shut = _shut(schema)
    return [shut] if shut is not None else [_closed(_shape(schema)), schema]


def _fires(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [{"if": r.spec["when"], "then": r.spec["then"]} for r in rules]


@dataclass(frozen=True)
class _Compiled:
    """Per-model artefacts of the contract that make the accepting path cheap."""

    model: ModelContract
    shapes: Mapping[str, _Shape]
    #: per mode, one compiled schema that every ``requires`` rule accepts (if/then each); a
    #: body it accepts skips the rule-by-rule walk, which then only runs to name the broken rule
    requires_ok: Mapping[str, Any]
    image_fields: frozenset[str]
    #: per mode, its rules by the step that checks them (``requires`` rules marked ``warning``
    #: are reported, never refused: those of ``before_schema`` on the body as sent, the others
    #: on it with defaults applied)
    by_mode: Mapping[str, _ModeRules] = field(default_factory=dict)


def _none_fires(rules: Sequence[Rule]) -> Any:
    """A compiled schema a body meets exactly when no ``requires`` rule of ``rules`` fires (a
    rule fires when its ``when`` holds and its ``then`` does not: ``if``/``then`` fails)."""
    if not rules:
        return None
    return compile_schema({"allOf": _fires(rules)})


def _mode_rules(model: ModelContract, mode: str) -> _ModeRules:
    rules = [r for r in model.rules if r.applies_to(mode)]
    refuse_early = tuple(r for r in rules if r.phase == "before_schema" and not r.warning)
    warn_early = tuple(r for r in rules if r.warning and r.kind == "requires" and r.phase == "before_schema")
    warn_late = tuple(r for r in rules if r.warning and r.kind == "requires" and r.phase != "before_schema")
    requires = tuple(r for r in rules if r.kind == "requires" and r.phase != "before_schema" and not r.warning)
    schema = model.request_schemas[mode]
    return _ModeRules(
        refuse_early=refuse_early,
        warn_early=warn_early,
        warn_late=warn_late,
        # a sum rule of another mode never refuses (the rule walk skips it): it is left out here
        sums=tuple(r for r in rules if r.kind == "sum_equals"),
        refuse_early_ok=_none_fires(refuse_early),
        warn_early_ok=_none_fires(warn_early),
        warn_late_ok=_none_fires(warn_late),
        clean_body=compile_schema({"allOf": [*_closed_and(schema), *_fires(refuse_early), *_fires(warn_early)]}),
        # None: no rule at all (JSON Schema forbids an empty allOf, and a check that accepts all
        # is a call for nothing)
        clean_full=compile_schema({"allOf": _fires(requires + warn_late)}) if requires + warn_late else None,
    )


_COMPILED: dict[int, _Compiled] = {}


def _compiled(model: ModelContract) -> _Compiled:
    found = _COMPILED.get(id(model))
    if found is None or found.model is not model:
        requires = [r for r in model.rules if r.kind == "requires" and r.phase != "before_schema" and not r.warning]
        found = _Compiled(
            model=model,
            shapes={mode: _shape(schema) for mode, schema in model.request_schemas.items()},
            requires_ok={
                # a model without requires rules (a mapped form) gets the schema that accepts all:
                # JSON Schema forbids an empty allOf
                mode: compile_schema(
                    {"allOf": [{"if": r.spec["when"], "then": r.spec["then"]} for r in requires if r.applies_to(mode)]}
                    if any(r.applies_to(mode) for r in requires)
                    else {}
                )
                for mode in model.request_schemas
            },
            image_fields=frozenset(r.param for r in model.rules if r.kind == "image"),
            by_mode={mode: _mode_rules(model, mode) for mode in model.request_schemas},
        )
        _COMPILED[id(model)] = found
    return found


def _known_only(value: Any, shape: _Shape) -> Any:
    """A copy of ``value`` keeping only the members ``shape`` knows, at every level: one pass
    over the body, however many unknown members it has (dropping them one by one, each with a
    copy of the body, made the work grow with the square of their number)."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, member in value.items():
        if key not in shape.keys:
            continue
        child = shape.children.get(key)
        if child is None:
            out[key] = member
        elif key in shape.arrays and isinstance(member, list):
            out[key] = [_known_only(item, child) for item in member]
        else:
            out[key] = _known_only(member, child)
    return out


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(param, detail) for a schema error, without echoing huge values back."""
    keyword = str(error.validator)
    # jsonschema types these as "maybe unset"; a best_match error always has them.
    expected: Any = error.validator_value
    path = list(error.absolute_path)
    instance: Any = error.instance
    if keyword == "required":
        missing = [name for name in expected if isinstance(instance, dict) and name not in instance]
        name = missing[0] if missing else "?"
        return format_param([*path, name]), "is required"
    if keyword == "type":
        return format_param(path), f"must be of type {expected}, got {_type_name(instance)}"
    if keyword == "enum":
        return format_param(path), f"must be one of {', '.join(map(repr, expected))}"
    if keyword == "const":
        return format_param(path), f"must be {expected!r}"
    if keyword in ("minLength", "maxLength"):
        bound = "at least" if keyword == "minLength" else "at most"
        return format_param(path), f"must be {bound} {expected} characters, got {len(instance)}"
    if keyword in ("minItems", "maxItems"):
        bound = "at least" if keyword == "minItems" else "at most"
        return format_param(path), f"must hold {bound} {expected} items, got {len(instance)}"
    if keyword in ("minProperties", "maxProperties") and isinstance(instance, dict):
        bound = "at least" if keyword == "minProperties" else "at most"
        return format_param(path), f"must hold {bound} {expected} members, got {len(instance)}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[keyword]
        return format_param(path), f"must be {op} {expected}, got {instance!r}"
    message = error.message
    return format_param(path), message if len(message) <= 200 else message[:200] + "..."


def _explain(validator: jsonschema.protocols.Validator, body: Any) -> Violation:
    error = best_match(validator.iter_errors(body))
    if error is None:  # the compiled validator and jsonschema disagree: report it, never a 500
        return Violation("invalid_parameter", None, "schema", "rejected by the schema")
    param, detail = _describe(error)
    # the absolute path: best_match may pick an error inside an anyOf branch, whose relative
    # path starts at the branch ("1/minProperties") and names neither the field nor the anyOf
    pointer = "/".join(str(p) for p in error.absolute_schema_path)
    return Violation("invalid_parameter", param or None, f"schema:{pointer}", detail)


def _check_requires(rule: Rule, body: Mapping[str, Any]) -> Violation | None:
    assert rule.compiled is not None
    when, then = rule.compiled
    if when.is_valid(body) and not then.is_valid(body):
        return Violation(rule.error, rule.param, rule.id, rule.message)
    return None


def _check_sum(rule: Rule, body: Mapping[str, Any]) -> Violation | None:
    spec = rule.spec
    if rule.applies is not None and not rule.applies.is_valid(body):
        return None
    field = spec["item_field"]
    actual = 0.0
    for item in body.get(spec["items"], []):  # a loop, not sum(generator): every create runs it
        # Kling's own API sends durations as strings ("5"); the schema has checked they are numeric.
        actual += as_number(item.get(field, 0))
    expected = body.get(spec["total"])
    if expected is None or math.isclose(actual, as_number(expected)):
        return None
    detail = rule.message.format(actual=_number(actual), expected=_number(expected))
    return Violation(rule.error, rule.param, rule.id, detail)


def as_number(value: Any) -> float:
    """A duration as the sum rule reads it: Kling's own API spells numbers as strings (``"5"``);
    a string that is no number reads as NaN, which equals nothing.

    >>> as_number("5"), as_number(10), as_number("five") != as_number("five")
    (5.0, 10.0, True)
    """
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return float(value)


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _check_image(
    rule: Rule,
    body: Mapping[str, Any],
    model: ModelContract,
    seen: dict[str, ImageInfo | ImageProblem],
) -> Violation | None:
    name = rule.param
    value = body.get(name)
    if not isinstance(value, str):
        return None
    if name not in seen:
        seen[name] = inspect_image(value, model.image_limits)
    result = seen[name]
    if isinstance(result, ImageProblem) and result.check == rule.spec["check"]:
        detail = rule.message.format(detail=result.detail, actual=result.actual, expected=result.expected)
        return Violation(rule.error, rule.param, rule.id, detail)
    return None


def parse_json_body(contract: Contract, content_type: str | None, raw: bytes) -> Any:
    """The parsed JSON body of a create, or the :class:`Violation` that refuses it (wrong
    content type, empty, malformed, NaN, non-UTF-8, nested past the contract's depth).

    >>> from mockserver.contract import load_contract
    >>> parse_json_body(load_contract(), "text/plain", b"{}").rule
    'body.content_type'
    """
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        rule = contract.request_rule("content_type")
        return Violation("unsupported_content_type", None, rule, repr(media_type or "none")[:100])
    if not raw.strip():
        return Violation("invalid_json", None, contract.request_rule("body_json"), "the body is empty")
    try:
        return load_json(raw, contract.max_json_depth, contract.max_json_values)
    except TooManyValues as exc:
        return Violation("body_too_complex", None, contract.request_rule("body_values"), str(exc.limit))
    except ValueError as exc:  # malformed, NaN/Infinity, non-UTF-8, lone surrogates, too deep
        detail = str(exc)[:200]
        if "depth limit" in detail:
            detail = "nested too deeply (" + detail + ")"
        return Violation("invalid_json", None, contract.request_rule("body_json"), detail)


def validate_query(op: Operation, query: str) -> dict[str, Any] | Violation:
    """The operation's query parameters, typed, or the :class:`Violation` naming the bad one
    (schemas from the contract's ``query``; integers are converted before they are checked).

    >>> from mockserver.contract import load_contract
    >>> op = load_contract("official").operations["text2video.list"]
    >>> validate_query(op, "pageNum=0").param
    'pageNum'
    """
    raw = parse_qs(query, keep_blank_values=True)
    out: dict[str, Any] = {}
    for name in op.required_query:
        if name not in raw:
            return Violation("invalid_parameter", name, f"query:{name}", "is required")
    for name, schema in op.query.items():
        if name not in raw:
            continue
        value: Any = raw[name][0]
        if schema.get("type") == "integer":
            text = value.strip()
            if not (text.lstrip("-").isdigit() and len(text) < 19):
                return Violation("invalid_parameter", name, f"query:{name}", f"must be an integer, got {value[:20]!r}")
            value = int(text)
        errors = sorted(_query_validator(op.id, name, schema).iter_errors(value), key=lambda e: str(e.validator))
        if errors:
            return Violation("invalid_parameter", name, f"query:{name}", _describe(errors[0])[1])
        out[name] = value
    return out


_QUERY_VALIDATORS: dict[tuple[str, str], jsonschema.protocols.Validator] = {}


def _query_validator(op_id: str, name: str, schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    found = _QUERY_VALIDATORS.get((op_id, name))
    if found is None:
        body = {k: v for k, v in schema.items() if k not in ("default", "description")}
        found = _QUERY_VALIDATORS[(op_id, name)] = jsonschema.Draft202012Validator(body)
    return found


def validate_create(
    contract: Contract, body: Any, *, strict: bool = False, mode: str | None = None
) -> Accepted | Violation:
    """Validate a parsed create body; see the module docstring for the order.

    >>> from mockserver.contract import load_contract
    >>> result = validate_create(load_contract(), {"model": "kling-v2-6", "sound": "on",
    ...     "multi_prompt": [{"prompt": "a cat", "duration": 5}]})
    >>> result.rule, result.param
    ('sound.requires_pro', 'sound')
    """
    if not isinstance(body, dict):
        body_rule = contract.request_rule("body_object")
        return Violation("invalid_json", None, body_rule, f"expected a JSON object, got {_type_name(body)}")
    spec = contract.request
    field_name = spec.model_field
    name = body.get(field_name)
    if name is None:
        for alias in spec.model_aliases:
            if body.get(alias) is not None:
                field_name, name = alias, body[alias]
                break
        else:
            name = spec.default_model
    if name is None:
        return Violation("invalid_parameter", field_name, "schema:required", "is required")
    if not isinstance(name, str):
        return Violation(
            "invalid_parameter",
            field_name,
            f"schema:properties/{field_name}/type",
            f"must be of type string, got {_type_name(name)}",
        )
    model = contract.models.get(name)
    if model is None:
        return Violation("model_not_found", field_name, contract.request_rule("model_known"), repr(name[:100]))
    if mode is None:
        mode = model.mode_for(body, spec.mode_field)
    if mode not in model.request_schemas:
        kinds = ", ".join(sorted(model.request_schemas))
        return Violation(
            "invalid_parameter", field_name, "model.mode", f"{name} does not serve {mode} (it serves {kinds})"
        )
    compiled = _compiled(model)
    rules = compiled.by_mode[mode]
    if rules.clean_body.is_valid(body):
        full = {**model.defaults, **body}
        if (
            (rules.clean_full is None or rules.clean_full.is_valid(full))
            and compiled.image_fields.isdisjoint(full)
            and not (rules.sums and any(_check_sum(rule, full) for rule in rules.sums))
        ):
            return Accepted(model, mode, full)
    if rules.refuse_early_ok is not None and not rules.refuse_early_ok.is_valid(body):
        for rule in rules.refuse_early:
            if found := _check_requires(rule, body):
                return found
    warnings: list[ContractWarning] = []
    if rules.warn_early_ok is not None and not rules.warn_early_ok.is_valid(body):
        warnings.extend(
            ContractWarning(rule.id, rule.param, rule.message)
            for rule in rules.warn_early
            if _check_requires(rule, body)
        )
    shape = compiled.shapes[mode]
    unknown = [] if _all_known(body, shape) else _unknown_paths(body, shape)
    if unknown:
        unknown_rule = contract.request_rule("unknown_field")
        if strict:
            return Violation("unknown_field", format_param(unknown[0]), unknown_rule, "not in the contract")
        for path in unknown:
            param = format_param(path)
            dropped = f"unknown field {param!r} dropped (the real gateway ignores it)"
            warnings.append(ContractWarning(unknown_rule, param, dropped))
        body = _known_only(body, shape)
    if not model.fast_validators[mode].is_valid(body):
        return _explain(model.explainers[mode], body)
    full = {**model.defaults, **body}
    if rules.warn_late_ok is not None and not rules.warn_late_ok.is_valid(full):
        warnings.extend(
            ContractWarning(rule.id, rule.param, rule.message)
            for rule in rules.warn_late
            if _check_requires(rule, full)
        )
    requires_ok = compiled.requires_ok[mode].is_valid(full)
    has_images = not compiled.image_fields.isdisjoint(full)
    if requires_ok and not has_images and not any(_check_sum(rule, full) for rule in rules.sums):
        return Accepted(model=model, mode=mode, body=full, warnings=tuple(warnings))
    # Something may be broken: walk the rules in contract order so the first one is reported.
    seen: dict[str, ImageInfo | ImageProblem] = {}
    for rule in model.rules:
        if rule.phase == "before_schema" or rule.warning or not rule.applies_to(mode):
            continue
        if rule.kind == "requires":
            found = None if requires_ok else _check_requires(rule, full)
        elif rule.kind == "image" and not has_images:
            continue
        elif rule.kind == "sum_equals":
            found = _check_sum(rule, full)
        else:
            found = _check_image(rule, full, model, seen)
        if found:
            return found
    images = {k: v for k, v in seen.items() if isinstance(v, ImageInfo)}
    warnings.extend(
        ContractWarning(
            contract.request_rule("image_not_fetched"),
            k,
            f"{k} is a URL; the fake does not fetch it, so its content was not checked",
        )
        for k, v in images.items()
        if v.url
    )
    return Accepted(model=model, mode=mode, body=full, warnings=tuple(warnings), images=images)
