"""Load ``contracts/`` into typed, validated, cached objects.

Everything the fake, the strategies and the checks know about the wire comes from one
:class:`Contract`. Loading is strict: a dangling reference, an unknown error key in a rule or
an operation, or a schema that is not valid draft 2020-12 raises :class:`ContractError` naming
the file and the entry, so a bad contract edit fails at import of the first test, not later.
"""

from __future__ import annotations

import functools
import json
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import jsonschema_rs
from referencing import Registry, Resource

ENV_CONTRACTS = "KLING_TESTKIT_CONTRACTS"


class ContractError(Exception):
    """The contract data is inconsistent or missing; the message names the file and entry."""


def contracts_root() -> Path:
    """Where the contract files are: ``$KLING_TESTKIT_CONTRACTS``, the wheel, or the repo.

    A built wheel carries ``contracts/`` as ``mockserver/_contracts``; an editable install
    reads the repository's ``contracts/`` folder beside the package.
    """
    override = os.environ.get(ENV_CONTRACTS)
    if override:
        path = Path(override)
        if not (path / "lifecycle.json").is_file():
            raise ContractError(f"{ENV_CONTRACTS}={override!r} holds no lifecycle.json")
        return path
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_contracts", package.parent / "contracts"):
        if (candidate / "lifecycle.json").is_file():
            return candidate
    raise ContractError(f"no contracts folder next to {package} (looked for _contracts/ and ../contracts/)")


def _refuse_retrieval(uri: str) -> Any:
    raise ContractError(f"schemas may not reference {uri!r}: the fake never fetches a URL")


def compile_schema(schema: Mapping[str, Any]) -> Any:
    """A compiled (jsonschema-rs) validator that never fetches a remote ``$ref``.

    jsonschema-rs retrieves unknown ``$ref`` URLs over HTTP by default; a caller-supplied schema
    (an outcome rule over the admin API) must not make the fake connect anywhere.
    """
    return jsonschema_rs.validator_for(dict(schema), retriever=_refuse_retrieval)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"missing contract file {path}") from None
    except json.JSONDecodeError as exc:
        raise ContractError(f"{path}: not valid JSON ({exc})") from None


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """One row of the error catalogue: situation -> HTTP status, type, code, message."""

    key: str
    http_status: int
    type: str
    #: the wire code: a string on the gateway (``rate_limit_exceeded``), an integer on Kling's
    #: own API (``1302``)
    code: str | int
    message: str
    retry_after: float | None = None

    def render_message(self, **values: object) -> str:
        """The message with ``{detail}``, ``{param}``... filled in; missing values stay visible."""
        return self.message.format_map(_Defaulting(values))


class _Defaulting(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass(frozen=True, slots=True)
class Rule:
    """A named rule the request JSON Schema cannot carry (cross-field or content)."""

    id: str
    param: str
    error: str
    kind: str
    message: str
    source: str
    phase: str
    spec: Mapping[str, Any]
    #: compiled (when, then) validators of a ``requires`` rule
    compiled: tuple[Any, Any] | None = field(default=None, repr=False, compare=False)
    #: the modes the rule applies to (None: every mode)
    modes: tuple[str, ...] | None = None
    #: a match is reported as a contract warning, never refused
    warning: bool = False
    #: compiled ``when`` of a ``sum_equals`` rule that applies only to some bodies
    applies: Any = field(default=None, repr=False, compare=False)

    def applies_to(self, mode: str) -> bool:
        return self.modes is None or mode in self.modes


@dataclass(frozen=True, slots=True)
class IdFormat:
    """How a face spells task ids: ``prefix`` then ``length`` characters of ``alphabet``.

    >>> IdFormat(prefix="task_", length=4, alphabet="ab").pattern
    'task_[ab]{4}'
    """

    prefix: str = "task_"
    length: int = 32
    alphabet: str = string.ascii_letters + string.digits
    #: the first character's alphabet when it differs (Kling's numeric ids never start with 0)
    first_alphabet: str | None = None

    @property
    def pattern(self) -> str:
        """A regular expression matching exactly these ids (no anchors)."""
        if self.first_alphabet:
            return (
                re.escape(self.prefix)
                + "["
                + re.escape(self.first_alphabet)
                + "]["
                + re.escape(self.alphabet)
                + "]{"
                + str(self.length - 1)
                + "}"
            )
        return re.escape(self.prefix) + "[" + re.escape(self.alphabet) + "]{" + str(self.length) + "}"


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """How a face's create request names its model and chooses its mode (``index.json``
    ``request``).

    ``mode_from`` is ``"body"`` (image2video when ``mode_field`` is present, as the gateway's
    form says) or ``"operation"`` (each create path serves one mode, as Kling's own API does).
    """

    model_field: str = "model"
    model_aliases: tuple[str, ...] = ()
    default_model: str | None = None
    mode_from: str = "body"
    mode_field: str = "image"
    #: the media types a create body may be sent as (``request.content_types``; JSON when the
    #: contract lists none), in the contract's order
    content_types: tuple[str, ...] = ("application/json",)


@dataclass(frozen=True, slots=True)
class FormMapping:
    """How a face's create form maps onto another face's model (``index.json`` ``request``
    with ``maps_onto``), as a gateway converts a request before the provider checks it.

    ``fields``: form field -> the target's fields it sets (``size`` -> ``mode``,
    ``aspect_ratio``); ``tables``: for a field with a ``table``, form value -> the target
    fields' values (``"10"`` -> ``{"duration": "10"}``); ``passthrough``: target fields sent
    under their own names; ``file_field``: the form field sent as a file part (``type:
    file``), ``file_types`` the media types such a part may declare; ``multipart``: the
    form's limits (``limits.multipart``).

    >>> mapping = load_contract("openai").form_mapping
    >>> mapping.target, mapping.fields["seconds"], mapping.tables["seconds"]["10"]
    (('official', 'kling-v2-6'), ('duration',), {'duration': '10'})
    """

    target: tuple[str, str]
    fields: Mapping[str, tuple[str, ...]]
    tables: Mapping[str, Mapping[str, Mapping[str, Any]]]
    defaults: Mapping[str, Any]
    passthrough: tuple[str, ...]
    file_field: str | None
    file_types: tuple[str, ...]
    multipart: Mapping[str, int]

    def form_name(self, target_field: str) -> str:
        """The form field a target field comes from (the mapping's inverse; passthrough and
        unmapped fields keep their name).

        >>> load_contract("openai").form_mapping.form_name("mode")
        'size'
        """
        for name, targets in self.fields.items():
            if target_field in targets:
                return name
        return target_field


@dataclass(frozen=True, slots=True)
class RequestRule:
    """A rule of a face's request pipeline that belongs to no model (``request_rules``)."""

    id: str
    error: str | None
    param: str | None
    warning: bool = False


def resolve_pointer(body: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901) in ``body``; None when any step is missing.

    >>> resolve_pointer({"data": {"videos": [{"url": "u"}]}}, "/data/videos/0/url")
    'u'
    """
    value = body
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
        if value is None:
            return None
    return value


@dataclass(frozen=True, slots=True)
class Reader:
    """Where a face's answers keep what a client reads: JSON pointers (RFC 6901) into the body.

    The kit's generic layers (assertions, checks, verify, the state machine) read answers
    through this, never by a face's field names.
    """

    pointers: Mapping[str, str]
    #: for faces whose answers carry no result URL: the path of the result, ``{task_id}`` filled
    #: in from the answer (see :meth:`Contract.result_url`)
    result_path: str | None = None

    def get(self, what: str, body: Any) -> Any:
        """The value at ``what``'s pointer in ``body`` (None when absent or not declared).

        >>> Reader({"task_id": "/data/task_id"}).get("task_id", {"data": {"task_id": "1"}})
        '1'
        """
        pointer = self.pointers.get(what)
        return None if pointer is None else resolve_pointer(body, pointer)


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of a face: ``video_generations.create`` -> POST /v1/video/generations.

    ``verb`` is the face-neutral action it implements (``task.create``, ``task.get``,
    ``task.list``, ``media.get``...): fault plans and the kit's generic layers use it, so they
    never name a face's operation. ``kind`` is the generation mode a path serves, if any (the
    operation's ``mode`` in ``index.json``).
    """

    id: str
    method: str
    path: str
    summary: str
    auth: bool
    responses: Mapping[str, str]
    errors: tuple[str, ...]
    pattern: re.Pattern[str]
    spec: Mapping[str, Any]
    verb: str = ""
    kind: str | None = None
    #: query parameter name -> JSON Schema (``$ref``s into index.json resolved)
    query: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    required_query: tuple[str, ...] = ()

    def match(self, path: str) -> dict[str, str] | None:
        """Path parameters when ``path`` fits this operation's template, else None."""
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


@dataclass(frozen=True, eq=False)  # identity: contracts are loaded once and used as cache keys
class ModelContract:
    """One model's form, derived request schemas, named rules and output description."""

    name: str
    form: Mapping[str, Any]
    request_schemas: Mapping[str, Mapping[str, Any]]
    rules: tuple[Rule, ...]
    image_limits: Mapping[str, Any]
    output: Mapping[str, Any]
    defaults: Mapping[str, Any]
    fast_validators: Mapping[str, Any] = field(repr=False)
    explainers: Mapping[str, jsonschema.protocols.Validator] = field(repr=False)

    def mode_for(self, body: Mapping[str, Any], field: str = "image") -> str:
        """image2video when the first frame (``field``) is given, text2video otherwise (the
        gateway form's rule; faces with one path per mode name the mode themselves)."""
        return "image2video" if field in body else "text2video"


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    out = []
    for i, part in enumerate(parts):
        out.append(f"(?P<{part}>[^/]+)" if i % 2 else re.escape(part))
    return re.compile("".join(out))


@dataclass(frozen=True, eq=False)  # identity: contracts are loaded once and used as cache keys
class Contract:
    """A face's contract: operations, auth, errors, lifecycle, models, response schemas.

    >>> contract = load_contract()
    >>> contract.operations["video_generations.get"].path
    '/v1/video/generations/{task_id}'
    >>> contract.errors["rate_limited"].http_status
    429
    """

    root: Path
    face: str
    index: Mapping[str, Any]
    lifecycle: Mapping[str, Any]
    operations: Mapping[str, Operation]
    errors: Mapping[str, ErrorSpec]
    task_failures: Mapping[str, Mapping[str, Any]]
    models: Mapping[str, ModelContract]
    response_schemas: Mapping[str, Mapping[str, Any]]
    #: the error body's schema, as ``errors.json`` names it (``responses/error.schema.json``)
    error_envelope: str
    registry: Registry[Any] = field(repr=False)
    #: ``errors.json`` as read (faces read their own extra sections from it)
    catalogue: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def base_urls(self) -> tuple[str, ...]:
        """The provider's base URLs for this face (``index.json`` ``base_urls``)."""
        return tuple(self.index.get("base_urls", ()))

    @functools.cached_property
    def id_format(self) -> IdFormat:
        """How this face spells task ids (``index.json`` ``task_id``)."""
        spec = self.index["task_id"]
        return IdFormat(
            prefix=str(spec.get("prefix", "")),
            length=int(spec["length"]),
            alphabet=str(spec.get("alphabet", string.ascii_letters + string.digits)),
            first_alphabet=spec.get("first_alphabet"),
        )

    @functools.cached_property
    def timestamp_scale(self) -> int:
        """Multiplier from clock seconds to this face's timestamps (1, or 1000 for ms)."""
        unit = self.index.get("timestamps", {}).get("unit", "seconds")
        return 1000 if unit == "milliseconds" else 1

    @functools.cached_property
    def request(self) -> RequestSpec:
        """How a create names its model and chooses its mode (``index.json`` ``request``)."""
        spec = self.index.get("request", {})
        return RequestSpec(
            model_field=spec.get("model_field", "model"),
            model_aliases=tuple(spec.get("model_aliases", ())),
            default_model=spec.get("default_model"),
            mode_from=spec.get("mode_from", "body"),
            mode_field=spec.get("mode_field", "image"),
            content_types=tuple(spec.get("content_types", ("application/json",))),
        )

    @functools.cached_property
    def form_mapping(self) -> FormMapping | None:
        """How the create form maps onto another face's model (None: the face's own requests
        are checked as they are)."""
        spec = self.index.get("request", {})
        target = spec.get("maps_onto")
        if target is None:
            return None
        fields = {
            name: (row["kling"],) if isinstance(row["kling"], str) else tuple(row["kling"])
            for name, row in spec["fields"].items()
        }
        tables = {
            name: {
                value: {k: v for k, v in entry.items() if k in fields[name]}
                for value, entry in _rows(self.index[row["table"]]).items()
            }
            for name, row in spec["fields"].items()
            if "table" in row
        }
        files = [name for name, row in spec["fields"].items() if row.get("type") == "file"]
        file_field = files[0] if files else None
        return FormMapping(
            target=(str(target["face"]), str(target["model"])),
            fields=fields,
            tables=tables,
            defaults={name: row["default"] for name, row in spec["fields"].items() if "default" in row},
            passthrough=tuple(spec.get("passthrough", ())),
            file_field=file_field,
            file_types=tuple(spec["fields"][file_field].get("content_types", ())) if file_field else (),
            multipart={k: int(v) for k, v in self.index.get("limits", {}).get("multipart", {}).items()},
        )

    @functools.cached_property
    def request_rules(self) -> Mapping[str, RequestRule]:
        """The request pipeline's rules by their key in ``index.json`` ``request_rules``
        (``body_object``, ``multipart``...).

        >>> load_contract("openai").request_rules["multipart_part_size"].error
        'part_too_large'
        """
        spec = self.index.get("request_rules", {})
        return {
            key: RequestRule(str(row["id"]), row.get("error"), row.get("param"), bool(row.get("warning", False)))
            for key, row in spec.items()
            if not key.startswith("$")
        }

    @functools.cached_property
    def reader(self) -> Reader:
        """Where this face's answers keep task id, status, result URL and error (``reader``)."""
        spec = self.index.get("reader", {})
        pointers = {k: v for k, v in spec.items() if not k.startswith("$") and k != "result_path"}
        return Reader(pointers, spec.get("result_path"))

    def result_url(self, body: Any, base_url: str = "") -> str | None:
        """The result URL an answer names (``reader.result_url``), or, for a face whose answers
        name none, ``base_url`` + ``reader.result_path`` with the answer's task id once its
        status is the succeeded one (None before, and for failed tasks).

        >>> contract = load_contract("openai")
        >>> contract.result_url({"id": "task_1", "status": "completed"}, "https://h")
        'https://h/v1/videos/task_1/content'
        >>> contract.result_url({"id": "task_1", "status": "queued"}, "https://h") is None
        True
        """
        reader = self.reader
        url = reader.get("result_url", body)
        if url is not None or reader.result_path is None:
            return url if isinstance(url, str) else None
        task_id = reader.get("task_id", body)
        if not isinstance(task_id, str) or reader.get("status", body) != self.status_projection["succeeded"]:
            return None
        return base_url + reader.result_path.replace("{task_id}", quote(task_id, safe=""))

    @functools.cached_property
    def poll_hint(self) -> tuple[str, float] | None:
        """The header a query answer of an unfinished task carries to say how long to wait
        before the next poll, and the seconds it says (``index.json`` ``video.poll_header``,
        ``poll_after_ms``); None where the face sends no such hint.

        >>> load_contract("openai").poll_hint
        ('openai-poll-after-ms', 1.0)
        >>> load_contract("gateway").poll_hint is None
        True
        """
        spec = self.index.get("video", {})
        if "poll_header" not in spec:
            return None
        return str(spec["poll_header"]).lower(), float(spec["poll_after_ms"]) / 1000

    @functools.cached_property
    def faults(self) -> Mapping[str, str]:
        """Face-neutral fault name -> this catalogue's error key (``errors.json`` ``faults``)."""
        return {k: v for k, v in self.catalogue.get("faults", {}).items() if not k.startswith("$")}

    @functools.cached_property
    def media_ttl(self) -> float:
        """Seconds a result link stays valid."""
        return float(self.index["media"]["ttl_seconds"])

    @functools.cached_property
    def mount_prefixes(self) -> tuple[tuple[str, str], ...]:
        """(prefix, face whose auth guards it) of every extra path prefix this face is served
        under by default (``index.json`` ``mounts.prefixes``; the root is not listed)."""
        entries = self.index.get("mounts", {}).get("prefixes", [])
        return tuple(
            (str(e["prefix"]), str(e.get("auth", self.face)))
            for e in entries
            if e.get("prefix") and e.get("default", True)
        )

    @functools.cached_property
    def callback_retry_delays(self) -> tuple[float, ...]:
        """Seconds before each retry of a failed callback (``callbacks.retry_delays_seconds``)."""
        return tuple(float(s) for s in self.index.get("callbacks", {}).get("retry_delays_seconds", ()))

    def resolve_error(self, name: str) -> str | None:
        """The catalogue key a fault name means on this face (itself, or via ``faults``)."""
        if name in self.errors:
            return name
        return self.faults.get(name)

    def operations_for(self, name: str) -> list[Operation]:
        """The operations a fault plan's ``operation`` names: an id, a verb, or ``*``."""
        return [op for op in self.operations.values() if name in ("*", op.id, op.verb)]

    @property
    def status_projection(self) -> Mapping[str, str]:
        """Internal status -> this face's wire spelling."""
        return {k: v for k, v in self.index["status_projection"].items() if k != "source"}

    def request_rule(self, name: str) -> str:
        """The id of a request-pipeline rule of ``index.json`` (``body_object``, ``model_known``,
        ``unknown_field``, ``image_not_fetched``)."""
        return str(self.index["request_rules"][name]["id"])

    # The limits are read on every request; the contract's data does not change once loaded.
    @functools.cached_property
    def max_body_bytes(self) -> int:
        return int(self.index["limits"]["max_body_bytes"])

    @functools.cached_property
    def max_json_depth(self) -> int:
        return int(self.index["limits"]["max_json_depth"])

    @functools.cached_property
    def max_json_values(self) -> int:
        """Object members and array items a JSON body may hold, counted together."""
        return int(self.index["limits"]["max_json_values"])

    @functools.cached_property
    def max_header_bytes(self) -> int:
        """Bytes of request header names and values, added up over every header."""
        return int(self.index["limits"]["max_header_bytes"])

    @functools.cached_property
    def max_headers(self) -> int:
        """Request header fields per request."""
        return int(self.index["limits"]["max_headers"])

    def response_validator(self, relpath: str) -> jsonschema.protocols.Validator:
        """A ``jsonschema`` validator for a response schema, with $refs resolved in the face."""
        return _response_validator(self, relpath)

    def error_validator(self) -> jsonschema.protocols.Validator:
        """A validator for the face's error body (the catalogue's ``envelope`` schema)."""
        return self.response_validator(self.error_envelope)


@functools.cache
def _response_validator(contract: Contract, relpath: str) -> jsonschema.protocols.Validator:
    schema = contract.response_schemas[relpath]
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=contract.registry, format_checker=cls.FORMAT_CHECKER)


def _resolve_local(schema: Mapping[str, Any], document: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """``{"$ref": "#/a/b"}`` -> the object at that pointer of ``document`` (index.json), with
    its keys other than JSON Schema's own notes dropped; other schemas as they are."""
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    if not ref.startswith("#/"):
        raise ContractError(f"{where}: only local $refs (#/...) may name a query schema, got {ref!r}")
    node: Any = document
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping) or part not in node:
            raise ContractError(f"{where}: $ref {ref!r} does not resolve")
        node = node[part]
    return {k: v for k, v in node.items() if k not in ("source", "decision", "decisions")}


def _check_schema(schema: Mapping[str, Any], where: str) -> None:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ContractError(f"{where}: not a valid draft 2020-12 schema: {exc.message}") from None


def _load_rules(path: Path, errors: Mapping[str, ErrorSpec]) -> tuple[tuple[Rule, ...], Any]:
    data = _read_json(path)
    rules = []
    seen: set[str] = set()
    for raw in data["rules"]:
        where = f"{path} rule {raw.get('id')!r}"
        for key in ("id", "param", "kind", "message", "source", *(() if raw.get("warning") else ("error",))):
            if key not in raw:
                raise ContractError(f"{where}: missing {key!r}")
        if raw["id"] in seen:
            raise ContractError(f"{where}: duplicate id")
        seen.add(raw["id"])
        if not raw.get("warning") and raw["error"] not in errors:
            raise ContractError(f"{where}: unknown error {raw['error']!r}")
        if raw["kind"] not in {"requires", "sum_equals", "image"}:
            raise ContractError(f"{where}: unknown kind {raw['kind']!r}")
        if raw["kind"] == "requires":
            _check_schema(raw["when"], f"{where} 'when'")
            _check_schema(raw["then"], f"{where} 'then'")
        rules.append(
            Rule(
                id=raw["id"],
                param=raw["param"],
                error=raw.get("error", ""),
                kind=raw["kind"],
                message=raw["message"],
                source=raw["source"],
                phase=raw.get("phase", "after_schema"),
                spec=raw,
                compiled=(
                    (
                        compile_schema(raw["when"]),
                        compile_schema(raw["then"]),
                    )
                    if raw["kind"] == "requires"
                    else None
                ),
                modes=tuple(raw["modes"]) if "modes" in raw else None,
                warning=bool(raw.get("warning", False)),
                applies=compile_schema(raw["when"]) if raw["kind"] == "sum_equals" and "when" in raw else None,
            )
        )
    return tuple(rules), data


def _load_model(face_dir: Path, name: str, spec: Mapping[str, Any], errors: Mapping[str, ErrorSpec]) -> ModelContract:
    form = _read_json(face_dir / spec["form"])
    if form.get("model") != name:
        raise ContractError(f"{face_dir / spec['form']}: model is {form.get('model')!r}, index says {name!r}")
    schemas = {}
    fast = {}
    explainers = {}
    for mode, rel in spec["requests"].items():
        schema = _read_json(face_dir / rel)
        _check_schema(schema, str(face_dir / rel))
        schemas[mode] = schema
        fast[mode] = compile_schema(schema)
        explainers[mode] = jsonschema.Draft202012Validator(schema)
    rules, rules_data = _load_rules(face_dir / spec["rules"], errors)
    defaults = {f["name"]: f["default"] for f in form["fields"] if "default" in f}
    return ModelContract(
        name=name,
        form=form,
        request_schemas=schemas,
        rules=rules,
        image_limits=rules_data["image_limits"],
        output=rules_data["output"],
        defaults=defaults,
        fast_validators=fast,
        explainers=explainers,
    )


def _rows(table: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A contract table without its notes (keys starting with ``$``, ``decisions``)."""
    return {k: v for k, v in table.items() if not k.startswith("$") and k != "decisions"}


def _mapped_model(
    face_dir: Path, name: str, spec: Mapping[str, Any], index: Mapping[str, Any], root: Path
) -> ModelContract:
    """A model whose create form is mapped onto another face's model (``maps_onto``), as a
    gateway converts a request before the provider checks it.

    The form's request schemas are derived here from the target model's schemas and this
    face's ``request.fields`` and ``seconds``/``sizes`` tables, so no limit is written twice:
    the prompt's length, the passthrough fields and the image limits are the target's. The
    target's named rules stay with the target: the face maps an accepted form onto a target
    request and validates that too. The tables are checked against the target here.
    """
    where = f"{face_dir / 'index.json'} model {name!r}"
    target = spec["maps_onto"]
    base = load_contract(str(target["face"]), root).models.get(str(target["model"]))
    if base is None:
        raise ContractError(f"{where}: maps onto unknown model {target!r}")
    request = index["request"]
    fields = request["fields"]
    seconds, sizes = _rows(index["seconds"]), _rows(index["sizes"])
    t2v = base.request_schemas["text2video"]["properties"]
    duration = jsonschema.Draft202012Validator(t2v[fields["seconds"]["kling"]])
    for key, row in seconds.items():
        if not duration.is_valid(row["duration"]):
            raise ContractError(f"{where}: seconds {key!r} maps to a duration {base.name} refuses")
    output = base.output
    for key, row in sizes.items():
        frame = output["frame_sizes"][output["resolution_by_mode"][row["mode"]]].get(row["aspect_ratio"])
        if frame is None or list(frame) != list(row["frame"]) or key != f"{frame[0]}x{frame[1]}":
            raise ContractError(
                f"{where}: size {key!r} is not {base.name}'s frame for {row['mode']} {row['aspect_ratio']}"
            )
    prompt = {k: v for k, v in t2v[fields["prompt"]["kling"]].items() if k in ("maxLength",)}
    image_ref = {
        "anyOf": [
            {"type": "string", "minLength": 1, "x-content": "image"},
            {
                "type": "object",
                "properties": {
                    "image_url": {"type": "string", "minLength": 1, "x-content": "image"},
                    "file_id": {"type": "string"},
                },
                "minProperties": 1,
                "maxProperties": 1,
                "additionalProperties": False,
            },
        ],
        "description": fields["input_reference"]["description"],
    }
    schemas: dict[str, Mapping[str, Any]] = {}
    for mode, target_schema in base.request_schemas.items():
        props: dict[str, Any] = {
            "prompt": {"type": "string", "minLength": 1, **prompt, "description": fields["prompt"]["description"]},
            "model": {"const": name, "description": fields["model"]["description"]},
            "seconds": {"type": "string", "enum": list(seconds), "default": fields["seconds"]["default"]},
            "size": {"type": "string", "enum": list(sizes), "default": fields["size"]["default"]},
        }
        if mode == "image2video":
            props["input_reference"] = image_ref
        for extra in request.get("passthrough", ()):
            props[extra] = target_schema["properties"][extra]
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": f"Derived at load time from {target['face']}/{target['model']} and request.fields.",
            "title": f"{name} {mode} create request ({index['face']} form)",
            "type": "object",
            "required": [*request["required"], *(["input_reference"] if mode == "image2video" else [])],
            "properties": props,
        }
        _check_schema(schema, f"{where} {mode}")
        schemas[mode] = schema
    form = {
        "model": name,
        "maps_onto": dict(target),
        "fields": [
            {
                "name": field,
                "type": row["type"],
                "required": field in request["required"],
                **({"default": row["default"]} if "default" in row else {}),
            }
            for field, row in fields.items()
        ],
    }
    return ModelContract(
        name=name,
        form=form,
        request_schemas=schemas,
        rules=(),
        image_limits=base.image_limits,
        output=output,
        defaults={f: row["default"] for f, row in fields.items() if "default" in row},
        fast_validators={mode: compile_schema(schema) for mode, schema in schemas.items()},
        explainers={mode: jsonschema.Draft202012Validator(schema) for mode, schema in schemas.items()},
    )


@functools.cache
def load_lifecycle(root: Path | None = None) -> Mapping[str, Any]:
    """``lifecycle.json``: the internal statuses, transitions and failure reasons every face
    shares (read without loading any face)."""
    return _read_json((root or contracts_root()) / "lifecycle.json")  # type: ignore[no-any-return]


@functools.cache
def load_contract(face: str = "gateway", root: Path | None = None) -> Contract:
    """Load and check one face's contract (cached; the files are read once per process)."""
    root = root or contracts_root()
    try:
        return _load(face, root)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        # A file of the wrong shape (a list where an object belongs, a missing key): name it
        # rather than let a traceback from deep in the loader reach the user.
        raise ContractError(f"{root / face}: malformed contract data ({type(exc).__name__}: {exc})") from exc


def _load(face: str, root: Path) -> Contract:
    face_dir = root / face
    index = _read_json(face_dir / "index.json")
    lifecycle = _read_json(root / "lifecycle.json")
    catalogue = _read_json(face_dir / "errors.json")
    errors = {
        key: ErrorSpec(
            key=key,
            http_status=int(row["http_status"]),
            type=row.get("type", ""),
            code=row["code"],
            message=row["message"],
            retry_after=row.get("retry_after"),
        )
        for key, row in catalogue["errors"].items()
    }
    task_failures = {k: v for k, v in catalogue["task_failures"].items() if not k.startswith("$")}
    reasons = {k for k in lifecycle.get("failure_reasons", {}) if not k.startswith("$")}
    if reasons - set(task_failures):
        raise ContractError(
            f"{face_dir / 'errors.json'}: task_failures misses {sorted(reasons - set(task_failures))} "
            "(every failure reason of lifecycle.json needs a rendering)"
        )
    for name, key in catalogue.get("faults", {}).items():
        if not name.startswith("$") and key not in errors:
            raise ContractError(f"{face_dir / 'errors.json'} faults {name!r}: unknown error {key!r}")
    operations = {}
    for op_id, raw in index["operations"].items():
        for err in raw.get("errors", []):
            if err not in errors:
                raise ContractError(f"{face_dir / 'index.json'} operation {op_id!r}: unknown error {err!r}")
        operations[op_id] = Operation(
            id=op_id,
            method=raw["method"],
            path=raw["path"],
            summary=raw.get("summary", ""),
            auth=raw.get("auth", True),
            responses=raw.get("responses", {}),
            errors=tuple(raw.get("errors", [])),
            pattern=_template_regex(raw["path"]),
            spec=raw,
            verb=raw.get("verb", op_id),
            kind=raw.get("mode"),
            query={
                name: _resolve_local(schema, index, f"{face_dir / 'index.json'} operation {op_id!r}")
                for name, schema in (raw.get("query") or {}).items()
                if not name.startswith("$")
            },
            required_query=tuple(raw.get("required_query") or ()),
        )
    statuses = set(lifecycle["statuses"])
    projection = {k for k in index["status_projection"] if k != "source"}
    if projection != statuses:
        raise ContractError(
            f"{face_dir / 'index.json'}: status_projection covers {sorted(projection)}, "
            f"lifecycle has {sorted(statuses)}"
        )
    response_schemas: dict[str, Mapping[str, Any]] = {}
    resources = []
    for path in sorted((face_dir / "responses").glob("*.schema.json")):
        schema = _read_json(path)
        _check_schema(schema, str(path))
        rel = f"responses/{path.name}"
        response_schemas[rel] = schema
        resources.append((schema["$id"], Resource.from_contents(schema)))
    registry: Registry[Any] = Registry().with_resources(resources)
    models = {
        name: _mapped_model(face_dir, name, spec, index, root)
        if "maps_onto" in spec
        else _load_model(face_dir, name, spec, errors)
        for name, spec in index["models"].items()
    }
    return Contract(
        root=root,
        face=face,
        index=index,
        lifecycle=lifecycle,
        operations=operations,
        errors=errors,
        task_failures=task_failures,
        models=models,
        response_schemas=response_schemas,
        error_envelope=catalogue["envelope"],
        registry=registry,
        catalogue=catalogue,
    )
