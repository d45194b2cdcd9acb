"""Assemble the OpenAPI 3.1 document of a face from its contract pieces.

Nothing here describes a shape: paths come from the index, request bodies from the derived
request schemas, responses from the response schemas, and error responses from the catalogue.
``kling-testkit contract export`` writes it; the server serves it at ``/openapi.json``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from mockserver.contract.loader import Contract

_ERROR_REF = "#/components/schemas/error"


def _component_name(relpath: str) -> str:
    return relpath.rsplit("/", 1)[-1].removesuffix(".schema.json").replace(".", "_")


def _rewrite_refs(node: Any, names: Mapping[str, str]) -> Any:
    """Point cross-file ``$ref``s at components, so the document stands alone."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                file, _, fragment = value.partition("#")
                out[key] = f"#/components/schemas/{names[file]}{fragment}"
            elif key in ("$id", "$schema"):
                continue
            else:
                out[key] = _rewrite_refs(value, names)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, names) for v in node]
    return node


def _prefix_local_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                prefix + v[1:]
                if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs")
                else _prefix_local_refs(v, prefix)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_prefix_local_refs(v, prefix) for v in node]
    return node


def build_openapi(contract: Contract) -> dict[str, Any]:
    """The face's OpenAPI 3.1 document.

    >>> from mockserver.contract import load_contract
    >>> doc = build_openapi(load_contract())
    >>> doc["openapi"], sorted(doc["paths"])[:1]
    ('3.1.0', ['/__media__/{file}'])
    """
    index = contract.index
    files = {rel.rsplit("/", 1)[-1]: _component_name(rel) for rel in contract.response_schemas}
    schemas: dict[str, Any] = {}
    for rel, schema in contract.response_schemas.items():
        name = _component_name(rel)
        schemas[name] = _prefix_local_refs(
            _rewrite_refs(copy.deepcopy(dict(schema)), files), f"#/components/schemas/{name}"
        )
    request_refs = []
    for model in contract.models.values():
        for mode, schema in model.request_schemas.items():
            name = f"{model.name.replace('-', '_')}_{mode}_request"
            body = {k: v for k, v in schema.items() if k not in ("$id", "$schema", "$comment")}
            body["x-rules"] = [
                {"id": r.id, "param": r.param, "message": r.message, "source": r.source}
                for r in model.rules
                if r.kind != "image" or r.param in body.get("properties", {})
            ]
            schemas[name] = body
            request_refs.append({"$ref": f"#/components/schemas/{name}"})
    paths: dict[str, Any] = {}
    for op in contract.operations.values():
        responses: dict[str, Any] = {}
        for status, rel in op.responses.items():
            if rel == "binary":
                responses[status] = {
                    "description": "the video",
                    "content": {
                        op.spec.get("content_type", "application/octet-stream"): {
                            "schema": {"type": "string", "contentMediaType": "video/mp4"}
                        }
                    },
                }
            else:
                ref = f"#/components/schemas/{_component_name(rel)}"
                responses[status] = {
                    "description": "success",
                    "content": {"application/json": {"schema": {"$ref": ref}}},
                }
        for key in op.errors:
            spec = contract.errors[key]
            if spec.http_status == 0:
                continue
            entry = responses.setdefault(
                str(spec.http_status),
                {
                    "description": "",
                    "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
                },
            )
            entry["description"] = "; ".join(filter(None, [entry["description"], f"{key} ({spec.code})"]))
            if spec.http_status == 429:
                entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}
        operation: dict[str, Any] = {
            "operationId": op.id,
            "summary": op.summary,
            "responses": responses,
        }
        params = [p.strip("{}") for p in op.path.split("/") if p.startswith("{")]
        if params:
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params
            ]
        if op.method == "POST":
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"anyOf": request_refs}}},
            }
        operation["security"] = [{"bearer": []}] if op.auth else []
        paths.setdefault(op.path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": index["title"],
            "version": "kling-v2-6",
            "description": index.get("$comment", ""),
        },
        "servers": [{"url": url} for url in index["base_urls"]],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Authorization: Bearer sk-...",
                }
            },
        },
    }
