"""Assemble the OpenAPI 3.1 document of a face from its contract pieces.

Nothing here describes a shape: paths come from the index, request bodies from the derived
request schemas, responses from the response schemas, and error responses from the catalogue.
``kling-testkit contract export`` writes it; the server serves it at ``/openapi.json``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from mockserver.contract.loader import Contract


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


def build_openapi(
    mounts: Contract | Sequence[tuple[str, Contract]], *, server_url: str | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of one face, or of every mounted face (``(prefix, contract)``
    pairs, as a server mounts them). ``server_url``: the running fake's own address, listed
    first in ``servers``.

    With several faces, component names and security schemes carry the face's name
    (``official_error``), and a face mounted again under a prefix gets operation ids prefixed
    with it, so the document stays valid.

    >>> from mockserver.contract import load_contract
    >>> doc = build_openapi(load_contract())
    >>> doc["openapi"], sorted(doc["paths"])[:1]
    ('3.1.0', ['/__media__/{file}'])
    """
    pairs = [("", mounts)] if isinstance(mounts, Contract) else list(mounts)
    faces = list(dict.fromkeys(c.face for _, c in pairs))
    several = len(faces) > 1
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    security: dict[str, Any] = {}
    done: set[str] = set()
    for prefix, contract in pairs:
        ns = f"{contract.face}_" if several else ""
        if contract.face not in done:
            done.add(contract.face)
            schemas.update(_schemas(contract, ns))
            scheme = contract.index.get("auth", {})
            security[f"{ns}bearer"] = {
                "type": "http",
                "scheme": "bearer",
                "description": scheme.get("description", "Authorization: Bearer sk-..."),
            }
            if scheme.get("scheme") == "jwt":
                security[f"{ns}bearer"]["bearerFormat"] = "JWT"
        for path, item in _paths(contract, ns, prefix).items():
            paths.setdefault(path, {}).update(item)
    first = pairs[0][1]
    index = first.index
    # The running fake's own address first (a fuzzer or client pointed at the document reaches
    # the fake, not the provider), then the providers' hosts the faces stand in for.
    servers = [{"url": server_url, "description": "this fake"}] if server_url else []
    servers.extend({"url": url} for prefix, c in pairs for url in c.base_urls if prefix == "")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": index["title"] if not several else "Kling video generation: " + ", ".join(faces),
            "version": "kling-v2-6",
            "description": index.get("$comment", "") if not several else "Faces: " + ", ".join(faces),
        },
        "servers": servers,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": security},
    }


def _schemas(contract: Contract, ns: str) -> dict[str, Any]:
    files = {rel.rsplit("/", 1)[-1]: ns + _component_name(rel) for rel in contract.response_schemas}
    schemas: dict[str, Any] = {}
    for rel, schema in contract.response_schemas.items():
        name = ns + _component_name(rel)
        schemas[name] = _prefix_local_refs(
            _rewrite_refs(copy.deepcopy(dict(schema)), files), f"#/components/schemas/{name}"
        )
    for model in contract.models.values():
        for mode, schema in model.request_schemas.items():
            body = {k: v for k, v in schema.items() if k not in ("$id", "$schema", "$comment")}
            body["x-rules"] = [
                {"id": r.id, "param": r.param, "message": r.message, "source": r.source}
                for r in model.rules
                if r.kind != "image" or r.param in body.get("properties", {})
            ]
            schemas[_request_name(ns, model.name, mode)] = body
    return schemas


def _request_name(ns: str, model: str, mode: str) -> str:
    return f"{ns}{model.replace('-', '_').replace('.', '_')}_{mode}_request"


def _paths(contract: Contract, ns: str, prefix: str) -> dict[str, Any]:
    error_ref = f"#/components/schemas/{ns}{_component_name(contract.error_envelope)}"
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
                ref = f"#/components/schemas/{ns}{_component_name(rel)}"
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
                    "content": {"application/json": {"schema": {"$ref": error_ref}}},
                },
            )
            entry["description"] = "; ".join(filter(None, [entry["description"], f"{key} ({spec.code})"]))
            if spec.http_status == 429 and spec.retry_after is not None:
                entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}
        op_id = op.id if not prefix else f"{prefix.strip('/').replace('/', '.')}.{op.id}"
        operation: dict[str, Any] = {
            "operationId": op_id,
            "summary": op.summary,
            "responses": responses,
        }
        params = [p.strip("{}") for p in op.path.split("/") if p.startswith("{")]
        parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
        parameters.extend(
            {
                "name": name,
                "in": "query",
                "required": name in op.required_query,
                "schema": {k: v for k, v in schema.items() if k != "description"},
                **({"description": schema["description"]} if "description" in schema else {}),
            }
            for name, schema in op.query.items()
        )
        if parameters:
            operation["parameters"] = parameters
        if op.method == "POST":
            refs = [
                {"$ref": f"#/components/schemas/{_request_name(ns, model.name, mode)}"}
                for model in contract.models.values()
                for mode in model.request_schemas
                if op.kind is None or mode == op.kind
            ]
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"anyOf": refs}}},
            }
        operation["security"] = [{f"{ns}bearer": []}] if op.auth else []
        paths.setdefault(prefix + op.path, {})[op.method.lower()] = operation
    return paths
