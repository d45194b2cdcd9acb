"""The mapping of a form face's create back from the target request it maps onto, shared by
the strategies (which draw among the choices) and ``verify`` (which takes the first).

A face whose create form maps onto another face's model (``request.maps_onto``: the gateway's
OpenAI-compatible ``/v1/videos`` onto Kling's kling-v2-6) checks a create twice: the form against
its own derived schema, then the target request it maps onto against the target model's schema
and named rules. So a valid form is built as a valid *target* request that uses only what the form
can carry, mapped back: a table field (``size``) takes a form value whose row agrees with the
target request, the file field (``input_reference``) takes the image, passthrough fields go as
they are. Everything here reads ``Contract.form_mapping``; nothing names a face or a field.

No Hypothesis here: importing ``kling_testkit.verify`` (the CLI) stays free of it.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mockserver.contract import Contract, FormMapping, ModelContract, Rule, load_contract

#: ``choose(purpose, options)`` picks one of ``options``; ``purpose`` says what for
#: (``"table:size"``, ``"keep:size"`` (whether to send a value equal to the default),
#: ``"filename"``, ``"file_type"``), so a deterministic chooser can prefer a sensible one
Chooser = Callable[[str, Sequence[Any]], Any]
#: a file part: (file name, bytes, declared media type)
FilePart = tuple[str, bytes, str]

MULTIPART = "multipart/form-data"
FILENAMES = ("frame.png", "frame.jpg", "image", "upload")
#: media types a file part may declare that an image field may refuse (those the contract
#: accepts are left out where used)
OTHER_FILE_TYPES = ("image/gif", "image/webp", "image/bmp", "text/plain", "application/pdf", "video/mp4")


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1`` (Python says it is), ``1`` is ``1.0``.

    >>> json_equal(True, 1), json_equal(1, 1.0)
    (False, True)
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) != isinstance(b, (int, float)):
        return False
    return bool(a == b)


def top_fields(schema: Mapping[str, Any]) -> set[str]:
    """The top-level member names a condition reads.

    >>> sorted(top_fields({"required": ["sound"], "properties": {"mode": {"const": "pro"}}}))
    ['mode', 'sound']
    """
    found = set(schema.get("required", ())) | set(schema.get("properties", {}))
    if isinstance(schema.get("not"), Mapping):
        found |= top_fields(schema["not"])
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, ()):
            found |= top_fields(branch)
    return found


def loose_equal(a: Any, b: Any) -> bool:
    """Equal as JSON, or as the text a form sends (``5`` and ``"5"``)."""
    return json_equal(a, b) or (not isinstance(a, bool) and not isinstance(b, bool) and str(a) == str(b))


def as_file(value: Any) -> bytes | None:
    """The bytes of a raw base64 image (None for a URL or anything that is not base64)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def text(value: Any) -> str:
    """A form field's text: strings as they are, numbers as a client prints them."""
    return value if isinstance(value, str) else str(value)


class FormView:
    """A form face's model with its mapping and the target model it maps onto, read once."""

    __slots__ = ("contract", "expressible", "mapping", "model", "target", "target_contract")

    def __init__(self, contract: Contract, model: ModelContract) -> None:
        mapping = contract.form_mapping
        assert mapping is not None
        self.contract = contract
        self.model = model
        self.mapping: FormMapping = mapping
        target_face, target_model = mapping.target
        self.target_contract = load_contract(target_face, contract.root)
        self.target = self.target_contract.models[target_model]
        #: target fields a form can carry
        self.expressible = frozenset(
            {name for names in mapping.fields.values() for name in names} | set(mapping.passthrough)
        )

    @property
    def image_field(self) -> str | None:
        """The target field the file field sets (``image``)."""
        file_field = self.mapping.file_field
        return None if file_field is None else self.mapping.fields[file_field][0]

    def ignored(self, field: str, kind: str) -> bool:
        """Whether the target ignores ``field`` in ``kind`` requests (a warning rule says so):
        the form then need not agree with it."""
        return any(
            rule.warning and rule.applies_to(kind) and rule.spec.get("when") == {"required": [field]}
            for rule in self.target.rules
        )

    def rows_for(self, name: str, body: Mapping[str, Any], kind: str) -> list[str]:
        """The values of table field ``name`` whose row agrees with the target request ``body``
        (absent fields at the target's defaults; fields the target ignores in ``kind`` not compared)."""
        view = {**self.target.defaults, **body}
        return [
            value
            for value, row in self.mapping.tables[name].items()
            if all(self.ignored(k, kind) or loose_equal(view.get(k), v) for k, v in row.items())
        ]

    def form_param(self, param: str) -> str:
        """A target field path renamed to the form field it comes from (``image`` ->
        ``input_reference``, ``mode`` -> ``size``)."""
        cut = min((i for i in (param.find("."), param.find("[")) if i >= 0), default=len(param))
        return self.mapping.form_name(param[:cut]) + param[cut:]

    def carried(self, rule: Rule) -> bool:
        """Whether a form can break ``rule`` alone: every field it reads is one a form carries."""
        if rule.kind == "requires":
            return top_fields(rule.spec["when"]) | top_fields(rule.spec["then"]) <= self.expressible
        if rule.kind == "image":
            return rule.param in self.expressible
        return False

    def fields_of(
        self,
        kind: str,
        body: Mapping[str, Any],
        content_type: str,
        chosen: Mapping[str, str],
        choose: Chooser,
    ) -> tuple[dict[str, Any], dict[str, FilePart]] | None:
        """The form (text fields, file parts) that maps onto the target request ``body`` of
        ``kind``, sent as ``content_type`` (None when none does: no table row agrees, or a
        form's file part would need an image that is not base64). ``chosen`` fixes table values.
        """
        mapping = self.mapping
        out: dict[str, Any] = {}
        files: dict[str, FilePart] = {}
        for name, targets in mapping.fields.items():
            if name in mapping.tables:
                rows = self.rows_for(name, body, kind)
                if name in chosen:
                    if chosen[name] not in rows:
                        return None
                    out[name] = chosen[name]
                    continue
                if not rows:
                    return None
                value = choose(f"table:{name}", rows)
                # a form may leave out a field at its default (the face fills it in)
                if value != mapping.defaults.get(name) or choose(f"keep:{name}", (False, True)):
                    out[name] = value
            elif name == mapping.file_field:
                if targets[0] not in body:
                    continue
                if content_type == MULTIPART:
                    raw = as_file(body[targets[0]])
                    if raw is None:
                        return None
                    files[name] = (choose("filename", FILENAMES), raw, choose("file_type", mapping.file_types))
                else:
                    out[name] = body[targets[0]]
            elif name == self.contract.request.model_field:
                out[name] = self.model.name
            elif targets[0] in body:
                out[name] = body[targets[0]]
        for name in mapping.passthrough:
            if name in body:
                out[name] = body[name]
        if content_type == MULTIPART:
            out = {k: text(v) for k, v in out.items()}
        return out, files

    def __repr__(self) -> str:
        return f"<form of {self.model.name} on {self.contract.face}>"


@functools.cache
def form_view(contract: Contract, model: ModelContract) -> FormView:
    """The :class:`FormView` of ``model`` on ``contract``'s face (which must map its form)."""
    return FormView(contract, model)
