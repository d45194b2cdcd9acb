"""Derive the request JSON Schemas (draft 2020-12) from a model's published form.

The committed ``*.request.schema.json`` files are outputs of :func:`derive_request_schema`;
``tests/contracts/test_derivation.py`` fails when they drift, and
``python -m mockserver.contract.derive`` rewrites them. The form is the source so that a
change to the provider's page is one edit to ``form.json``, not a hunt through schemas.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://kling-testkit.dev/contracts/gateway/models"


def _field_schema(field: Mapping[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    if "const" in field:
        schema["const"] = field["const"]
    else:
        schema["type"] = field["type"]
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


def derive_request_schema(form: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """Return the create-request JSON Schema of ``form`` for ``mode``.

    >>> form = {"model": "m", "modes": {"text2video": {}}, "fields": [
    ...     {"name": "model", "type": "string", "required": True, "const": "m"}]}
    >>> derive_request_schema(form, "text2video")["required"]
    ['model']
    """
    if mode not in form["modes"]:
        raise ValueError(f"form {form['model']!r} has no mode {mode!r}; known: {sorted(form['modes'])}")
    fields = [f for f in form["fields"] if mode in f.get("modes", [mode])]
    model = form["model"]
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "$id": f"{ID_BASE}/{model}/{mode}.request.schema.json",
        "$comment": "Derived from form.json by mockserver/contract/derive.py; do not edit by hand.",
    }
    schema.update(_object_schema(fields, title=f"{model} {mode} create request"))
    return schema


def render(schema: Mapping[str, Any]) -> str:
    """The committed text of a derived schema (stable key order, trailing newline)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Rewrite every derived request schema from its form."""
    from mockserver.contract.loader import contracts_root

    root = contracts_root()
    index = json.loads((root / "gateway" / "index.json").read_text(encoding="utf-8"))
    for spec in index["models"].values():
        form = json.loads((root / "gateway" / spec["form"]).read_text(encoding="utf-8"))
        for mode, rel in spec["requests"].items():
            target = Path(root / "gateway" / rel)
            target.write_text(render(derive_request_schema(form, mode)), encoding="utf-8")
            print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
