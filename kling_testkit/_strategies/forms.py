"""Creates of a face whose form is mapped onto another face's model (``request.maps_onto``).

Such a face (the gateway's OpenAI-compatible ``/v1/videos``) checks a create twice: the form
against its own derived schema, then the target request it maps onto against the target
model's schema and named rules (``mockserver.contract.FormMapping`` says how fields map). So a
valid form is built by building a valid *target* request that only uses what the form can
carry (every other target field pinned absent, the form's required fields pinned present),
then mapping it back: a table field (``size``) takes a form value whose row agrees with the
target request, the file field (``input_reference``) takes the image, passthrough fields go
as they are. Invalid cases are the form's own schema keywords (the generic schema cases on
the form's schema), the target's named rules whose fields a form can carry (built on the
target, mapped back, the label's field renamed to the form's), and the form's own multipart
rules (``request_rules``: ``multipart``, ``multipart_parts``, ``multipart_part_size``,
``duplicate_field``, ``file_content_type``), read from the contract with its limits.

``data:`` URLs are not generated for the file field: the form unwraps them before the target's
image rules run (a decision of the face's contract, in prose), so the target's data-URI image
problems do not describe what such a form is refused for.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn

from kling_testkit._forms import OTHER_FILE_TYPES, FormView, as_file, text
from kling_testkit._strategies.common import ABSENT, as_strategy, choices, integers
from kling_testkit._strategies.images import (
    DATA_URI_PROBLEMS,
    IMAGE_PROBLEMS,
    ImagePayload,
    available_problems,
    images,
    problems_for_check,
)
from kling_testkit._strategies.requests import (
    Case,
    CreateRequest,
    Pins,
    Rejection,
    _build,
    _cases,
    _retrying,
    _Shape,
    _shape,
    create_operation,
)
from kling_testkit._strategies.schema import field_values
from kling_testkit._strategies.wire import BOUNDARY, JSON, MULTIPART, EncodedBody, encode_form, form_parts
from mockserver.contract import Contract, ModelContract, Rule


class _Form(FormView):
    """A form face's model, its mapping and the restricted target shapes, read once."""

    __slots__ = ("_restriction", "_targets", "form_shape")

    def __init__(self, contract: Contract, model: ModelContract) -> None:
        super().__init__(contract, model)
        self.form_shape = _shape(contract, model)
        self._targets: dict[str, _Shape] = {}
        self._restriction = self._restrict()

    def target_shape(self, variant: str = "") -> _Shape:
        """The target model's shape with what a form cannot send pinned absent and what it must
        send (its required text fields) pinned to the form's own values."""
        found = self._targets.get(variant)
        if found is None:
            found = self._targets[variant] = _shape(self.target_contract, self.target, variant, self._restriction)
        return found

    def _restrict(self) -> tuple[tuple[str, Any], ...]:
        union: set[str] = set()
        for schema in self.target.request_schemas.values():
            union |= set(schema.get("properties", {}))
        out: dict[str, Any] = dict.fromkeys(sorted(union - self.expressible), ABSENT)
        form_schemas = list(self.model.request_schemas.values())
        form_props: dict[str, Any] = {}
        for schema in form_schemas:
            form_props.update(schema.get("properties", {}))
        always = set.intersection(*(set(schema.get("required", ())) for schema in form_schemas))
        model_field = self.contract.request.model_field
        for name in sorted(always):
            targets = self.mapping.fields.get(name, ())
            if name == model_field or name in self.mapping.tables or len(targets) != 1:
                continue
            out[targets[0]] = field_values(form_props[name], f"properties/{name}", st.nothing())
        return tuple(out.items())


@functools.cache
def form_of(contract: Contract, model: ModelContract) -> _Form:
    return _Form(contract, model)


def to_form(
    draw: DrawFn, form: _Form, kind: str, body: Mapping[str, Any], content_type: str, chosen: Mapping[str, str]
) -> CreateRequest | None:
    """The form that maps onto the target request ``body`` (None when none does), drawing
    among the forms that do."""
    found = form.fields_of(kind, body, content_type, chosen, lambda _purpose, options: draw(choices(tuple(options))))
    if found is None:
        return None
    out, files = found
    op = create_operation(form.contract, kind)
    return CreateRequest(op.id, op.method, op.path, kind, form.model.name, out, content_type, files)


def _content_type(draw: DrawFn, contract: Contract, wanted: Any) -> str:
    allowed = contract.request.content_types
    found = str(draw(choices(allowed) if wanted is None else as_strategy(wanted)))
    if found not in allowed:
        raise InvalidArgument(f"face {contract.face!r} takes create bodies as {list(allowed)} only, not {found!r}")
    return found


def _target_pins(draw: DrawFn, form: _Form, pins: Pins, kind: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """The caller's pins (form field names) as pins of the target request, and the table
    values the caller chose."""
    mapping = form.mapping
    out: dict[str, Any] = {}
    chosen: dict[str, str] = {}
    known = sorted({*mapping.fields, *mapping.passthrough})
    for name, given in pins.fields.items():
        if name not in mapping.fields and name not in mapping.passthrough:
            raise InvalidArgument(f"the {form.contract.face} form has no field {name!r}; its fields are {known}")
        value = draw(as_strategy(given))
        value = value.value if isinstance(value, ImagePayload) else value
        if name == form.contract.request.model_field:
            if value is ABSENT or value != form.model.name:
                raise InvalidArgument(f"{name}={value!r} does not name {form.model.name} (pass model= to choose one)")
            continue
        if name in mapping.tables:
            table = mapping.tables[name]
            if value is ABSENT:
                value = mapping.defaults[name]
            if value not in table:
                raise InvalidArgument(f"{name}={value!r} is not one of the form's values {sorted(table)}")
            chosen[name] = value
            for target_field, target_value in table[value].items():
                if kind is None or not form.ignored(target_field, kind):
                    out[target_field] = target_value
            continue
        targets = mapping.fields.get(name, (name,))
        out[targets[0]] = value
    if pins.prompts is not None:
        out[mapping.fields.get("prompt", ("prompt",))[0]] = pins.prompts
    return out, chosen


def valid_form(draw: DrawFn, contract: Contract, model: ModelContract, pins: Pins, content_types: Any) -> CreateRequest:
    """A create of a form face the fake accepts (see the module's description)."""
    if pins.count is not None:
        raise InvalidArgument(f"the {contract.face} form has no shots: shot_counts does not apply")
    form = form_of(contract, model)
    content_type = _content_type(draw, contract, content_types)
    kind = None if pins.kind is None else str(draw(as_strategy(pins.kind)))
    file_field = form.mapping.file_field
    if content_type == MULTIPART and kind is None and file_field not in pins.fields:
        kind = str(draw(choices(tuple(model.request_schemas))))
    target_pins, chosen = _target_pins(draw, form, pins, kind)
    if (
        content_type == MULTIPART
        and file_field is not None
        and file_field not in pins.fields
        and kind is not None
        and file_field in model.request_schemas[kind].get("required", ())
    ):
        # a file part carries raw image bytes: base64 images only (never a URL)
        image = form.mapping.fields[file_field][0]
        target_pins[image] = images(form.target.name, face=form.target_contract.face, encodings="base64")
    variant = "clean" if pins.clean else pins.variant
    shape = form.target_shape(variant)
    for _ in range(4):
        built_kind, body = _build(draw, shape, replace(pins, fields=target_pins, kind=kind, count=None, prompts=None))
        found = to_form(draw, form, built_kind, body, content_type, chosen)
        if found is not None:
            return found
    raise InvalidArgument(f"the narrowing arguments leave no {contract.face} form that maps onto a valid request")


# -- invalid forms ----------------------------------------------------------------------------


def _label(form: _Form, rule: str, param: str | None, error: str, kind: str, case: str | None = None) -> Rejection:
    spec = form.contract.errors[error]
    op = create_operation(form.contract, kind)
    return Rejection(
        case or rule, rule, param, spec.http_status, spec.code, error, False, kind, form.contract.face, op.id, op.path
    )


def _sendable(content_types: Sequence[str], body: Mapping[str, Any], image: str) -> tuple[str, ...]:
    """The media types a target request's form can go as: a form only with a base64 image."""
    return tuple(t for t in content_types if t != MULTIPART or image not in body or as_file(body[image]) is not None)


def _target_rule_case(form: _Form, rule: Rule, target_case: Case) -> Case:
    image = form.mapping.fields.get(form.mapping.file_field or "", ("",))[0]

    def build_as(draw: DrawFn, kind: str, content_types: tuple[str, ...]) -> tuple[Any, Rejection]:
        def once() -> tuple[Any, Rejection] | None:
            body, label = target_case.build(draw, kind)
            usable = _sendable(content_types, body, image)
            if not usable:
                return None
            created = to_form(draw, form, str(label.kind), body, draw(choices(usable)), {})
            if created is None:
                return None
            sent = created.encoded() if created.content_type == MULTIPART else created.body
            return sent, _label(form, rule.id, form.form_param(rule.param), rule.error, created.kind)

        return _retrying(rule.id, once)

    return Case(
        rule.id, target_case.kinds, lambda d, k: build_as(d, k, (JSON,)), content_types=_types(form), build_as=build_as
    )


def _image_rule_case(form: _Form, rule: Rule) -> Case | None:
    """A broken image as the file field: in JSON every problem of the check but the data-URI
    ones; as a file part, the problems of the image's content (its bytes)."""
    limits = form.target.image_limits
    labels = tuple(
        label
        for label in problems_for_check(str(rule.spec.get("check")))
        if label in available_problems(limits) and label not in DATA_URI_PROBLEMS
    )
    if not labels:
        return None
    as_file = tuple(label for label in labels if IMAGE_PROBLEMS[label] != "encoding")
    kinds = tuple(k for k in form.target.request_schemas if rule.param in form.target.request_schemas[k]["properties"])
    target = form.target_shape()

    def build_as(draw: DrawFn, kind: str, content_types: tuple[str, ...]) -> tuple[Any, Rejection]:
        usable = tuple(t for t in content_types if t != MULTIPART or as_file)
        if not usable:
            raise InvalidArgument(f"{rule.id!r} cannot be broken by a file part")
        content_type = draw(choices(usable))
        label = draw(choices(as_file if content_type == MULTIPART else labels))
        encodings = "base64" if content_type == MULTIPART else None
        bad = images(form.target.name, face=form.target_contract.face, problems=label, encodings=encodings)

        def once() -> tuple[Any, Rejection] | None:
            built_kind, body = _build(draw, target, Pins(fields={rule.param: bad}, kind=kind))
            created = to_form(draw, form, built_kind, body, content_type, {})
            if created is None:
                return None
            sent = created.encoded() if created.content_type == MULTIPART else created.body
            return sent, _label(form, rule.id, form.form_param(rule.param), rule.error, built_kind)

        return _retrying(rule.id, once)

    return Case(rule.id, kinds, lambda d, k: build_as(d, k, (JSON,)), content_types=_types(form), build_as=build_as)


def _types(form: _Form) -> tuple[str, ...]:
    return tuple(t for t in form.contract.request.content_types if t in (JSON, MULTIPART))


def _valid_form_parts(
    draw: DrawFn, form: _Form, kind: str
) -> tuple[CreateRequest, list[tuple[str, str]], list[tuple[str, str, bytes, str]]]:
    create = valid_form(draw, form.contract, form.model, Pins(kind=kind), MULTIPART)
    fields = [(k, text(v)) for k, v in create.body.items()]
    files = [(name, *part) for name, part in create.files.items()]
    return create, fields, files


def _multipart_cases(form: _Form) -> dict[str, Case]:
    """The form's own rules (``request_rules``), each broken in a body otherwise valid."""
    if MULTIPART not in form.contract.request.content_types:
        return {}
    rules = form.contract.request_rules
    limits = form.mapping.multipart
    kinds = tuple(form.model.request_schemas)
    file_field = form.mapping.file_field
    with_file = tuple(k for k in kinds if file_field in form.model.request_schemas[k].get("properties", {}))
    out: dict[str, Case] = {}

    def add(key: str, case_kinds: tuple[str, ...], make: Any) -> None:
        found = rules.get(key)
        if found is None or found.error is None or not case_kinds:
            return
        spec = found

        def build(draw: DrawFn, kind: str) -> tuple[Any, Rejection]:
            create, fields, files = _valid_form_parts(draw, form, kind)
            body, param = make(draw, fields, files)
            return body, _label(form, spec.id, param, str(spec.error), create.kind)

        out[spec.id] = Case(spec.id, case_kinds, build, content_types=(MULTIPART,))

    def malformed(draw: DrawFn, fields: list[tuple[str, str]], files: list[Any]) -> tuple[EncodedBody, None]:
        encoded = encode_form(fields, files)
        how = draw(st.sampled_from(["no_boundary", "cut_short", "no_name"]))
        if how == "no_boundary":
            return EncodedBody(MULTIPART, encoded.data), None
        if how == "cut_short":
            closing = len(f"--{BOUNDARY}--\r\n")
            return EncodedBody(
                encoded.content_type, encoded.data[: draw(integers(0, len(encoded.data) - closing - 1))]
            ), None
        nameless = f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n".encode()
        parts = form_parts(fields, files)
        at = draw(integers(0, len(parts)))
        data = b"".join([*parts[:at], nameless, *parts[at:]]) + f"--{BOUNDARY}--\r\n".encode()
        return EncodedBody(encoded.content_type, data), None

    def too_many(draw: DrawFn, fields: list[tuple[str, str]], files: list[Any]) -> tuple[EncodedBody, None]:
        extra = limits["max_parts"] + 1 - len(fields) - len(files) + draw(integers(0, 2))
        padding = [(f"x_extra_{i}", "x") for i in range(max(extra, 0))]
        return encode_form([*fields, *padding], files), None

    def too_large(draw: DrawFn, fields: list[tuple[str, str]], files: list[Any]) -> tuple[EncodedBody, str]:
        as_file = draw(st.booleans())
        if files and as_file:
            name, filename, _data, media_type = files[0]
            big = b"\0" * (limits["max_file_bytes"] + draw(integers(1, 16)))
            return encode_form(fields, [(name, filename, big, media_type), *files[1:]]), name
        at = draw(integers(0, len(fields) - 1))
        name = fields[at][0]
        text = "a" * (limits["max_field_bytes"] + draw(integers(1, 16)))
        return encode_form([*fields[:at], (name, text), *fields[at + 1 :]], files), name

    def twice(draw: DrawFn, fields: list[tuple[str, str]], files: list[Any]) -> tuple[EncodedBody, str]:
        at = draw(integers(0, len(fields) - 1))
        name, value = fields[at]
        again = (name, draw(st.sampled_from([value, value + "!"])))
        later = draw(integers(at + 1, len(fields)))
        return encode_form([*fields[:later], again, *fields[later:]], files), name

    def wrong_type(draw: DrawFn, fields: list[tuple[str, str]], files: list[Any]) -> tuple[EncodedBody, str]:
        refused = tuple(t for t in OTHER_FILE_TYPES if t not in form.mapping.file_types)
        name, filename, data, _declared = files[0]
        return encode_form(fields, [(name, filename, data, draw(choices(refused)))]), name

    add("multipart", kinds, malformed)
    add("multipart_parts", kinds, too_many)
    add("multipart_part_size", kinds, too_large)
    add("duplicate_field", kinds, twice)
    add("file_content_type", with_file, wrong_type)
    return out


@functools.cache
def _form_cases(form: _Form) -> Mapping[str, Case]:
    out: dict[str, Case] = dict(_cases(form.form_shape))
    target_cases = _cases(form.target_shape())
    for rule in form.target.rules:
        if rule.warning or not form.carried(rule):
            continue
        if rule.kind == "image":
            found = _image_rule_case(form, rule)
            if found is not None:
                out[rule.id] = found
        elif rule.id in target_cases:
            out[rule.id] = _target_rule_case(form, rule, target_cases[rule.id])
    out.update(_multipart_cases(form))
    return out


def form_cases(contract: Contract, model: ModelContract) -> Mapping[str, Case]:
    """Every way :func:`~kling_testkit.strategies.invalid_requests` can break a form of
    ``model`` on ``contract``'s face, by case id."""
    return _form_cases(form_of(contract, model))
