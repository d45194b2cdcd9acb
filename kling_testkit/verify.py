"""Provider verification: send contract-derived requests to a running server and check every answer.

``kling-testkit verify --base-url URL --api-key KEY`` (the gateway face), ``verify --face
official --access-key AK --secret-key SK`` (Kling's own API, JWTs signed by the verifier) or
``verify --face openai --api-key KEY`` (the OpenAI-compatible ``/v1/videos``) works against the
real service, a staging proxy or the fake. The requests come from a small,
deterministic case list built from the face's contract (:func:`build_cases`):

- valid requests: one per create operation and kind (text-to-video, image-to-video with a
  generated PNG); each task is followed to a terminal status (poll interval and timeout), every
  answer and transition checked;
- refused credentials: no key, and for faces that sign tokens each situation of the contract's
  ``auth.errors`` the verifier can produce (a value that is no token, a wrong signature, an
  expired token, a token not yet valid), each expecting its catalogued status and code;
- a query for a task that does not exist;
- invalid requests: one per named rule of the model (cross-field and image rules), and one per
  schema keyword in use (required, enum, type, maximum, maxLength, minItems, const);
- on a face whose create takes forms (the contract's ``form_mapping``), each valid create is
  sent as ``multipart/form-data`` as the OpenAI SDK sends it (an image as a file part) and once
  as JSON, refusals include the form's own rules (framing, part count and size, duplicate
  fields, file types), and a result the face serves itself (``reader.result_path``) is
  downloaded and checked to be an MP4.

Each invalid request is built from a valid one and confirmed with the fake's own validator
(``mockserver.validation.validate_create``) to break exactly the intended rule; its expected
answer (HTTP status, error code, the field it names where the face's errors name one) comes
from the error catalogue. A case the builder cannot produce is listed as omitted with its
reason, never silently dropped. Nothing here names a face: bodies come from the model's request
schemas and rules, answers are read through the face's ``reader``, operations by their verbs.

Safety against a paid API: a hard request budget (``max_requests``, polls and retries included)
that is never exceeded, one billable create per kind, credential probes sent to a listing (not
a create) where the face has one, and a dry run that prints the plan without sending anything.
Time is injected (``sleep``, ``monotonic``, ``wall``) so tests never wait.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import io
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from PIL import Image

from kling_testkit._forms import FILENAMES, OTHER_FILE_TYPES, FormView, as_file, form_view
from kling_testkit._strategies.wire import JSON, MULTIPART, EncodedBody, encode_form
from kling_testkit.checks import CHECKS, CheckContext, FaceRules, check_exchange, retry_after_seconds
from kling_testkit.failures import ContractViolation, Report, Severity
from kling_testkit.recording import Exchange
from mockserver.contract import Contract, ModelContract, Operation, Rule, load_contract
from mockserver.engine.journal import shorten
from mockserver.faces import face_names
from mockserver.validation import Violation, validate_create

__all__ = [
    "DEFAULT_MAX_REQUESTS",
    "TOKEN_LIFETIME",
    "Case",
    "Expectation",
    "VerifyResult",
    "Verifier",
    "build_cases",
    "omitted_cases",
]

DEFAULT_MAX_REQUESTS = 50
MAX_RATE_LIMIT_RETRIES = 3
#: seconds a token the verifier signs is valid (what public Kling clients use); re-signed per request
TOKEN_LIFETIME = 1800
#: how far past (or ahead of) the server's clock the expired (not yet valid) tokens are
_TOKEN_OFFSET = 3600
#: ``auth.errors`` situations the verifier knows how to produce, in the order they are sent
_SITUATIONS = ("missing", "malformed", "bad_signature", "unknown_access_key", "expired", "not_yet_valid")
#: situations that need a signed token (so an access and a secret key)
_SIGNED = frozenset({"bad_signature", "unknown_access_key", "expired", "not_yet_valid"})
_PROMPTS = {
    "text2video": "a red fox running through fresh snow, cinematic",
    "image2video": "the subject slowly turns its head",
}
_NOTHING: Any = object()  # "no value here" (None is a JSON value)
_FAIL: Any = object()  # "this schema cannot be broken (or met) by the builder"


@dataclass(frozen=True)
class Expectation:
    """The refusal an invalid case must get: from the contract's error catalogue."""

    error: str
    status: int
    code: str | int
    param: str | None
    rule: str


@dataclass(frozen=True)
class Case:
    """One request verify sends. ``expect`` None means: must be accepted (and is followed).

    ``auth`` False sends no Authorization header; ``credentials`` names any other situation of
    the contract's ``auth.errors`` to send instead of valid credentials (``expired``...).
    ``operation`` is the contract operation and ``kind`` the generation mode of the body.

    >>> case = build_cases()[0]
    >>> case.name, case.method, case.expect is None
    ('valid:text2video', 'POST', True)
    """

    name: str
    method: str
    path: str
    body: Any = None
    auth: bool = True
    expect: Expectation | None = None
    credentials: str = "valid"
    operation: str | None = None
    kind: str | None = None
    #: the exact bytes sent and their ``Content-Type``, for a body that is not JSON (a form);
    #: ``body`` then holds the form's fields (a file part as base64), as the fake's journal
    #: records a form, or None where the bytes are no form at all (a form cut short)
    encoded: EncodedBody | None = None

    @property
    def follow(self) -> bool:
        return self.expect is None and self.method == "POST"

    def describe(self) -> str:
        """One line for the dry run: method, path, expectation, the body with long strings cut."""
        text = f"{self.method} {self.path}  [{self.name}]"
        if self.expect is not None:
            text += f"  expect {self.expect.status} {self.expect.code} param={self.expect.param}"
        elif self.follow:
            text += "  expect 200, then poll to a terminal status"
        if not self.auth:
            text += "  (no Authorization header)"
        elif self.credentials != "valid":
            text += f"  ({self.credentials.replace('_', ' ')} credentials)"
        if self.encoded is not None:
            media_type = self.encoded.content_type.split(";")[0]
            text += f"\n    sent as {media_type}, {len(self.encoded.data)} bytes"
        if self.body is not None:
            text += "\n    body " + json.dumps(_cut(self.body))
        return text


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 80:
        return f"{value[:40]}...<{len(value)} chars>"
    if isinstance(value, Mapping):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


# -- images ------------------------------------------------------------------------------------


@functools.cache
def _image_bytes(kind: str, width: int, height: int) -> tuple[str, bytes]:
    """(mime type, bytes) of a generated image (or a deliberately broken one)."""
    buffer = io.BytesIO()
    if kind == "png":
        image = Image.new("RGB", (width, height))
        image.putdata([((x * 3) % 256, (y * 3) % 256, 128) for y in range(height) for x in range(width)])
        image.save(buffer, format="PNG")
    elif kind == "gif":
        Image.new("P", (width, height)).save(buffer, format="GIF")
        return "image/gif", buffer.getvalue()
    elif kind == "bilevel":  # many pixels, few bytes: exercises the pixel limit cheaply
        Image.new("1", (width, height)).save(buffer, format="PNG")
    elif kind == "truncated":
        Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
        return "image/png", buffer.getvalue()[:120]
    else:
        raise ValueError(kind)
    return "image/png", buffer.getvalue()


def _image(limits: Mapping[str, Any], kind: str, width: int, height: int) -> str:
    """An image as the face takes it: a data URI, or raw base64 where ``data_uri`` is false."""
    mime, data = _image_bytes(kind, width, height)
    encoded = base64.b64encode(data).decode("ascii")
    return encoded if limits.get("data_uri", True) is False else f"data:{mime};base64,{encoded}"


def _bad_image(check: str, limits: Mapping[str, Any]) -> str | None:
    side = int(limits["min_side"])
    if check == "encoding":
        return "this is neither a URL nor base64 %%%"
    if check == "format":
        return _image(limits, "gif", side + 100, side)
    if check == "decodable":
        return _image(limits, "truncated", side + 100, side)
    if check == "min_side":
        return _image(limits, "png", side - 1, side - 1)
    if check == "aspect_ratio":
        return _image(limits, "png", side, int(side / float(limits["min_aspect"])) + side)
    if check == "max_pixels":
        width = int((float(limits["max_pixels"]) * 4 / 3) ** 0.5) + 100
        return _image(limits, "bilevel", width, width * 3 // 4)
    return None  # max_bytes needs an upload over the limit: too costly for a default run


def _valid_image(limits: Mapping[str, Any]) -> str:
    side = int(limits["min_side"])
    return _image(limits, "png", side * 4 // 3, side)


# -- values from the request schemas ------------------------------------------------------------


def _types(schema: Mapping[str, Any]) -> list[str]:
    value = schema.get("type")
    return [value] if isinstance(value, str) else list(value or [])


def _fits_string(schema: Mapping[str, Any], text: str) -> bool:
    pattern = schema.get("pattern")
    return (
        (pattern is None or re.search(pattern, text) is not None)
        and len(text) >= int(schema.get("minLength", 0))
        and len(text) <= int(schema.get("maxLength", len(text)))
    )


def _sample(model: ModelContract, mode: str, schema: Mapping[str, Any]) -> Any:
    """A small value the field's schema accepts (``_NOTHING`` when none comes to mind)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("x-content") == "image":
        return _valid_image(model.image_limits)
    types = _types(schema)
    if "string" in types:
        for text in (_PROMPTS[mode] if mode in _PROMPTS else _PROMPTS["text2video"], "1", "https://example.com/x"):
            if _fits_string(schema, text):
                return text
    if "integer" in types or "number" in types:
        low = schema.get("minimum", 1 if schema.get("maximum", 1) >= 1 else schema.get("maximum"))
        return int(low) if "integer" in types else low
    if "boolean" in types:
        return False
    if "array" in types:
        item = _sample(model, mode, schema.get("items", {}))
        return [] if item is _NOTHING else [item] * max(1, int(schema.get("minItems", 1)))
    if "object" in types:
        props: Mapping[str, Any] = schema.get("properties", {})
        out: dict[str, Any] = {}
        for name in [*schema.get("required", []), *props]:
            if name in out or (name not in schema.get("required", []) and len(out) >= schema.get("minProperties", 0)):
                continue
            value = _sample(model, mode, props.get(name, {}))
            if value is not _NOTHING:
                out[name] = value
        return out
    return _NOTHING


def _other(schema: Mapping[str, Any], avoid: Sequence[Any]) -> Any:
    """A value of the field's schema outside ``avoid`` (``_FAIL`` when it has none)."""
    for value in schema.get("enum", []):
        if not any(value == a and type(value) is type(a) for a in avoid):
            return value
    if "boolean" in _types(schema):
        for value in (True, False):
            if value not in avoid:
                return value
    return _FAIL


def _number_like(schema: Mapping[str, Any], number: int) -> Any:
    """``number`` spelt as the field takes it: a string where strings are allowed (Kling's
    ``"5"``), else an integer."""
    return str(number) if "string" in _types(schema) else number


def _as_int(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


class _Builder:
    """Bodies for one model and mode, from its request schema and rules (no face named)."""

    def __init__(self, contract: Contract, model: ModelContract) -> None:
        self.contract = contract
        self.model = model

    def field(self, mode: str, path: Sequence[str]) -> Mapping[str, Any]:
        """The request schema of the field at ``path``: the mode's, else another mode's (a
        field that picks the mode on faces where the body picks it is only in that mode's)."""
        for schema in (self.model.request_schemas[mode], *self.model.request_schemas.values()):
            for name in path:
                schema = schema.get("properties", {}).get(name, {})
            if schema:
                return schema
        return {}

    # -- rules' schemas, met or broken ---------------------------------------------------------

    def satisfy(self, mode: str, schema: Mapping[str, Any], value: Any, path: tuple[str, ...]) -> Any:
        """``value`` changed to meet ``schema`` (a rule's ``when`` or ``then``)."""
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return value if value in schema["enum"] and value is not _NOTHING else schema["enum"][0]
        if "not" in schema:
            return self.violate(mode, schema["not"], value, path)
        if "anyOf" in schema or "oneOf" in schema:
            branches: list[Any] = schema.get("anyOf") or schema.get("oneOf") or [{}]
            return self.satisfy(mode, branches[0], value, path)
        out = value
        if "required" in schema or "properties" in schema:
            out = dict(value) if isinstance(value, Mapping) else {}
            for name in schema.get("required", []):
                if name not in out:
                    sample = _sample(self.model, mode, self.field(mode, (*path, name)))
                    if sample is _NOTHING:
                        return _FAIL
                    out[name] = sample
            for name, sub in schema.get("properties", {}).items():
                if name in out or "const" in sub or "enum" in sub:
                    met = self.satisfy(mode, sub, out.get(name, _NOTHING), (*path, name))
                    if met is _FAIL:
                        return _FAIL
                    out[name] = met
        if isinstance(out, list) and "maxItems" in schema:
            out = out[: int(schema["maxItems"])]
        if isinstance(out, str) and len(out) < int(schema.get("minLength", 0)):
            out = out + "x" * (int(schema["minLength"]) - len(out))
        return out

    def violate(self, mode: str, schema: Mapping[str, Any], value: Any, path: tuple[str, ...]) -> Any:
        """``value`` changed to fail ``schema`` (``_FAIL`` when the builder cannot)."""
        here = self.field(mode, path)
        if "const" in schema:
            return _other(here, [schema["const"]])
        if "enum" in schema:
            return _other(here, schema["enum"])
        if "not" in schema:
            return self.satisfy(mode, schema["not"], value, path)
        if "anyOf" in schema:
            out = value
            for branch in schema["anyOf"]:
                out = self.violate(mode, branch, out, path)
                if out is _FAIL:
                    return _FAIL
            return out
        if "required" in schema or "properties" in schema:
            out = dict(value) if isinstance(value, Mapping) else {}
            for name, sub in schema.get("properties", {}).items():
                if "const" in sub or "enum" in sub:
                    broken = self.violate(mode, sub, out.get(name, _NOTHING), (*path, name))
                    if broken is not _FAIL:
                        out[name] = broken
                        return out
                elif "maxItems" in sub:
                    out[name] = self.items(mode, out, name, int(sub["maxItems"]) + 1)
                    return out
                elif name in out and isinstance(out[name], Mapping):
                    broken = self.violate(mode, sub, out[name], (*path, name))
                    if broken is not _FAIL:
                        out[name] = broken
                        return out
            for name in schema.get("required", []):
                out.pop(name, None)
                return out
            return _FAIL
        if isinstance(value, str) and int(schema.get("minLength", 0)) > 0:
            return ""
        return _FAIL

    # -- lists of items whose fields add up ---------------------------------------------------

    def items(self, mode: str, body: Mapping[str, Any], name: str, count: int) -> list[dict[str, Any]]:
        """``count`` items for the list field ``name``, copied from its first item (or a sample),
        free text told apart, and numbers that add up as the model's ``sum_equals`` rules ask."""
        item_schema = self.field(mode, (name,)).get("items", {})
        existing = body.get(name)
        first = (
            dict(existing[0]) if isinstance(existing, list) and existing and isinstance(existing[0], Mapping) else {}
        )
        if not first:
            sample = _sample(self.model, mode, item_schema)
            first = dict(sample) if isinstance(sample, Mapping) else {}
        free = [
            k
            for k, s in item_schema.get("properties", {}).items()
            if k in first and "string" in _types(s) and not {"enum", "const", "pattern"} & set(s)
        ]
        out = []
        for i in range(count):
            item = dict(first)
            for key in free:
                item[key] = f"shot {i + 1}: {first[key]}"
            out.append(item)
        return self.fit(mode, {**body, name: out}, name)[name]  # type: ignore[no-any-return]

    def fit(self, mode: str, body: dict[str, Any], name: str) -> dict[str, Any]:
        """``body`` with the items of ``name`` adding up to their total (``sum_equals`` rules)."""
        out = dict(body)
        for rule in self.model.rules:
            spec = rule.spec
            if rule.kind != "sum_equals" or spec["items"] != name or not isinstance(out.get(name), list):
                continue
            items = [dict(i) for i in out[name]]
            total = _as_int(out.get(spec["total"], self.model.defaults.get(spec["total"], len(items))))
            item_field = self.field(mode, (name,)).get("items", {}).get("properties", {}).get(spec["item_field"], {})
            for i, item in enumerate(items):
                item[spec["item_field"]] = _number_like(
                    item_field, total - (len(items) - 1) if i == len(items) - 1 else 1
                )
            out[name] = items
        return out

    def set_total(self, body: dict[str, Any], rule: Rule) -> dict[str, Any]:
        """``body`` with the rule's total set to what its items add up to."""
        spec = rule.spec
        total = sum(
            _as_int(i.get(spec["item_field"], 0)) for i in body.get(spec["items"], []) if isinstance(i, Mapping)
        )
        current = body.get(spec["total"], self.model.defaults.get(spec["total"]))
        return {**body, spec["total"]: str(total) if isinstance(current, str) else total}


# -- building cases from the contract --------------------------------------------------------


def _oracle(contract: Contract, body: Any, mode: str | None) -> Violation | None:
    result = validate_create(contract, body, mode=mode)
    return result if isinstance(result, Violation) else None


@dataclass(frozen=True)
class _Kinds:
    """How the face chooses the kind: each create operation serves one (``mode_from``
    ``operation``), or one operation serves all and the body decides (``body``)."""

    contract: Contract

    def create_for(self, mode: str) -> Operation | None:
        ops = [op for op in self.contract.operations.values() if op.verb == "task.create"]
        return next((op for op in ops if op.kind == mode), None) or next((op for op in ops if op.kind is None), None)

    def get_for(self, mode: str | None) -> Operation | None:
        ops = [op for op in self.contract.operations.values() if op.verb == "task.get"]
        return next((op for op in ops if op.kind == mode), None) or (ops[0] if ops else None)

    def oracle_mode(self, mode: str) -> str | None:
        """The mode the validator is told (None where the body chooses it)."""
        return mode if self.contract.request.mode_from == "operation" else None


def _repair(
    builder: _Builder, kinds: _Kinds, mode: str, body: dict[str, Any], target: str | None, depth: int = 6
) -> dict[str, Any] | None:
    """Adjust ``body`` until the contract refuses it for ``target`` and nothing before it (or,
    with ``target`` None, until it accepts it).

    A small depth-first search: when another rule fires first, try both ways of getting it out
    of the way (make its ``when`` false, or its ``then`` true; for a sum, change the total or
    the items) and look again.
    """
    contract, model = builder.contract, builder.model
    found = _oracle(contract, body, kinds.oracle_mode(mode))
    if found is None:
        return body if target is None else None
    if found.rule == target:
        return body
    other = next((r for r in model.rules if r.id == found.rule), None)
    if other is None or depth == 0:
        return None
    candidates: list[Any]
    if other.kind == "sum_equals":
        candidates = [builder.set_total(body, other), builder.fit(mode, body, other.spec["items"])]
    elif other.kind == "requires":
        candidates = [
            builder.satisfy(mode, other.spec["then"], body, ()),
            builder.violate(mode, other.spec["when"], body, ()),
        ]
    else:
        return None
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate != body:
            repaired = _repair(builder, kinds, mode, candidate, target, depth - 1)
            if repaired is not None:
                return repaired
    return None


def _valid_bodies(builder: _Builder, kinds: _Kinds) -> dict[str, dict[str, Any]]:
    """One accepted body per kind the model serves: the model field, the schema's required
    fields, then whatever the named rules ask for."""
    contract, model = builder.contract, builder.model
    spec = contract.request
    out: dict[str, dict[str, Any]] = {}
    for mode, schema in model.request_schemas.items():
        if kinds.create_for(mode) is None:
            continue
        body: dict[str, Any] = {spec.model_field: model.name}
        for name in schema.get("required", []):
            if name not in body and (value := _sample(model, mode, schema["properties"].get(name, {}))) is not _NOTHING:
                body[name] = value
        field_name = spec.mode_field
        if (
            spec.mode_from == "body"
            and model.mode_for({field_name: True}, field_name) == mode
            and field_name not in body
        ):
            body[field_name] = _sample(model, mode, schema["properties"].get(field_name, {}))
        valid = _repair(builder, kinds, mode, body, None)
        if valid is None:
            raise AssertionError(
                f"verify cannot build a valid {mode} request for {model.name}: "
                f"{_oracle(contract, body, kinds.oracle_mode(mode))}"
            )
        out[mode] = valid
    return out


def _expectation(contract: Contract, found: Violation) -> Expectation:
    spec = contract.errors[found.error]
    return Expectation(found.error, spec.http_status, spec.code, found.param, found.rule)


def _start_mode(builder: _Builder, kinds: _Kinds, rule: Rule, valid: Mapping[str, Any]) -> str | None:
    """The kind a rule's invalid body starts from: the first kind the rule applies to whose
    schema has the field the rule blames (an image rule's image), except that cross-field rules
    start from the first kind on faces where the body picks the kind (the rule's own fields
    then pick it)."""
    modes = [m for m in valid if rule.applies_to(m)]
    if not modes:
        return None
    top = rule.param.split(".")[0].split("[")[0]
    having = [m for m in modes if top in builder.model.request_schemas[m].get("properties", {})]
    if kinds.contract.request.mode_from == "body" and rule.kind != "image":
        return next(iter(valid))
    return (having or modes)[0]


def _rule_body(builder: _Builder, rule: Rule, mode: str, valid: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    model = builder.model
    body = dict(valid[mode])
    if rule.kind == "requires":
        met = builder.satisfy(mode, rule.spec["when"], body, ())
        if met is _FAIL:
            return None
        broken = builder.violate(mode, rule.spec["then"], met, ())
        return None if broken is _FAIL else broken
    if rule.kind == "sum_equals":
        spec = rule.spec
        if "when" in spec:
            met = builder.satisfy(mode, spec["when"], body, ())
            if met is _FAIL:
                return None
            body = met
        body[spec["items"]] = builder.items(mode, body, spec["items"], 2)
        last = body[spec["items"]][-1]
        item_field = (
            builder.field(mode, (spec["items"],)).get("items", {}).get("properties", {}).get(spec["item_field"], {})
        )
        last[spec["item_field"]] = _number_like(item_field, _as_int(last[spec["item_field"]]) + 1)
        return body
    bad = _bad_image(rule.spec["check"], model.image_limits)
    if bad is None:
        return None
    return {**body, rule.param: bad}


def _schema_bodies(model: ModelContract, mode: str, base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One body per schema keyword in use, each breaking the first field that has it."""
    schema = model.request_schemas[mode]
    props: Mapping[str, Any] = schema["properties"]
    out: list[dict[str, Any]] = []
    required = [n for n in schema.get("required", []) if "const" not in props[n]]
    if required:
        out.append({k: v for k, v in base.items() if k != required[0]})

    def not_in_enum(s: Mapping[str, Any]) -> Any:
        words = [v for v in s["enum"] if isinstance(v, str)]
        if words:
            return f"not-{words[0]}"
        numbers = [v for v in s["enum"] if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return max(numbers) + 1 if numbers else None

    makers: list[tuple[str, Callable[[Mapping[str, Any]], Any]]] = [
        ("enum", not_in_enum),
        ("type", lambda s: "yes" if _types(s) == ["boolean"] else None),
        ("maximum", lambda s: s["maximum"] + 1),
        ("maxLength", lambda s: "x" * (int(s["maxLength"]) + 1)),
        ("minItems", lambda s: []),
        ("const", lambda s: f"{s['const']}-unknown"),
    ]
    for keyword, make in makers:
        for name, sub in props.items():
            if keyword in sub and (value := make(sub)) is not None:
                out.append({**base, name: value})
                break
    return out


def build_cases(contract: Contract | None = None, *, model: str = "kling-v2-6") -> list[Case]:
    """The deterministic case list verify sends, most important first.

    >>> names = [case.name for case in build_cases()]
    >>> names[:4]
    ['valid:text2video', 'valid:image2video', 'auth:missing_api_key', 'get:task_not_exist']
    >>> "invalid:sound.requires_pro" in names
    True
    >>> [c.name for c in build_cases(load_contract("official"))][2:6]
    ['auth:missing_api_key', 'auth:invalid_api_key', 'auth:auth_failed', 'auth:token_expired']
    """
    return _build(contract or load_contract(), model)[0]


def omitted_cases(contract: Contract | None = None, *, model: str = "kling-v2-6") -> dict[str, str]:
    """Named rules verify does not exercise, with the reason (shown in dry runs and reports).

    >>> sorted(omitted_cases())
    ['invalid:image.max_bytes', 'invalid:image_tail.max_bytes']
    """
    return _build(contract or load_contract(), model)[1]


def _auth_cases(contract: Contract, valid: Mapping[str, dict[str, Any]], kinds: _Kinds) -> list[Case]:
    """One case per credentials situation of the contract's ``auth.errors`` the verifier can
    produce (a face without that section: a missing key only), each sent where nothing is
    billed even if a server wrongly accepts it: a listing when the face has one."""
    situations: Mapping[str, str] = contract.index.get("auth", {}).get("errors") or {"missing": "missing_api_key"}
    listing = next((op for op in contract.operations.values() if op.verb == "task.list" and op.auth), None)
    first_mode = next(iter(valid))
    create = kinds.create_for(first_mode)
    assert create is not None
    probe, body = (listing, None) if listing is not None else (create, valid[first_mode])
    out: list[Case] = []
    seen: set[str] = set()
    for situation in _SITUATIONS:
        key = situations.get(situation)
        if key is None or key in seen or key not in contract.errors:
            continue
        seen.add(key)
        spec = contract.errors[key]
        out.append(
            Case(
                f"auth:{key}",
                probe.method,
                probe.path,
                body,
                auth=situation != "missing",
                expect=Expectation(key, spec.http_status, spec.code, None, "auth"),
                credentials=situation if situation != "missing" else "valid",
                operation=probe.id,
                kind=probe.kind,
            )
        )
    return out


#: bodies no face can read, one per body-level rule of ``request_rules`` (its key -> the
#: ``Content-Type`` and bytes sent): what a client with a serialisation bug sends
_UNREADABLE_BODIES: dict[str, tuple[str, bytes]] = {
    "body_json": ("application/json", b'{"model": '),
    "body_object": ("application/json", b"[]"),
    "content_type": ("text/plain", b"a red fox in snow"),
}


def _body_cases(contract: Contract, create: Operation) -> list[Case]:
    """One create per body-level rule the face lists: a body cut short, a JSON value that is
    no object, a content type the create does not take; each must get its catalogued error
    (never a 500, never a task)."""
    out: list[Case] = []
    for key, (content_type, data) in _UNREADABLE_BODIES.items():
        rule = contract.request_rules.get(key)
        if rule is None or rule.error is None:
            continue
        spec = contract.errors[rule.error]
        out.append(
            Case(
                f"invalid:{rule.id}",
                create.method,
                create.path,
                expect=Expectation(rule.error, spec.http_status, spec.code, rule.param, rule.id),
                operation=create.id,
                kind=create.kind,
                encoded=EncodedBody(content_type, data),
            )
        )
    return out


def _unknown_task_id(contract: Contract) -> str:
    fmt = contract.id_format
    first = fmt.first_alphabet or fmt.alphabet
    head = "0" if "0" in first else first[0]
    fill = "0" if "0" in fmt.alphabet else fmt.alphabet[0]
    return fmt.prefix + head + fill * (fmt.length - 1)


def _get_cases(contract: Contract) -> list[Case]:
    """A query for a task that does not exist (the face's ``task_exists`` rule)."""
    get = _Kinds(contract).get_for(None)
    if get is None:
        return []
    lookup = contract.index["request_rules"]["task_exists"]
    not_found = contract.errors[lookup["error"]]
    return [
        Case(
            "get:task_not_exist",
            get.method,
            get.path.replace("{task_id}", _unknown_task_id(contract)),
            expect=Expectation(
                lookup["error"], not_found.http_status, not_found.code, lookup.get("param"), lookup["id"]
            ),
            operation=get.id,
            kind=get.kind,
        )
    ]


@functools.cache
def _build(contract: Contract, model_name: str) -> tuple[list[Case], dict[str, str]]:
    if contract.form_mapping is not None:
        return _FormCases(form_view(contract, contract.models[model_name])).build()
    model = contract.models[model_name]
    builder = _Builder(contract, model)
    kinds = _Kinds(contract)
    valid = _valid_bodies(builder, kinds)
    cases = []
    for mode, body in valid.items():
        create = kinds.create_for(mode)
        assert create is not None
        cases.append(Case(f"valid:{mode}", create.method, create.path, body, operation=create.id, kind=mode))
    cases += _auth_cases(contract, valid, kinds)
    cases += _get_cases(contract)
    first_create = kinds.create_for(next(iter(valid)))
    assert first_create is not None
    cases += _body_cases(contract, first_create)
    invalid: list[Case] = []
    omitted: dict[str, str] = {}
    seen: set[str] = set()

    def add(target: list[Case], name: str, mode: str, body: dict[str, Any], found: Violation) -> None:
        create = kinds.create_for(mode)
        assert create is not None
        seen.add(found.rule)
        target.append(
            Case(
                name,
                create.method,
                create.path,
                body,
                expect=_expectation(contract, found),
                operation=create.id,
                kind=mode,
            )
        )

    rules = [r for r in model.rules if not r.warning]
    ordered = sorted(rules, key=lambda r: (r.kind == "image" and r.param != "image", r.kind == "image"))
    for rule in ordered:
        name = f"invalid:{rule.id}"
        start = _start_mode(builder, kinds, rule, valid)
        draft = _rule_body(builder, rule, start, valid) if start is not None else None
        if draft is None:
            reason = "needs an upload over the size limit" if rule.spec.get("check") == "max_bytes" else None
            omitted[name] = reason or f"no request breaking {rule.id} could be built from the contract"
            continue
        assert start is not None
        repaired = _repair(builder, kinds, start, draft, rule.id)
        if repaired is None:
            omitted[name] = f"no request breaking {rule.id} alone could be built from the contract"
            continue
        found = _oracle(contract, repaired, kinds.oracle_mode(start))
        assert found is not None
        add(invalid, name, start, repaired, found)
    schema_cases: list[Case] = []
    first_mode = next(iter(valid))
    for body in _schema_bodies(model, first_mode, valid[first_mode]):
        found = _oracle(contract, body, kinds.oracle_mode(first_mode))
        if found is None or found.rule in seen:
            continue
        add(schema_cases, f"invalid:{found.rule}", first_mode, body, found)
    # Named rules on the main image first, then schema keywords, then the image_tail variants.
    head = [c for c in invalid if not c.name.startswith("invalid:image_tail.")]
    tail = [c for c in invalid if c.name.startswith("invalid:image_tail.")]
    return cases + head + schema_cases + tail, omitted


# -- faces whose create form maps onto another face's model ----------------------------------


def _media_type_of(data: bytes, offered: Sequence[str]) -> str:
    """The media type a client declares for ``data``: the image format its bytes start with
    where the contract offers it, else the first type offered."""
    for magic, media_type in ((b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg")):
        if data.startswith(magic) and media_type in offered:
            return media_type
    return offered[0]


class _FormCases:
    """The case list of a face whose create form maps onto another face's model
    (``Contract.form_mapping``): target requests built by the target's own builder (which
    only knows the target's schemas and rules), restricted to what a form carries and mapped
    back through :class:`~kling_testkit._forms.FormView`, the mapping the strategies use.

    Each valid form is confirmed twice, as the face checks it: the form by the form's schema
    (``validate_create`` on this face's contract), the target request it maps onto by the
    target's. A target rule's refusal names the form field its field comes from. The form's
    own rules (``request_rules``) whose bodies the kit knows how to break get a case each;
    creates go as the face's first content type (the form as an SDK sends it) where a form can
    carry them, and one valid create per other content type.
    """

    def __init__(self, view: FormView) -> None:
        self.view = view
        self.contract = view.contract
        self.kinds = _Kinds(view.contract)
        self.target_kinds = _Kinds(view.target_contract)
        self.builder = _Builder(view.target_contract, view.target)
        self.content_types = tuple(t for t in view.contract.request.content_types if t in (MULTIPART, JSON))
        self.omitted: dict[str, str] = {}

    # -- forms from target requests ------------------------------------------------------------

    def form(
        self, kind: str, body: Mapping[str, Any], content_type: str
    ) -> tuple[dict[str, Any], EncodedBody | None] | None:
        """(the fields as the journal records them, the encoded body or None for JSON) of the
        form mapping onto ``body``; None when no form of ``content_type`` does."""
        image = self.view.image_field
        raw = as_file(body.get(image)) if image is not None else None

        def first(purpose: str, options: Sequence[Any]) -> Any:
            if purpose == "file_type" and raw is not None:
                return _media_type_of(raw, options)
            return options[0]

        found = self.view.fields_of(kind, body, content_type, {}, first)
        if found is None:
            return None
        fields, files = found
        if content_type != MULTIPART:
            return fields, None
        recorded = {**fields, **{name: base64.b64encode(part[1]).decode("ascii") for name, part in files.items()}}
        encoded = encode_form(list(fields.items()), [(name, *part) for name, part in files.items()])
        return recorded, encoded

    def form_verdict(self, kind: str, body: Mapping[str, Any]) -> Violation | None:
        """What the form's own schema says of the JSON form mapping onto ``body``."""
        found = self.form(kind, body, JSON)
        if found is None:
            return Violation("invalid_parameter", None, "form.mapping", "no form maps onto it")
        return _oracle(self.contract, found[0], self.kinds.oracle_mode(kind))

    def target_verdict(self, kind: str, body: Mapping[str, Any]) -> Violation | None:
        return _oracle(self.view.target_contract, body, self.target_kinds.oracle_mode(kind))

    def case(
        self, name: str, kind: str, body: Mapping[str, Any], expect: Expectation | None, types: Sequence[str] = ()
    ) -> Case | None:
        """The case sending the form that maps onto ``body``, in the first of ``types`` (the
        face's content types) a form can carry it in."""
        create = self.kinds.create_for(kind)
        assert create is not None
        for content_type in types or self.content_types:
            found = self.form(kind, body, content_type)
            if found is not None:
                fields, encoded = found
                return Case(
                    name,
                    create.method,
                    create.path,
                    fields,
                    expect=expect,
                    operation=create.id,
                    kind=kind,
                    encoded=encoded,
                )
        return None

    def fields_case(
        self, name: str, kind: str, fields: Mapping[str, Any], expect: Expectation, encoded: EncodedBody | None = None
    ) -> Case:
        create = self.kinds.create_for(kind)
        assert create is not None
        return Case(
            name,
            create.method,
            create.path,
            dict(fields),
            expect=expect,
            operation=create.id,
            kind=kind,
            encoded=encoded,
        )

    def expectation(self, error: str, param: str | None, rule: str) -> Expectation:
        spec = self.contract.errors[error]
        return Expectation(error, spec.http_status, spec.code, param, rule)

    # -- the case list -------------------------------------------------------------------------

    def valid_targets(self) -> dict[str, dict[str, Any]]:
        """One accepted target request per kind, with what the form always sends (its
        required fields that map onto one target field) filled in."""
        view = self.view
        out: dict[str, dict[str, Any]] = {}
        for kind, body in _valid_bodies(self.builder, self.target_kinds).items():
            schema = view.model.request_schemas.get(kind)
            if schema is None:
                continue
            full = dict(body)
            for name in schema.get("required", ()):
                targets = view.mapping.fields.get(name, ())
                if len(targets) == 1 and targets[0] not in full:
                    sample = _sample(view.target, kind, self.builder.field(kind, (targets[0],)))
                    if sample is not _NOTHING:
                        full[targets[0]] = sample
            repaired = _repair(self.builder, self.target_kinds, kind, full, None)
            if repaired is None or self.form_verdict(kind, repaired) is not None:
                raise AssertionError(f"verify cannot build a valid {kind} form for {view.model.name}")
            out[kind] = repaired
        return out

    def build(self) -> tuple[list[Case], dict[str, str]]:
        targets = self.valid_targets()
        cases: list[Case] = []
        for kind, body in targets.items():
            found = self.case(f"valid:{kind}", kind, body, None)
            assert found is not None
            cases.append(found)
        first = next(iter(targets))
        for content_type in self.content_types[1:]:
            # the other ways to send a create: one valid create each, on the first kind
            found = self.case(
                f"valid:{first}:{content_type.split('/')[-1]}", first, targets[first], None, [content_type]
            )
            if found is not None:
                cases.append(found)
        json_forms = {kind: self.form(kind, body, JSON) for kind, body in targets.items()}
        valid_forms = {kind: found[0] for kind, found in json_forms.items() if found is not None}
        cases += _auth_cases(self.contract, valid_forms, self.kinds)
        cases += _get_cases(self.contract)
        first_create = self.kinds.create_for(first)
        assert first_create is not None
        cases += _body_cases(self.contract, first_create)
        rule_cases = self.target_rule_cases(targets)
        schema_cases = self.schema_cases(first, targets[first], {c.name for c in rule_cases})
        return cases + rule_cases + schema_cases + self.request_rule_cases(targets), dict(self.omitted)

    def target_rule_cases(self, targets: Mapping[str, dict[str, Any]]) -> list[Case]:
        """One case per target rule a form can carry, built on the target and mapped back."""
        view = self.view
        out: list[Case] = []
        rules = [r for r in view.target.rules if not r.warning and view.carried(r)]
        for rule in sorted(rules, key=lambda r: r.kind == "image"):
            name = f"invalid:{rule.id}"
            start = _start_mode(self.builder, self.target_kinds, rule, targets)
            draft = _rule_body(self.builder, rule, start, targets) if start is not None else None
            repaired = _repair(self.builder, self.target_kinds, start, draft, rule.id) if draft and start else None
            found = self.target_verdict(start, repaired) if repaired is not None and start is not None else None
            if start is None or repaired is None or found is None or found.rule != rule.id:
                reason = "needs an upload over the size limit" if rule.spec.get("check") == "max_bytes" else None
                self.omitted[name] = reason or f"no form breaking {rule.id} alone could be built from the contract"
                continue
            if not set(repaired) <= view.expressible or self.form_verdict(start, repaired) is not None:
                self.omitted[name] = f"the form cannot carry a request breaking {rule.id} alone"
                continue
            case = self.case(
                name, start, repaired, self.expectation(found.error, _renamed(view, found.param), found.rule)
            )
            if case is None:
                self.omitted[name] = f"no form maps onto a request breaking {rule.id}"
                continue
            out.append(case)
        return out

    def schema_cases(self, kind: str, target: Mapping[str, Any], seen: set[str]) -> list[Case]:
        """One case per keyword of the form's own schema, sent as a form where its values are
        text (a form carries nothing else), else as JSON."""
        found_form = self.form(kind, target, JSON)
        assert found_form is not None
        out: list[Case] = []
        for body in _schema_bodies(self.view.model, kind, found_form[0]):
            found = _oracle(self.contract, body, self.kinds.oracle_mode(kind))
            if found is None or f"invalid:{found.rule}" in seen:
                continue
            seen.add(f"invalid:{found.rule}")
            expect = self.expectation(found.error, found.param, found.rule)
            as_text = MULTIPART in self.content_types and all(isinstance(v, str) for v in body.values())
            encoded = encode_form(list(body.items())) if as_text else None
            out.append(self.fields_case(f"invalid:{found.rule}", kind, body, expect, encoded))
        return out

    def request_rule_cases(self, targets: Mapping[str, dict[str, Any]]) -> list[Case]:
        """The form's own rules (``request_rules``) the kit knows how to break, each in a form
        otherwise valid: a form without a boundary, one part too many, a text part over its
        size limit, a field sent twice, a file part of a type the field refuses, and a member
        of an object field the face does not serve (the rule's ``param`` path)."""
        view = self.view
        rules = self.contract.request_rules
        limits = view.mapping.multipart
        file_field = view.mapping.file_field
        out: list[Case] = []
        with_file = next((k for k in targets if file_field in view.model.request_schemas[k].get("required", ())), None)
        plain_kind = next(iter(targets))
        plain = self.form(plain_kind, targets[plain_kind], MULTIPART) if MULTIPART in self.content_types else None
        filed = self.form(with_file, targets[with_file], MULTIPART) if plain is not None and with_file else None

        def add(key: str, kind: str, fields: Mapping[str, Any] | None, encoded: EncodedBody, param: str | None) -> None:
            rule = rules.get(key)
            if rule is None or rule.error is None:
                return
            expect = self.expectation(rule.error, param, rule.id)
            out.append(self.fields_case(f"invalid:{rule.id}", kind, fields or {}, expect, encoded))
            if fields is None:
                out[-1] = dataclasses.replace(out[-1], body=None)

        if plain is not None:
            fields = dict(plain[0])
            items = list(fields.items())
            encoded = encode_form(items)
            add("multipart", plain_kind, None, EncodedBody(MULTIPART, encoded.data), None)
            padding = [(f"x_extra_{i}", "x") for i in range(limits["max_parts"] + 1 - len(items))]
            add("multipart_parts", plain_kind, {**fields, **dict(padding)}, encode_form([*items, *padding]), None)
            big = (items[0][0], "a" * (limits["max_field_bytes"] + 1))
            add("multipart_part_size", plain_kind, {**fields, big[0]: big[1]}, encode_form([big, *items[1:]]), big[0])
            add("duplicate_field", plain_kind, fields, encode_form([*items, items[0]]), items[0][0])
        if filed is not None and file_field is not None and with_file is not None:
            fields = {k: v for k, v in filed[0].items() if k != file_field}
            image = as_file(filed[0][file_field])
            assert image is not None
            refused = next(t for t in OTHER_FILE_TYPES if t not in view.mapping.file_types)
            encoded = encode_form(list(fields.items()), [(file_field, FILENAMES[0], image, refused)])
            add("file_content_type", with_file, filed[0], encoded, file_field)
        for rule in rules.values():
            head, _, member = (rule.param or "").partition(".")
            if rule.error is None or not member or with_file is None or head != file_field:
                continue
            # a member of the field's object form the face refuses to serve (a reference it
            # cannot resolve): the form's schema takes it, the face names it
            json_form = self.form(with_file, targets[with_file], JSON)
            assert json_form is not None
            body = {**json_form[0], head: {member: f"{member}-0"}}
            if _oracle(self.contract, body, self.kinds.oracle_mode(with_file)) is None:
                out.append(
                    self.fields_case(
                        f"invalid:{rule.id}", with_file, body, self.expectation(rule.error, rule.param, rule.id)
                    )
                )
            else:
                self.omitted[f"invalid:{rule.id}"] = f"the form's schema refuses {rule.param} before the face can"
        return out


def _renamed(view: FormView, param: str | None) -> str | None:
    return None if param is None else view.form_param(param)


# -- running ---------------------------------------------------------------------------------


@dataclass
class VerifyResult:
    """What a run did: the report, every exchange (for ``--record``), requests sent."""

    report: Report
    exchanges: list[Exchange] = field(default_factory=list)
    requests_sent: int = 0


class BudgetExhausted(Exception):
    """No request left in the budget."""


class Verifier:
    """Runs the case list against ``base_url`` within ``max_requests`` requests.

    ``face`` (or ``contract``) chooses the wire dialect (default: the first registered face, the gateway). Credentials:
    ``api_key`` is sent as ``Authorization: Bearer KEY``; on a face that signs tokens (its
    contract's ``auth.jwt``), ``access_key`` and ``secret_key`` sign a fresh JWT per request on
    the ``wall`` clock (the server checks ``exp``/``nbf`` on its clock, so a fake must run on the
    system clock), and the cases with deliberately bad tokens are signed the same way.
    ``client`` (an ``httpx.Client``) may be injected, e.g. one bound to a test server;
    ``sleep``, ``monotonic`` and ``wall`` are injected so tests never wait; ``progress``
    receives one line per step (the CLI prints them to stderr on a terminal).

    >>> verifier = Verifier("http://127.0.0.1:9", "sk-test", max_requests=3)
    >>> [case.name for case in verifier.plan()][:2]
    ['valid:text2video', 'valid:image2video']
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        face: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        poll_interval: float = 5.0,
        timeout: float = 600.0,
        client: httpx.Client | None = None,
        contract: Contract | None = None,
        cases: Sequence[Case] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        if poll_interval < 0 or timeout <= 0:
            raise ValueError("poll_interval must be >= 0 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.access_key = access_key
        self.secret_key = secret_key
        self.max_requests = max_requests
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.contract = contract or load_contract(face or face_names()[0])
        if face is not None and self.contract.face != face:
            raise ValueError(f"contract is the {self.contract.face!r} face's, not {face!r}")
        self.rules = FaceRules.of(self.contract)
        self._jwt: Mapping[str, Any] | None = self.contract.index.get("auth", {}).get("jwt")
        self._cases = list(cases) if cases is not None else build_cases(self.contract)
        self._client = client
        self.sleep, self.monotonic, self.wall = sleep, monotonic, wall
        self.progress = progress or (lambda line: None)
        self.sent = 0

    @property
    def signs(self) -> bool:
        """Whether requests carry JWTs signed here (the face signs tokens and both keys are set)."""
        return self._jwt is not None and bool(self.access_key) and bool(self.secret_key)

    def plan(self) -> list[Case]:
        """The cases in the order they are sent (a dry run prints these)."""
        return list(self._cases)

    def dry_run(self) -> str:
        """What a run would send, without sending anything."""
        lines = [
            f"verify (dry run) against {self.base_url}: {len(self._cases)} cases{self._face_note()}, "
            f"budget {self.max_requests} requests (polls every {self.poll_interval:g} s, timeout {self.timeout:g} s); "
            "nothing is sent"
        ]
        lines += [f"{i:3}. {case.describe()}" for i, case in enumerate(self._cases, start=1)]
        lines += [f"     omitted {name}: {why}" for name, why in omitted_cases(self.contract).items()]
        creates = sum(1 for c in self._cases if c.follow)
        lines.append(f"billable creates: {creates}; the rest are refused by contract or cost nothing")
        return "\n".join(lines)

    def _face_note(self) -> str:
        return f" ({self.contract.face} face)" if self.contract.face != face_names()[0] else ""

    def run(self) -> VerifyResult:
        """Send the cases, follow accepted tasks, check everything; never exceed the budget."""
        own = self._client is None
        client = self._client or httpx.Client(timeout=30.0)
        report = Report("verify")
        result = VerifyResult(report)
        ctx = CheckContext(self.contract)
        server_checks = CHECKS.select(side="server")
        pending: dict[str, tuple[str, Operation]] = {}  # task id -> (case name, the query to poll with)
        try:
            for case in self._cases:
                name = case.name
                unsendable = self._unsendable(case)
                if unsendable is not None:
                    report.skipped[name] = unsendable
                    continue
                try:
                    exchange = self._send(client, case, result=result)
                except BudgetExhausted:
                    report.skipped[name] = f"budget of {self.max_requests} requests exhausted"
                    continue
                except httpx.HTTPError as exc:
                    report.cases[name] = [_transport_violation(case.name, exc)]
                    continue
                found = check_exchange(ctx, exchange, server_checks)
                found += self._expectations(case, exchange)
                report.cases[name] = found
                self.progress(f"[{self.sent}/{self.max_requests}] {name}: {_verdict(found)}")
                if case.follow and exchange.status == 200:
                    task_id = ctx.task_id_of(exchange)
                    get = _Kinds(self.contract).get_for(case.kind)
                    if task_id and get is not None:
                        pending[task_id] = (name, get)
                    else:
                        report.skipped[f"{name}::follow"] = "the create answer names no task id to poll"
            self._follow(client, ctx, pending, result)
        finally:
            if own:
                client.close()
        report.stats = {
            # the default face's summary reads as it always has; another face is named
            **({"face": self.contract.face} if self.contract.face != face_names()[0] else {}),
            "requests": f"{self.sent}/{self.max_requests}",
            "tasks followed": len(pending),
        }
        result.requests_sent = self.sent
        return result

    def _unsendable(self, case: Case) -> str | None:
        if case.credentials in _SIGNED and not self.signs:
            return "needs --access-key and --secret-key: the verifier signs this token itself"
        if case.auth and case.credentials == "valid" and not self.signs and not self.api_key:
            return "no credentials: give an API key, or an access and a secret key"
        return None

    def _follow(
        self, client: httpx.Client, ctx: CheckContext, pending: dict[str, tuple[str, Operation]], result: VerifyResult
    ) -> None:
        report = result.report
        rules = self.rules
        server_checks = CHECKS.select(side="server")
        deadline = self.monotonic() + self.timeout
        open_tasks = dict(pending)
        while open_tasks:
            if self.monotonic() >= deadline:
                for task_id, (name, get) in open_tasks.items():
                    report.cases.setdefault(f"{name}::follow", []).append(
                        ContractViolation(
                            "verify.terminal_within_timeout",
                            f"task {task_id} did not reach a terminal status within {self.timeout:g} s",
                            operation=get.id,
                            json_path=rules.path_of("status"),
                            expected=sorted(rules.terminal),
                            actual=ctx.timelines[task_id].last_status if task_id in ctx.timelines else None,
                            check="verify",
                            face=rules.face,
                        )
                    )
                return
            self.sleep(self.poll_interval)
            for task_id in list(open_tasks):
                name, get = open_tasks[task_id]
                key = f"{name}::follow"
                poll = Case(key, get.method, get.path.replace("{task_id}", task_id), operation=get.id, kind=get.kind)
                try:
                    exchange = self._send(client, poll, result=result)
                except BudgetExhausted:
                    for left, _ in open_tasks.values():
                        report.skipped[f"{left}::follow"] = (
                            f"budget of {self.max_requests} requests exhausted before a terminal status"
                        )
                    return
                except httpx.HTTPError as exc:
                    report.cases.setdefault(key, []).append(_transport_violation(name, exc))
                    del open_tasks[task_id]
                    continue
                found = check_exchange(ctx, exchange, server_checks)
                report.cases.setdefault(key, []).extend(found)
                status = rules.read("status", exchange.response_body)
                self.progress(f"[{self.sent}/{self.max_requests}] {key}: {status} {_verdict(found)}")
                if status in rules.terminal or status not in rules.reachable or exchange.status >= 400:
                    # terminal, or an answer the contract cannot follow (already reported)
                    del open_tasks[task_id]
                    if status == rules.wire_status.get("succeeded") and exchange.status == 200:
                        self._download(client, ctx, name, exchange, result)

    def _download(
        self, client: httpx.Client, ctx: CheckContext, name: str, answer: Exchange, result: VerifyResult
    ) -> None:
        """Fetch a finished task's result where the face serves it itself (its contract's
        ``reader.result_path``, behind the same credentials): that route is part of the
        contract under test. A result URL pointing elsewhere (a CDN) is not fetched."""
        if self.contract.reader.result_path is None:
            return
        path = self.contract.result_url(answer.response_body, "")
        if path is None:
            return
        key = f"{name}::content"
        case = Case(key, "GET", path)
        case = dataclasses.replace(case, operation=self._operation_of(case))
        try:
            exchange = self._send(client, case, result=result)
        except BudgetExhausted:
            result.report.skipped[key] = f"budget of {self.max_requests} requests exhausted before the download"
            return
        except httpx.HTTPError as exc:
            result.report.cases[key] = [_transport_violation(key, exc)]
            return
        found = check_exchange(ctx, exchange, CHECKS.select(side="server"))
        found += self._content_expectations(case, exchange)
        result.report.cases[key] = found
        self.progress(f"[{self.sent}/{self.max_requests}] {key}: {_verdict(found)}")

    def _content_expectations(self, case: Case, exchange: Exchange) -> list[ContractViolation]:
        """A download answers 200 with the media type its operation declares."""
        op = self.contract.operations.get(case.operation or "")
        declared = op.spec.get("content_type") if op is not None else None
        got = (exchange.response_header("content-type") or "").split(";")[0].strip().lower()
        problem: tuple[str, Any, Any, str] | None = None
        if exchange.status != 200:
            problem = ("$", 200, exchange.status, f"the result download answered {exchange.status}")
        elif declared is not None and got != str(declared).lower():
            problem = ("$.content-type", declared, got or None, f"the result is not {declared}")
        if problem is None:
            return []
        where, expected, actual, message = problem
        return [
            ContractViolation(
                "verify.result_downloaded",
                message,
                operation=case.operation,
                status=exchange.status,
                part="response" if where == "$" else "response.headers",
                json_path=where,
                expected=expected,
                actual=actual,
                check="verify",
                face=self.rules.face,
            )
        ]

    # -- credentials -------------------------------------------------------------------------

    def _token(self, situation: str) -> str:
        """A JWT for ``situation`` (``valid``, ``expired``...), signed on the wall clock."""
        spec = self._jwt or {}
        assert self.access_key is not None
        assert self.secret_key is not None
        now = int(self.wall())
        exp, nbf = now + TOKEN_LIFETIME, now - 5
        if situation == "expired":
            exp, nbf = now - _TOKEN_OFFSET, now - _TOKEN_OFFSET - TOKEN_LIFETIME
        elif situation == "not_yet_valid":
            exp, nbf = now + _TOKEN_OFFSET + TOKEN_LIFETIME, now + _TOKEN_OFFSET
        issuer = self.access_key + ("-unknown" if situation == "unknown_access_key" else "")
        secret = self.secret_key + ("-not-the-secret" if situation == "bad_signature" else "")
        claims = {str(spec.get("issuer_claim", "iss")): issuer, "exp": exp, "nbf": nbf}
        header = {k: v for k, v in dict(spec.get("header", {})).items() if k != "alg"}
        return jwt.encode(claims, secret, algorithm=str(spec.get("alg", "HS256")), headers=header)

    def _headers(self, case: Case) -> dict[str, str]:
        if not case.auth:
            return {}
        if case.credentials == "malformed":
            return {"Authorization": "Bearer not-a-token"}
        if self.signs:
            return {"Authorization": f"Bearer {self._token(case.credentials)}"}
        return {"Authorization": f"Bearer {self.api_key}"}

    def _send(self, client: httpx.Client, case: Case, *, result: VerifyResult) -> Exchange:
        for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
            if self.sent >= self.max_requests:
                raise BudgetExhausted
            self.sent += 1
            headers = self._headers(case)
            if case.encoded is None:
                response = client.request(case.method, self.base_url + case.path, json=case.body, headers=headers)
            else:
                headers["Content-Type"] = case.encoded.content_type
                response = client.request(
                    case.method, self.base_url + case.path, content=case.encoded.data, headers=headers
                )
            exchange = Exchange.from_httpx(response, timestamp=self.wall(), source=f"request {self.sent}")
            exchange = dataclasses.replace(exchange, face=self.contract.face)  # --record says which face
            if case.encoded is not None and case.body is not None:
                # a form is recorded as its fields, as the fake's journal records it, so that
                # `check` can judge the recording
                exchange = dataclasses.replace(exchange, request_body=shorten(case.body))
            result.exchanges.append(exchange)
            wait = retry_after_seconds(response.headers.get("retry-after"), self.wall())
            expected_429 = case.expect is not None and case.expect.status == 429
            if response.status_code != 429 or attempt == MAX_RATE_LIMIT_RETRIES or expected_429:
                return exchange
            self.progress(f"429: waiting {wait if wait is not None else self.poll_interval:g} s as asked")
            self.sleep(wait if wait is not None else max(self.poll_interval, 1.0))
        raise AssertionError("unreachable")  # the loop returns on its last attempt

    # -- expectations ------------------------------------------------------------------------

    def _expectations(self, case: Case, exchange: Exchange) -> list[ContractViolation]:
        rules = self.rules
        out: list[ContractViolation] = []
        body = exchange.response_body
        common: dict[str, Any] = {
            "operation": case.operation or self._operation_of(case),
            "status": exchange.status,
            "check": "verify",
            "face": rules.face,
        }
        if case.expect is None:
            if exchange.status != 200:
                message = rules.read("error_message", body) if exchange.status >= 400 else None
                out.append(
                    ContractViolation(
                        "verify.valid_accepted",
                        f"a valid request was refused with {exchange.status}",
                        json_path="$",
                        expected=200,
                        actual=_error_of(rules, body) or message or exchange.status,
                        **common,
                    )
                )
            return out
        expect = case.expect
        if exchange.status != expect.status:
            out.append(
                ContractViolation(
                    "verify.invalid_rejected",
                    f"expected {expect.status} {expect.code} for {case.name}, got {exchange.status}",
                    json_path="$",
                    expected=f"{expect.status} {expect.code} (param {expect.param})",
                    actual=exchange.status,
                    **common,
                )
            )
            return out
        if not isinstance(body, Mapping):
            return out  # error_object_well_formed reports the shape
        named: list[tuple[str, Any, str, str]] = [
            ("error_code", expect.code, "verify.error_code", "the error code should be")
        ]
        if "error_param" in rules.contract.reader.pointers:  # a face whose errors name the field
            named.append(("error_param", expect.param, "verify.error_param", "the error should name"))
        for field_name, wanted, rule, says in named:
            found = rules.read(field_name, body)
            if found != wanted:
                out.append(
                    ContractViolation(
                        rule,
                        f"{case.name}: {says} {wanted!r}",
                        json_path=rules.path_of(field_name),
                        expected=wanted,
                        actual=found,
                        **common,
                    )
                )
        return out

    def _operation_of(self, case: Case) -> str | None:
        for op in self.contract.operations.values():
            if op.method == case.method and op.match(case.path.split("?", 1)[0]) is not None:
                return op.id
        return None


def _error_of(rules: FaceRules, body: Any) -> Any:
    """The error an answer carries: the object holding its code (the gateway's ``error``), or
    the code itself where it sits at the top of the body (Kling's envelope)."""
    holder: Any = body
    for part in rules.contract.reader.pointers.get("error_code", "").split("/")[1:-1]:
        holder = holder.get(part) if isinstance(holder, Mapping) else None
    return holder if holder is not body and isinstance(holder, Mapping) else rules.read("error_code", body)


def _transport_violation(name: str, exc: Exception) -> ContractViolation:
    return ContractViolation(
        "verify.transport",
        f"{name}: no HTTP answer ({type(exc).__name__}: {exc})",
        json_path="$",
        part="response",
        expected="an HTTP response",
        actual=str(exc),
        severity=Severity.ERROR,
        check="verify",
    )


def _verdict(found: Sequence[ContractViolation]) -> str:
    return "ok" if not found else f"{len(found)} violation(s): " + ", ".join(v.rule for v in found)
