"""Contract export and contract diff: publish the derived schemas, and gate contract changes in CI.

``export_contract(None, folder)`` writes what a client team or another tool needs, for every
face: the OpenAPI 3.1 document of every face as a server mounts them, and per face (``gateway/``,
``official/``...) the derived request JSON Schemas, the response schemas and a ``manifest.json``
with the operations (and their query parameters), the named rules, the error catalogue, the
status vocabulary, the timestamp unit and the task id format. ``export_contract(contract,
folder)`` writes one face alone, flat. ``diff_contracts(old, new)`` compares two versions
(contract folders or exported folders, in any mix) face by face and classifies each change as
breaking for clients or not; a one-face export is compared with that face only.

Breaking depends on direction. A **request** schema constrains what clients send, so tightening
it breaks them (removed enum value, lower maximum, new required field, new named rule) and
loosening does not. A **response** schema describes what clients receive, so the reverse holds:
an added enum value (a new status a client cannot handle), a loosened limit or a removed
required field breaks them, while tightening does not. Removing a field, an operation, a face
or a catalogued error shape, and changing a type, a timestamp unit or an id format, are breaking
both ways. Changes the walker cannot order (a new ``pattern``, a changed ``$ref``) are reported
as breaking, to be judged by a person.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kling_testkit.errors import KlingTestkitError
from mockserver.contract import Contract, ContractError, load_contract
from mockserver.contract.openapi import build_openapi
from mockserver.faces import face_names

__all__ = [
    "Change",
    "ContractLoadError",
    "diff_contracts",
    "diff_schema",
    "export_contract",
    "load_surface",
    "load_surfaces",
]

EXPORT_FORMAT = "kling-testkit-contract-export"
_IGNORED = frozenset({"description", "title", "$comment", "$id", "$schema", "examples", "x-content"})
_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


class ContractLoadError(KlingTestkitError):
    """A folder is neither a contract folder nor an export, or its files are broken."""


@dataclass(frozen=True)
class Change:
    """One difference between two contract versions.

    ``face`` is the face whose folder changed; a line names it before the subject unless it is
    the default face (the first registered, whose contract ``load_contract()`` returns).

    >>> Change("request", "kling-v2-6/text2video", "/properties/mode/enum", "removed value 'pro'", True).line()
    "BREAKING  request   kling-v2-6/text2video /properties/mode/enum: removed value 'pro'"
    >>> Change("response", "lifecycle", "/statuses", "new task status 'x'", True, face="official").line()
    "BREAKING  response  official:lifecycle /statuses: new task status 'x'"
    """

    direction: str
    subject: str
    pointer: str
    detail: str
    breaking: bool
    face: str | None = None

    def line(self) -> str:
        flag = "BREAKING" if self.breaking else "ok      "
        subject = self.subject if self.face in (None, face_names()[0]) else f"{self.face}:{self.subject}"
        return f"{flag}  {self.direction:<9} {subject} {self.pointer}: {self.detail}".rstrip()

    def to_json(self) -> dict[str, Any]:
        return {
            "face": self.face,
            "direction": self.direction,
            "subject": self.subject,
            "pointer": self.pointer,
            "detail": self.detail,
            "breaking": self.breaking,
        }


# -- export ----------------------------------------------------------------------------------


def _manifest(contract: Contract) -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for op in contract.operations.values():
        entry: dict[str, Any] = {
            "method": op.method,
            "path": op.path,
            "responses": dict(op.responses),
            "errors": list(op.errors),
        }
        if op.query:
            entry["query"] = {name: dict(schema) for name, schema in op.query.items()}
            entry["required_query"] = list(op.required_query)
        operations[op.id] = entry
    return {
        "format": EXPORT_FORMAT,
        "version": 1,
        "face": contract.face,
        "operations": operations,
        "requests": {
            f"{name}/{mode}": f"requests/{name}/{mode}.request.schema.json"
            for name, model in contract.models.items()
            for mode in model.request_schemas
        },
        "rules": {
            name: {r.id: {"param": r.param, "error": r.error, "kind": r.kind} for r in model.rules}
            for name, model in contract.models.items()
        },
        "errors": {
            key: {"http_status": spec.http_status, "type": spec.type, "code": spec.code}
            for key, spec in contract.errors.items()
        },
        # the machine-readable fields of a failed task's reason (the gateway's type and code;
        # Kling's reason is text only), not the human message
        "task_failures": {
            key: {k: v for k, v in row.items() if k in ("type", "code")} for key, row in contract.task_failures.items()
        },
        "statuses": [contract.status_projection[s] for s in contract.lifecycle["statuses"]],
        "terminal": [contract.status_projection[s] for s in contract.lifecycle["terminal"]],
        "timestamp_unit": "milliseconds" if contract.timestamp_scale == 1000 else "seconds",
        "task_id_pattern": contract.id_format.pattern,
    }


def _dump(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def mounted(contracts: list[Contract]) -> list[tuple[str, Contract]]:
    """``(prefix, contract)`` for every face as a server mounts them by default: each at the
    root, plus the path prefixes its contract declares (``mounts.prefixes``)."""
    out = []
    for contract in contracts:
        out.append(("", contract))
        for entry in contract.index.get("mounts", {}).get("prefixes", []):
            if entry.get("prefix") and entry.get("default", True):
                out.append((str(entry["prefix"]), contract))
    return out


def _export_face(contract: Contract, out: Path) -> list[Path]:
    written = []
    for name, model in contract.models.items():
        for mode, schema in model.request_schemas.items():
            written.append(_dump(out / "requests" / name / f"{mode}.request.schema.json", schema))
    for relpath, schema in contract.response_schemas.items():
        written.append(_dump(out / relpath, schema))
    written.append(_dump(out / "manifest.json", _manifest(contract)))
    return written


def export_contract(contract: Contract | None, folder: str | Path) -> list[Path]:
    """Write the contract's derived artefacts to ``folder``; returns the files written.

    ``contract`` None exports every face: ``openapi.json`` (every face, as a server mounts
    them), one folder per face and a ``manifest.json`` naming them. A ``Contract`` exports that
    face alone: its ``openapi.json``, ``requests/``, ``responses/`` and ``manifest.json``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sorted({p.relative_to(tmp).parts[0] for p in export_contract(None, tmp)})
    ['gateway', 'manifest.json', 'official', 'openai', 'openapi.json']
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sorted(p.name for p in export_contract(load_contract(), tmp))[:3]
    ['error.schema.json', 'image2video.request.schema.json', 'manifest.json']
    """
    out = Path(folder)
    if contract is not None:
        return [_dump(out / "openapi.json", build_openapi(contract)), *_export_face(contract, out)]
    contracts = [load_contract(name) for name in face_names()]
    written = [_dump(out / "openapi.json", build_openapi(mounted(contracts)))]
    for face in contracts:
        written += _export_face(face, out / face.face)
    index = {
        "format": EXPORT_FORMAT,
        "version": 2,
        "faces": {face.face: f"{face.face}/manifest.json" for face in contracts},
    }
    written.append(_dump(out / "manifest.json", index))
    return written


# -- loading either kind of folder -----------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractLoadError(f"{path}: missing") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ContractLoadError(f"{path}: not valid JSON ({exc})") from None


def _face_export(path: Path, manifest: Any) -> dict[str, Any]:
    if not isinstance(manifest, Mapping) or manifest.get("format") != EXPORT_FORMAT or "operations" not in manifest:
        raise ContractLoadError(f"{path / 'manifest.json'}: not a kling-testkit contract export")
    surface = dict(manifest)
    surface["requests"] = {key: _read(path / rel) for key, rel in manifest["requests"].items()}
    responses = {rel for op in manifest["operations"].values() for rel in op["responses"].values() if rel != "binary"}
    responses |= {f"responses/{p.name}" for p in (path / "responses").glob("*.schema.json")}
    surface["responses"] = {rel: _read(path / rel) for rel in sorted(responses)}
    return surface


def _folder_faces(path: Path) -> list[str]:
    """The faces of a contract folder: registered faces first, then any other face folder."""
    present = {p.name for p in path.iterdir() if (p / "index.json").is_file()}
    return [f for f in face_names() if f in present] + sorted(present - set(face_names()))


def load_surfaces(folder: str | Path) -> tuple[dict[str, dict[str, Any]], bool]:
    """What a client sees of every face of a contract version (a contract folder or an export),
    and whether the folder speaks for one face only (a one-face export).

    >>> surfaces, single = load_surfaces(load_contract().root)
    >>> sorted(surfaces), single
    (['gateway', 'official', 'openai'], False)
    """
    path = Path(folder)
    if not path.is_dir():
        raise ContractLoadError(f"{path}: not a folder")
    if (path / "manifest.json").is_file():
        manifest = _read(path / "manifest.json")
        if isinstance(manifest, Mapping) and isinstance(manifest.get("faces"), Mapping):
            if manifest.get("format") != EXPORT_FORMAT:
                raise ContractLoadError(f"{path / 'manifest.json'}: not a kling-testkit contract export")
            out = {}
            for face, rel in manifest["faces"].items():
                sub = (path / str(rel)).parent
                out[str(face)] = _face_export(sub, _read(path / str(rel)))
            return out, False
        surface = _face_export(path, manifest)
        return {str(surface.get("face") or face_names()[0]): surface}, True
    if (path / "lifecycle.json").is_file():
        out = {}
        for face in _folder_faces(path):
            try:
                contract = load_contract(face, root=path.resolve())
            except ContractError as exc:
                raise ContractLoadError(str(exc)) from None
            except (KeyError, TypeError, ValueError) as exc:
                raise ContractLoadError(f"{path / face}: broken contract data ({type(exc).__name__}: {exc})") from None
            surface = _manifest(contract)
            surface["requests"] = {
                f"{name}/{mode}": schema
                for name, model in contract.models.items()
                for mode, schema in model.request_schemas.items()
            }
            surface["responses"] = dict(contract.response_schemas)
            out[face] = surface
        if not out:
            raise ContractLoadError(f"{path}: a contract folder without any face folder (<face>/index.json)")
        return out, False
    raise ContractLoadError(f"{path}: neither a contract folder (lifecycle.json) nor an export (manifest.json)")


def load_surface(folder: str | Path) -> dict[str, Any]:
    """What a client sees of the default face of a contract version (or of the one face of a
    one-face export); :func:`load_surfaces` has every face.

    >>> surface = load_surface(load_contract().root)
    >>> sorted(surface["operations"])[:2], "kling-v2-6/text2video" in surface["requests"]
    (['media.get', 'video_generations.create'], True)
    """
    surfaces, _ = load_surfaces(folder)
    default = face_names()[0]
    return surfaces[default] if default in surfaces else next(iter(surfaces.values()))


# -- schema diff -----------------------------------------------------------------------------


def _types(schema: Mapping[str, Any]) -> set[str]:
    value = schema.get("type")
    if value is None:
        return set()
    return {value} if isinstance(value, str) else set(value)


def _shown(values: Any) -> str:
    return ", ".join(json.dumps(v) for v in values)


def diff_schema(old: Any, new: Any, *, direction: str, subject: str = "", pointer: str = "") -> list[Change]:
    """Changes between two JSON Schemas, classified for ``direction`` ``request`` or ``response``.

    >>> [c.breaking for c in diff_schema({"enum": ["a", "b"]}, {"enum": ["a"]}, direction="request")]
    [True]
    >>> [c.breaking for c in diff_schema({"enum": ["a", "b"]}, {"enum": ["a"]}, direction="response")]
    [False]
    """
    if direction not in ("request", "response"):
        raise ValueError("direction is 'request' or 'response'")
    request = direction == "request"
    out: list[Change] = []

    def add(where: str, detail: str, breaking: bool) -> None:
        out.append(Change(direction, subject, where or "/", detail, breaking))

    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        if old != new:
            add(pointer, f"changed from {json.dumps(old)} to {json.dumps(new)}", True)
        return out
    keys = (set(old) | set(new)) - _IGNORED
    for key in sorted(keys):
        here = f"{pointer}/{key}"
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == "type":
            added, removed = _types(new) - _types(old), _types(old) - _types(new)
            if (added and removed) or not old.get(key) or not new.get(key):
                add(here, f"type changed from {a} to {b}", True)
            elif removed:
                add(here, f"type narrowed: no longer {_shown(sorted(removed))}", request)
            else:
                add(here, f"type widened: also {_shown(sorted(added))}", not request)
        elif key == "enum":
            olds, news = list(a or []), list(b or [])
            removed_values = [v for v in olds if v not in news]
            added_values = [v for v in news if v not in olds]
            if a is None or b is None:
                add(here, f"enum {'added' if a is None else 'removed'}", request if a is None else not request)
                continue
            if removed_values:
                add(here, f"removed value {_shown(removed_values)}", request)
            if added_values:
                add(here, f"added value {_shown(added_values)}", not request)
        elif key == "const":
            if a is None:
                add(here, f"now fixed to {json.dumps(b)}", request)
            elif b is None:
                add(here, f"no longer fixed to {json.dumps(a)}", not request)
            else:
                add(here, f"changed from {json.dumps(a)} to {json.dumps(b)}", True)
        elif key == "required":
            olds, news = list(a or []), list(b or [])
            for name in news:
                if name not in olds:
                    add(here, f"new required field {name!r}", request)
            for name in olds:
                if name not in news:
                    add(here, f"field {name!r} no longer required", not request)
        elif key in ("properties", "$defs", "patternProperties"):
            olds_map, news_map = a or {}, b or {}
            for name in olds_map:
                if name not in news_map:
                    if key == "$defs":
                        add(f"{here}/{name}", "definition removed", False)
                    else:
                        add(f"{here}/{name}", f"removed field {name!r}", True)
            for name in news_map:
                if name not in olds_map:
                    detail = "definition added" if key == "$defs" else f"added field {name!r}"
                    required = name in (new.get("required") or []) and key == "properties"
                    add(f"{here}/{name}", detail + (" (required)" if required else " (optional)"), False)
            for name in olds_map:
                if name in news_map:
                    out.extend(
                        diff_schema(
                            olds_map[name],
                            news_map[name],
                            direction=direction,
                            subject=subject,
                            pointer=f"{here}/{name}",
                        )
                    )
        elif key in _LOWER or key in _UPPER:
            lower = key in _LOWER
            tightened = (a is None) if (a is None or b is None) else (b > a if lower else b < a)
            what = "tightened" if tightened else "loosened"
            add(
                here,
                f"limit {what}: {a if a is not None else 'none'} -> {b if b is not None else 'none'}",
                (tightened if request else not tightened),
            )
        elif key == "additionalProperties" and not isinstance(a, Mapping) and not isinstance(b, Mapping):
            closed = b is False
            add(here, f"additional properties {'now refused' if closed else 'now allowed'}", closed and request)
        elif key in ("items", "additionalProperties", "if", "then", "else", "not", "contains", "propertyNames"):
            if a is None or b is None:
                add(here, f"{'added' if a is None else 'removed'} {key}", True)
            else:
                out.extend(diff_schema(a, b, direction=direction, subject=subject, pointer=here))
        elif key in ("allOf", "anyOf", "oneOf", "prefixItems") and isinstance(a, list) and isinstance(b, list):
            if len(a) == len(b):
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    out.extend(diff_schema(x, y, direction=direction, subject=subject, pointer=f"{here}/{i}"))
            else:
                add(here, f"{key} now has {len(b)} branches instead of {len(a)} (review by hand)", True)
        elif key == "default":
            # A client that omits the field gets different behaviour; a response default is documentation.
            add(here, f"default changed from {json.dumps(a)} to {json.dumps(b)}", request)
        elif key.startswith("x-"):
            add(here, f"{key} changed", False)
        else:
            add(here, f"{key} changed from {json.dumps(a)} to {json.dumps(b)} (cannot be ordered; review)", True)
    return out


# -- contract diff ---------------------------------------------------------------------------


def _diff_table(
    old: Mapping[str, Any], new: Mapping[str, Any], *, subject: str, what: str, removed_breaking: bool
) -> list[Change]:
    out: list[Change] = []
    for key in old:
        if key not in new:
            out.append(Change("contract", subject, f"/{key}", f"removed {what} {key!r}", removed_breaking))
    for key in new:
        if key not in old:
            out.append(Change("contract", subject, f"/{key}", f"added {what} {key!r}", False))
        elif old[key] != new[key]:
            for field in sorted(set(old[key]) | set(new[key])):
                a, b = old[key].get(field), new[key].get(field)
                if a != b:
                    out.append(
                        Change(
                            "contract", subject, f"/{key}/{field}", f"{what} {field} changed from {a!r} to {b!r}", True
                        )
                    )
    return out


def _only_in(old: Iterable[str], new: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the keys only ``old`` has, the keys only ``new`` has), each in its own order."""
    olds, news = list(old), list(new)
    return [k for k in olds if k not in news], [k for k in news if k not in olds]


def diff_contracts(old: str | Path, new: str | Path) -> list[Change]:
    """Every change from ``old`` to ``new`` (contract folders or exports), face by face,
    breaking first. A one-face export on either side limits the comparison to that face.

    >>> import json, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:  # an export whose lifecycle gained a status
    ...     manifest = [p for p in export_contract(None, tmp) if p.name == "manifest.json"][0]
    ...     data = json.loads(manifest.read_text())
    ...     data["statuses"].append("cancelled")
    ...     _ = manifest.write_text(json.dumps(data))
    ...     [change.line() for change in diff_contracts(load_contract().root, tmp)]
    ["BREAKING  response  lifecycle /statuses: new task status 'cancelled'"]
    """
    (a, a_single), (b, b_single) = load_surfaces(old), load_surfaces(new)
    faces = list(dict.fromkeys([*a, *b]))
    if a_single or b_single:
        faces = list(a) if a_single else list(b)
    changes: list[Change] = []
    for face in faces:
        if face not in b:
            changes.append(Change("contract", "faces", f"/{face}", f"face {face!r} removed", True, face))
        elif face not in a:
            changes.append(Change("contract", "faces", f"/{face}", f"face {face!r} added", False, face))
        else:
            changes += [replace(c, face=face) for c in _diff_face(a[face], b[face])]
    return sorted(changes, key=lambda c: not c.breaking)


def _diff_query(op_id: str, spec: Mapping[str, Any], other: Mapping[str, Any]) -> list[Change]:
    """Query parameters are part of the request: removing one or requiring one breaks clients."""
    out: list[Change] = []
    old_q, new_q = spec.get("query") or {}, other.get("query") or {}
    old_req, new_req = set(spec.get("required_query") or ()), set(other.get("required_query") or ())
    for name in old_q:
        if name not in new_q:
            out.append(Change("request", op_id, f"/query/{name}", f"query parameter {name!r} removed", True))
        else:
            out.extend(diff_schema(old_q[name], new_q[name], direction="request", subject=f"{op_id}?{name}"))
    for name in new_q:
        if name not in old_q:
            required = name in new_req
            detail = f"query parameter {name!r} added ({'required' if required else 'optional'})"
            out.append(Change("request", op_id, f"/query/{name}", detail, required))
    for name in sorted(new_req - old_req):
        if name in old_q:
            out.append(Change("request", op_id, f"/query/{name}", f"query parameter {name!r} now required", True))
    return out


def _diff_face(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    ops_a, ops_b = a["operations"], b["operations"]
    for op_id, spec in ops_a.items():
        if op_id not in ops_b:
            changes.append(Change("operation", op_id, "", "operation removed", True))
            continue
        other = ops_b[op_id]
        for field in ("method", "path"):
            if spec[field] != other[field]:
                changes.append(Change("operation", op_id, f"/{field}", f"{spec[field]} -> {other[field]}", True))
        for status, rel in spec["responses"].items():
            if status not in other["responses"]:
                changes.append(Change("operation", op_id, f"/responses/{status}", "success response removed", True))
            elif other["responses"][status] != rel:
                changes.append(
                    Change(
                        "operation",
                        op_id,
                        f"/responses/{status}",
                        f"schema {rel} -> {other['responses'][status]}",
                        True,
                    )
                )
        for status in other["responses"]:
            if status not in spec["responses"]:
                changes.append(Change("operation", op_id, f"/responses/{status}", "success response added", False))
        gone, new_errors = _only_in(spec["errors"], other["errors"])
        changes += [Change("operation", op_id, "/errors", f"no longer answers error {k!r}", False) for k in gone]
        changes += [Change("operation", op_id, "/errors", f"may now answer error {k!r}", False) for k in new_errors]
        changes += _diff_query(op_id, spec, other)
    changes += [Change("operation", op_id, "", "operation added", False) for op_id in _only_in(ops_a, ops_b)[1]]
    for key, schema in a["requests"].items():
        if key not in b["requests"]:
            changes.append(Change("request", key, "", "request mode removed", True))
        else:
            changes.extend(diff_schema(schema, b["requests"][key], direction="request", subject=key))
    changes += [
        Change("request", key, "", "request mode added", False) for key in _only_in(a["requests"], b["requests"])[1]
    ]
    for rel, schema in a["responses"].items():
        if rel not in b["responses"]:
            changes.append(Change("response", rel, "", "response schema removed", True))
        else:
            changes.extend(diff_schema(schema, b["responses"][rel], direction="response", subject=rel))
    for model in sorted(set(a["rules"]) | set(b["rules"])):
        old_rules, new_rules = a["rules"].get(model, {}), b["rules"].get(model, {})
        for rule_id in new_rules:
            if rule_id not in old_rules:
                changes.append(Change("request", f"{model} rules", f"/{rule_id}", f"new named rule {rule_id!r}", True))
        for rule_id in old_rules:
            if rule_id not in new_rules:
                changes.append(Change("request", f"{model} rules", f"/{rule_id}", f"rule {rule_id!r} removed", False))
            elif old_rules[rule_id] != new_rules[rule_id]:
                changes.append(
                    Change(
                        "request",
                        f"{model} rules",
                        f"/{rule_id}",
                        f"rule {rule_id!r} now blames or answers differently",
                        True,
                    )
                )
    changes += _diff_table(a["errors"], b["errors"], subject="errors", what="error", removed_breaking=False)
    changes += _diff_table(
        a.get("task_failures", {}),
        b.get("task_failures", {}),
        subject="task_failures",
        what="task failure",
        removed_breaking=False,
    )
    gone, new_statuses = _only_in(a["statuses"], b["statuses"])
    changes += [Change("response", "lifecycle", "/statuses", f"new task status {s!r}", True) for s in new_statuses]
    changes += [Change("response", "lifecycle", "/statuses", f"task status {s!r} removed", False) for s in gone]
    if sorted(a["terminal"]) != sorted(b["terminal"]):
        changes.append(
            Change("response", "lifecycle", "/terminal", f"terminal statuses {a['terminal']} -> {b['terminal']}", True)
        )
    for key, what in (("timestamp_unit", "timestamp unit"), ("task_id_pattern", "task id format")):
        # exports written before these were recorded lack them: compared only when both have them
        if key in a and key in b and a[key] != b[key]:
            changes.append(Change("response", "wire", f"/{key}", f"{what} {a[key]} -> {b[key]}", True))
    return changes
