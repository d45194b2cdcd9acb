"""Assemble the OpenAPI 3.1 document of a face from its contract pieces.

Nothing here describes a shape: paths come from the index, request bodies from the derived
request schemas, responses from the response schemas, and error responses from the catalogue.
``kling-testkit contract export`` writes it; the server serves it at ``/openapi.json``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema

from mockserver.contract.loader import Contract, ModelContract, Operation


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
            naming = _names_its_model(contract, model, body)
            cross = _cross_field(model, mode)
            if cross or naming:
                body["allOf"] = [*body.get("allOf", []), *naming, *cross]
            body["x-rules"] = [
                {"id": r.id, "param": r.param, "message": r.message, "source": r.source}
                for r in model.rules
                if r.kind != "image" or r.param in body.get("properties", {})
            ]
            schemas[_request_name(ns, model.name, mode)] = body
            form = _form_variant(contract, body)
            if form is not None:
                schemas[_request_name(ns, model.name, mode) + "_form"] = form
    return schemas


def _form_variant(contract: Contract, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The request schema as a ``multipart/form-data`` form (where the contract takes forms):
    the file field a binary part (its media types in the requestBody's ``encoding``), every
    other field as in JSON (a form sends it as text, which the face reads as the schema says)."""
    mapping = contract.form_mapping
    if mapping is None or MULTIPART not in contract.request.content_types:
        return None
    out = copy.deepcopy(dict(body))
    props = out.get("properties", {})
    if mapping.file_field is not None and mapping.file_field in props:
        described = props[mapping.file_field].get("description")
        props[mapping.file_field] = {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            **({"description": described} if described else {}),
        }
    return out


def _names_its_model(contract: Contract, model: ModelContract, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The server picks the model by its field or an alias (absent: the default model), so only
    the default model's schema may leave them all out: a body valid for another model's schema
    without them would be judged as the default model's."""
    spec = contract.request
    names = [n for n in (spec.model_field, *spec.model_aliases) if n in body.get("properties", {})]
    required = set(body.get("required", []))
    if not names or model.name == spec.default_model or required & set(names):
        return []
    return [{"anyOf": [{"required": [n]} for n in names]}]


def _on_defaults(schema: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` as it reads on a body *before* the form's defaults are applied: a property
    whose default the subschema refuses must be present (absent, the default would apply)."""
    out = dict(schema)
    required = list(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        if (
            name not in required
            and name in defaults
            and not jsonschema.Draft202012Validator(sub).is_valid(defaults[name])
        ):
            required.append(name)
    if required:
        out["required"] = required
    return out


def _single_item_sum(model: ModelContract, mode: str, rule: Any) -> list[dict[str, Any]]:
    """What JSON Schema can say of a ``sum_equals`` rule: with one item, the item's field *is*
    the total, so for each value the total may take, one item must carry that value. Sums over
    several items stay unstated (``x-rules``)."""
    spec = rule.spec
    props = model.request_schemas[mode].get("properties", {})
    values = props.get(spec["total"], {}).get("enum")
    if spec["items"] not in props or not values:
        return []
    default = model.defaults.get(spec["total"])
    out = []
    for value in values:
        when: dict[str, Any] = {"properties": {spec["total"]: {"const": value}}}
        if value != default:
            when["required"] = [spec["total"]]
        one_item = {"items": {"properties": {spec["item_field"]: {"const": value}}, "required": [spec["item_field"]]}}
        then = {"properties": {spec["items"]: {"if": {"maxItems": 1}, "then": one_item}}}
        out.append({"if": when, "then": then, "x-rule": rule.id})
    return out


def _cross_field(model: ModelContract, mode: str) -> list[dict[str, Any]]:
    """The model's ``requires`` rules as ``if``/``then`` (what JSON Schema can say of them), and
    the one-item case of its sums: a fuzzer that honours them generates bodies the rules accept.
    Rules JSON Schema cannot state (sums over several shots, image content) stay in ``x-rules``."""
    out = []
    for rule in model.rules:
        if rule.kind == "sum_equals" and rule.applies is None and rule.applies_to(mode):
            out.extend(_single_item_sum(model, mode, rule))
        if rule.kind != "requires" or rule.warning or not rule.applies_to(mode):
            continue
        when, then = rule.spec["when"], rule.spec["then"]
        if rule.phase != "before_schema":  # checked with defaults applied: restate for raw bodies
            when, then = _on_defaults(when, model.defaults), _on_defaults(then, model.defaults)
        out.append({"if": when, "then": then, "x-rule": rule.id})
    return out


#: the media type of a form body (RFC 7578)
MULTIPART = "multipart/form-data"


def _request_name(ns: str, model: str, mode: str) -> str:
    return f"{ns}{model.replace('-', '_').replace('.', '_')}_{mode}_request"


#: errors any door may answer for any operation before the face sees it (bounds of issue 13)
_DOOR_ERRORS = ("headers_too_large", "server_busy")
#: and for an operation that takes a body
_BODY_ERRORS = ("body_too_large", "body_too_complex", "request_timeout")


def _door_errors(contract: Contract, op: Operation) -> list[str]:
    keys = [*_DOOR_ERRORS, *(_BODY_ERRORS if op.method in ("POST", "PUT", "PATCH") else ())]
    return [k for k in keys if k in contract.errors and k not in op.errors]


def _path_schema(contract: Contract, name: str) -> dict[str, Any]:
    """A path parameter's schema: task ids and media file names carry the face's id pattern."""
    pattern = contract.id_format.pattern
    if name == "file":
        return {"type": "string", "pattern": f"^{pattern}\\.mp4$", "description": "<task id>.mp4"}
    if name == "task_id":
        lookup = contract.index.get("lookup", {}).get("by", ["task_id"])
        if "external_task_id" in lookup:  # the caller's own ids are looked up on the same path
            return {
                "type": "string",
                "minLength": 1,
                "description": f"a task id (pattern ^{pattern}$) or the caller's external_task_id",
            }
        return {"type": "string", "pattern": f"^{pattern}$"}
    return {"type": "string"}


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
        for key in (*op.errors, *_door_errors(contract, op)):
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
        parameters = [{"name": p, "in": "path", "required": True, "schema": _path_schema(contract, p)} for p in params]
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
            content: dict[str, Any] = {}
            for media_type in contract.request.content_types:
                if media_type == MULTIPART and contract.form_mapping is not None:
                    mapping = contract.form_mapping
                    form_refs = [{"$ref": ref["$ref"] + "_form"} for ref in refs]
                    content[media_type] = {"schema": {"anyOf": form_refs}}
                    if mapping.file_field is not None:
                        types = ", ".join(mapping.file_types)
                        content[media_type]["encoding"] = {mapping.file_field: {"contentType": types}}
                else:
                    content[media_type] = {"schema": {"anyOf": refs}}
            operation["requestBody"] = {"required": True, "content": content}
        operation["security"] = [{f"{ns}bearer": []}] if op.auth else []
        paths.setdefault(prefix + op.path, {})[op.method.lower()] = operation
    return paths
