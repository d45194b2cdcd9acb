"""Derive the request JSON Schemas (draft 2020-12) from a model's published form.

The committed ``*.request.schema.json`` files are outputs of :func:`derive_request_schema`;
``tests/contracts/test_derivation.py`` fails when they drift, and
``python -m mockserver.contract.derive`` rewrites them. The form is the source so that a
change to the provider's page is one edit to ``form.json``, not a hunt through schemas.

A face whose ``index.json`` has a ``derivation`` section (the official face) publishes one
model-independent field table and a capability map instead of one form per model. For such a
face the model's ``form.json`` and ``rules.json`` are derived too: :func:`derive_model_form`
narrows the shared table by the model's capability row (its ``mode``/``duration``/``sound``
values, its kinds), and :func:`derive_model_rules` turns the row's limits into named rules
(``sound.requires_pro``, ``image_tail.requires_silent``, ``camera_control.unsupported``...)
placed before the face's shared rules. Every derived file goes through :func:`derived_files`,
which both the command and the drift test use.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_ROOT = "https://kling-testkit.dev/contracts"
ID_BASE = f"{ID_ROOT}/gateway/models"

#: what a capability row's ``values`` may narrow, and the form field each one names
NARROWABLE = ("mode", "duration", "sound")


def _field_schema(field: Mapping[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    if "const" in field:
        schema["const"] = field["const"]
    else:
        schema["type"] = field["type"]
    if field["type"] == "object" and "fields" in field:
        schema.update(_object_schema(field["fields"], title=None))
    schema.update(field.get("limits", {}))
    if field["type"] == "array" and "items" in field:
        schema["items"] = _object_schema(field["items"], title=None)
    if field.get("description"):
        schema["description"] = field["description"]
    if "default" in field:
        schema["default"] = field["default"]
    if field.get("content"):
        schema["x-content"] = field["content"]
    return schema


def _object_schema(fields: list[Mapping[str, Any]], title: str | None) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    if title:
        schema["title"] = title
    schema["type"] = "object"
    schema["required"] = [f["name"] for f in fields if f.get("required")]
    schema["properties"] = {f["name"]: _field_schema(f) for f in fields}
    # The contract is strict; the fake's lenient default (drop and warn, as the gateway does)
    # strips unknown fields before validating, so both modes share this one schema.
    schema["additionalProperties"] = False
    return schema


def derive_request_schema(form: Mapping[str, Any], mode: str, face: str = "gateway") -> dict[str, Any]:
    """Return the create-request JSON Schema of ``form`` for ``mode``.

    >>> form = {"model": "m", "modes": {"text2video": {}}, "fields": [
    ...     {"name": "model", "type": "string", "required": True, "const": "m"}]}
    >>> derive_request_schema(form, "text2video")["required"]
    ['model']
    >>> derive_request_schema(form, "text2video", face="official")["$id"]
    'https://kling-testkit.dev/contracts/official/models/m/text2video.request.schema.json'
    """
    if mode not in form["modes"]:
        raise ValueError(f"form {form['model']!r} has no mode {mode!r}; known: {sorted(form['modes'])}")
    fields = [f for f in form["fields"] if mode in f.get("modes", [mode])]
    model = form["model"]
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{ID_ROOT}/{face}/models/{model}/{mode}.request.schema.json",
        "$comment": "Derived from form.json by mockserver/contract/derive.py; do not edit by hand.",
    }
    schema.update(_object_schema(fields, title=f"{model} {mode} create request"))
    return schema


# -- capability map: one field table, narrowed per model --------------------------------------


def _allowed_values(field: Mapping[str, Any], values: Sequence[Any]) -> list[Any]:
    """``values`` as the field's enum: a string-typed field that also accepts integers takes
    each numeric string's integer twin too (``"5"`` and ``5``)."""
    types = field["type"] if isinstance(field["type"], list) else [field["type"]]
    twins = [int(v) for v in values if "integer" in types and isinstance(v, str) and v.isdigit()]
    return [*values, *twins]


def _row_values(row: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The values a model takes for each narrowable field (``sound``: any mode's)."""
    values = {key: list(row["values"][key]) for key in ("mode", "duration")}
    sound: list[Any] = []
    for mode in values["mode"]:
        sound += [v for v in row["sound_by_mode"][mode] if v not in sound]
    values["sound"] = sound
    return values


def _field_modes(field: Mapping[str, Any], modes: Sequence[str]) -> list[str]:
    return [m for m in modes if m in field.get("modes", modes)]


def derive_model_form(form: Mapping[str, Any], capabilities: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The shared field table narrowed to ``model``'s capability row.

    The model fields (``"narrow": "model"``) become a ``const`` of the model id (the default
    stays only on the default model); ``"narrow": "values"`` fields take the row's values as
    their enum; a field the row ``ignores`` loses its default (so only a field the client really
    sent triggers the warning rule); kinds the row lacks are dropped.

    >>> form = {"source": {}, "modes": {"text2video": {}, "image2video": {}}, "fields": [
    ...     {"name": "model_name", "type": "string", "narrow": "model", "default": "a"},
    ...     {"name": "mode", "type": "string", "narrow": "values", "default": "std",
    ...      "limits": {"enum": ["std", "pro"]}}]}
    >>> caps = {"models": {"b": {"source": "decision", "modes": ["image2video"],
    ...     "values": {"mode": ["pro"], "duration": ["5"]}, "sound_by_mode": {"pro": ["off"]},
    ...     "defaults": {"mode": "pro"}}}}
    >>> derived = derive_model_form(form, caps, "b")
    >>> sorted(derived["modes"]), derived["fields"][0]["const"], derived["fields"][1]["limits"]
    (['image2video'], 'b', {'enum': ['pro']})
    >>> derived["fields"][1]["default"]
    'pro'
    """
    row = capabilities["models"][model]
    values = _row_values(row)
    modes = [m for m in form["modes"] if m in row["modes"]]
    if len(modes) != len(row["modes"]):
        raise ValueError(f"capability row {model!r} names unknown kinds {row['modes']}; form has {list(form['modes'])}")
    fields = []
    for raw in form["fields"]:
        if not _field_modes(raw, modes):
            continue
        field = {k: copy.deepcopy(v) for k, v in raw.items() if k != "narrow"}
        how = raw.get("narrow")
        if how == "model":
            field = {"name": field["name"], "type": field["type"], "const": model, **field}
            field.pop("limits", None)
            if field.get("default") != model:
                field.pop("default", None)
        elif how == "values":
            allowed = values[field["name"]]
            field["limits"] = {**field.get("limits", {}), "enum": _allowed_values(raw, allowed)}
            default = row.get("defaults", {}).get(field["name"], raw.get("default"))
            if default is not None and default not in allowed:
                raise ValueError(f"{model}: default {field['name']}={default!r} is not one of {allowed}")
            if default is not None:
                field["default"] = default
            field.setdefault("decisions", []).append(
                {"decision": f"{model} takes {field['name']} {', '.join(map(str, allowed))}.", "source": row["source"]}
            )
        elif how is not None:
            raise ValueError(f"field {raw['name']!r}: unknown narrowing {how!r}")
        if raw["name"] in row.get("ignored", []):
            field.pop("default", None)
        fields.append(field)
    return {
        "$comment": (
            "Derived from ../../form.json and ../../capabilities.json by mockserver/contract/derive.py; "
            "do not edit by hand."
        ),
        "model": model,
        "source": form["source"],
        "capability": {"source": row["source"], **({"decisions": row["decisions"]} if "decisions" in row else {})},
        "modes": {m: form["modes"][m] for m in modes},
        "fields": fields,
    }


def _suffix(key: str, allowed: Sequence[Any]) -> str:
    if key == "sound" and list(allowed) == ["off"]:
        return "requires_silent"
    if key == "mode" and len(allowed) == 1:
        return f"requires_{allowed[0]}"
    return key


def _requires(
    rule_id: str, param: str, when: Mapping[str, Any], then: Mapping[str, Any], message: str, source: str
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "param": param,
        "error": "rule_violation",
        "kind": "requires",
        "when": dict(when),
        "then": dict(then),
        "message": message,
        "source": source,
    }


def _warning(rule_id: str, param: str, when: Mapping[str, Any], message: str, source: str) -> dict[str, Any]:
    """A rule that never refuses: broken by every body that matches ``when`` as sent."""
    return {
        "id": rule_id,
        "param": param,
        "warning": True,
        "phase": "before_schema",
        "kind": "requires",
        "when": dict(when),
        "then": {"not": dict(when)},
        "message": message,
        "source": source,
    }


def _capability_rules(
    model_form: Mapping[str, Any], capabilities: Mapping[str, Any], model: str
) -> list[dict[str, Any]]:
    row = capabilities["models"][model]
    source = row["source"]
    modes = list(model_form["modes"])
    fields = {f["name"]: f for f in model_form["fields"]}
    values = _row_values(row)
    rules: list[dict[str, Any]] = []
    for value in values["sound"]:
        with_value = [m for m in values["mode"] if value in row["sound_by_mode"][m]]
        if with_value != values["mode"]:
            rules.append(
                _requires(
                    f"sound.{_suffix('mode', with_value)}",
                    "sound",
                    {"properties": {"sound": {"const": value}}},
                    {"properties": {"mode": {"enum": with_value}}},
                    f"sound={value} requires mode={' or '.join(with_value)} on {model}",
                    f"{source}: capability map",
                )
            )
    for name, feature in capabilities["features"].items():
        support = row["features"][name]
        for param in feature["fields"]:
            if param not in fields:
                continue
            present = feature.get("when", {}).get(param, {"required": [param]})
            label = f"{param} ({feature['label']})"
            if support is False:
                rules.append(
                    _requires(
                        f"{param}.unsupported",
                        param,
                        present,
                        {"not": present},
                        f"{model} does not offer {feature['label']} ({param})",
                        f"{source}: the capability row of {model} has no {feature['label']}",
                    )
                )
                continue
            if support == "unlisted":
                rules.append(
                    _warning(
                        f"{param}.not_in_capability_map",
                        param,
                        present,
                        f"the capability map lists no {feature['label']} for {model}; "
                        f"the real service may refuse {param}",
                        f"decision: the field table of {model} documents {param} but its capability row does not",
                    )
                )
                continue
            field_modes = _field_modes(fields[param], modes)
            lacking = [m for m in field_modes if m not in support.get("modes", field_modes)]
            if lacking:
                rule = _requires(
                    f"{param}.unsupported",
                    param,
                    present,
                    {"not": present},
                    f"{model} offers {feature['label']} ({param}) only in {' and '.join(support['modes'])}",
                    f"{source}: capability map",
                )
                rule["modes"] = lacking
                rules.append(rule)
            for key, allowed in support.get("values", {}).items():
                if key not in NARROWABLE:
                    raise ValueError(f"{model}: feature {name!r} narrows {key!r}, not one of {NARROWABLE}")
                if list(allowed) == values[key]:
                    continue
                if not set(allowed) <= set(values[key]):
                    raise ValueError(f"{model}: feature {name!r} allows {key} {allowed}, the model only {values[key]}")
                rules.append(
                    _requires(
                        f"{param}.{_suffix(key, allowed)}",
                        param,
                        present,
                        {"properties": {key: {"enum": _allowed_values(fields[key], allowed)}}},
                        f"{label} requires {key}={' or '.join(allowed)} on {model}",
                        f"{source}: capability map",
                    )
                )
    for param, why in row.get("ignored", {}).items():
        rules.append(
            _warning(
                f"{param}.ignored",
                param,
                {"required": [param]},
                f"{model} ignores {param}: the real service accepts it and does nothing with it",
                why,
            )
        )
    return rules


def derive_model_rules(
    shared: Mapping[str, Any], capabilities: Mapping[str, Any], model_form: Mapping[str, Any]
) -> dict[str, Any]:
    """The model's rules: its capability rules first, then the face's shared rules that apply
    (their ``param`` is a field of one of the model's kinds)."""
    model = model_form["model"]
    modes = list(model_form["modes"])
    fields = {f["name"]: _field_modes(f, modes) for f in model_form["fields"]}
    rules = _capability_rules(model_form, capabilities, model)
    for rule in shared["rules"]:
        top = rule["param"].split(".")[0].split("[")[0]
        kinds = [m for m in rule.get("modes", modes) if m in fields.get(top, [])]
        if kinds:
            rules.append(copy.deepcopy(dict(rule)))
    seen: set[str] = set()
    for rule in rules:
        if rule["id"] in seen:
            raise ValueError(f"{model}: rule id {rule['id']!r} derived twice")
        seen.add(rule["id"])
    row = capabilities["models"][model]
    output = copy.deepcopy(dict(shared["output"]))
    if "resolution_by_mode" in row:
        output["resolution_by_mode"] = row["resolution_by_mode"]
    return {
        "$comment": (
            "Derived from ../../rules.json and ../../capabilities.json by mockserver/contract/derive.py; "
            "do not edit by hand. " + shared["$comment"]
        ),
        "model": model,
        "image_limits": shared["image_limits"],
        "rules": rules,
        "output": output,
    }


# -- files ------------------------------------------------------------------------------------


def render(schema: Mapping[str, Any]) -> str:
    """The committed text of a derived schema (stable key order, trailing newline)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def derived_files(root: Path, face: str) -> dict[Path, str]:
    """Every file the derivation writes for ``face``, with its text."""
    face_dir = root / face
    index = _read(face_dir / "index.json")
    sources = index.get("derivation")
    out: dict[Path, str] = {}
    for name, spec in index["models"].items():
        if "maps_onto" in spec:  # a form mapped onto another face's model: derived at load time
            continue
        if sources:
            capabilities = _read(face_dir / sources["capabilities"])
            form = derive_model_form(_read(face_dir / sources["form"]), capabilities, name)
            rules = derive_model_rules(_read(face_dir / sources["rules"]), capabilities, form)
            out[face_dir / spec["form"]] = render(form)
            out[face_dir / spec["rules"]] = render(rules)
            if sorted(spec["requests"]) != sorted(form["modes"]):
                raise ValueError(
                    f"{face}/index.json model {name!r}: requests {sorted(spec['requests'])}, "
                    f"capability row has {sorted(form['modes'])}"
                )
        else:
            form = _read(face_dir / spec["form"])
        for mode, rel in spec["requests"].items():
            out[face_dir / rel] = render(derive_request_schema(form, mode, face=face))
    return out


def faces(root: Path) -> list[str]:
    """The faces of a contracts folder: each sub-folder with an ``index.json``."""
    return sorted(p.parent.name for p in root.glob("*/index.json"))


def main() -> int:
    """Rewrite every derived file of every face."""
    from mockserver.contract.loader import contracts_root

    root = contracts_root()
    for face in faces(root):
        for target, text in derived_files(root, face).items():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
