"""The gateway's OpenAI-compatible video route: ``/v1/videos`` as the OpenAI SDK speaks it.

new-api (the gateway software ModelStream resembles) serves OpenAI's Videos API shape for its
video models, Kling included. This face answers that route from the same engine: a create is a
``multipart/form-data`` form (what the SDK sends) or JSON, mapped onto Kling's own kling-v2-6
request and checked by that contract (``contracts/openai`` says how: ``request.fields``, the
``seconds`` and ``sizes`` tables); answers are OpenAI's ``video`` object with statuses
``queued``/``in_progress``/``completed``/``failed``; the MP4 comes from
``/v1/videos/{id}/content``. Keys, account, task ids and error object are the gateway's.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from mockserver.contract import Operation, load_contract
from mockserver.engine import CreateRefused, Engine, Status, TaskNotFound, TaskView
from mockserver.engine.core import video_spec
from mockserver.engine.journal import ContractWarning
from mockserver.faces.base import FaceSettings, Handled, Handler, Refused, register_face
from mockserver.faces.common import ByRequest, GatewayKeysFace, serve_video
from mockserver.http import ApiRequest, ApiResponse
from mockserver.multipart import FormLimits, FormProblem, Part, parse_form
from mockserver.validation import Accepted, Violation, parse_json_body, validate_create, validate_query

#: the gateway's one user: every key of the gateway acts for it (new-api scopes tasks by user)
ACCOUNT = ""
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.ASCII)
_IMAGE_MIMES = {"image/jpeg", "image/jpg", "image/pjpeg", "image/png"}


@register_face("openai")
class OpenAIFace(GatewayKeysFace):
    """Answer ``/v1/videos`` (create, list, retrieve, content) from an :class:`Engine`.

    ``settings.keys``: the gateway's keys (default ``sk-test``; ``["*"]`` accepts any);
    ``settings.strict``: refuse unknown form fields instead of dropping them with a warning.
    """

    name: ClassVar[str] = "openai"

    def __init__(self, settings: FaceSettings | None = None) -> None:
        super().__init__(settings)
        contract = self.contract
        index = contract.index
        request = index["request"]
        target = request["maps_onto"]
        #: the contract the mapped request is checked by (Kling's own API)
        self.target = load_contract(str(target["face"]), contract.root)
        self._fields: Mapping[str, Any] = request["fields"]
        self._passthrough = tuple(request.get("passthrough", ()))
        target_fields = self.target.models[str(target["model"])].request_schemas["text2video"]["properties"]
        #: passthrough fields a form sends as text but Kling takes as numbers
        self._numeric = frozenset(
            name for name in self._passthrough if target_fields[name].get("type") in ("number", "integer")
        )
        self._seconds = {k: v for k, v in index["seconds"].items() if not k.startswith("$")}
        self._sizes = {k: v for k, v in index["sizes"].items() if not k.startswith("$") and k != "decisions"}
        self._file_types = frozenset(self._fields["input_reference"]["content_types"])
        self._file_field = request["mode_field"]
        # the mapping's inverse: a refusal of the Kling request names the form field
        self._form_name: dict[str, str] = {name: name for name in self._passthrough}
        for form_name, row in self._fields.items():
            kling = row["kling"]
            for name in [kling] if isinstance(kling, str) else kling:
                self._form_name[name] = form_name
        self._limits = FormLimits(**index["limits"]["multipart"])
        video = index["video"]
        self._poll_header = (str(video["poll_header"]), str(video["poll_after_ms"]))
        self._ops = {op.verb: op for op in contract.operations.values()}
        self._prompt = ByRequest(_prompt_of)

    def attach(self, engine: Engine) -> None:
        """The video object carries nothing drawn per answer."""

    def handlers(self) -> Mapping[str, Handler]:
        out: dict[str, Handler] = {}
        for op in self.contract.operations.values():
            if op.verb == "task.create":
                out[op.id] = lambda engine, request, params, account: self.create(engine, request)
            elif op.verb == "task.get":
                out[op.id] = lambda engine, request, params, account: self.get(engine, request, params["task_id"])
            elif op.verb == "task.list":
                out[op.id] = lambda engine, request, params, account: self.list_videos(engine, request)
            elif op.verb == "media.get":
                out[op.id] = lambda engine, request, params, account: self.content(engine, request, params["task_id"])
            else:
                raise ValueError(f"openai face: no handler for operation {op.id!r} (verb {op.verb!r})")
        return out

    # -- errors ------------------------------------------------------------------------------

    def _refused(self, op: str, found: Violation, request_json: Any = None) -> Handled:
        return Handled(self.violation(found), op, request_json=request_json, rule=found.rule, param=found.param)

    def callback_body(self, task: TaskView, base_url: str) -> Any:  # noqa: ARG002 - Face protocol
        """The route sends no callbacks; its video object is what one would carry."""
        return self.project(task)

    # -- auth --------------------------------------------------------------------------------

    def authenticate(self, request: ApiRequest, engine: Engine | None = None) -> str | Refused:  # noqa: ARG002 - Face protocol
        """The gateway's one account, or the 401 that refuses the key (the gateway's rules)."""
        return self._bearer.check(request, self.error, ACCOUNT)

    # -- create ------------------------------------------------------------------------------

    def create(self, engine: Engine, request: ApiRequest) -> Handled:
        op = self._ops["task.create"].id
        form = self._read_body(request)
        if isinstance(form, Violation):
            return self._refused(op, form)
        both = self._checked(form)
        if isinstance(both, Violation):
            return self._refused(op, both, form)
        accepted, checked = both
        warnings = accepted.warnings
        if checked.warnings:  # named by the form's fields
            renamed = tuple(ContractWarning(w.rule, self._param(w.param), w.message) for w in checked.warnings)
            warnings = (*warnings, *renamed)
        size = self._sizes[accepted.body["size"]]
        width, height = size["frame"]
        video = video_spec(
            int(self._seconds[accepted.body["seconds"]]["duration"]),
            int(width),
            int(height),
            int(checked.model.output["fps"]),
            checked.body.get("sound") == "on",
        )
        try:
            task = engine.create_task(
                model=accepted.model.name,
                kind=accepted.mode,
                request=accepted.body,
                video=video,
                id_format=self.contract.id_format,
                face=self.name,
                account=ACCOUNT,
            )
        except CreateRefused as exc:
            key = self.contract.resolve_error(exc.reason) or "task_failed"
            return Handled(self.error(key, detail=exc.reason), op, request_json=form, fault=f"outcome:{exc.reason}")
        except OverflowError as exc:
            return Handled(self.error("upstream_unavailable", detail=str(exc)), op, request_json=form)
        return Handled(ApiResponse.json(200, self.project(task)), op, task.id, form, warnings)

    def judge_create(self, body: Any, *, kind: str | None = None) -> Violation | None:  # noqa: ARG002 - Face protocol
        """The form's own schema, then kling-v2-6's schema and rules on the request it maps
        onto, refusals named by the form's fields (the body picks the kind).

        >>> face = OpenAIFace()
        >>> form = {"model": "kling-v2-6", "prompt": "a fox", "seconds": "5", "size": "720x1280", "sound": "on"}
        >>> face.judge_create(form).rule, face.judge_create({**form, "size": "1080x1920"})
        ('sound.requires_pro', None)
        """
        both = self._checked(body)
        return both if isinstance(both, Violation) else None

    def _checked(self, form: Any) -> tuple[Accepted, Accepted] | Violation:
        """The accepted form and the kling-v2-6 request it maps onto, or the first refusal."""
        accepted = validate_create(self.contract, form, strict=self.strict)
        if isinstance(accepted, Violation):
            return accepted
        mapped = self._to_kling(accepted)
        if isinstance(mapped, Violation):
            return mapped
        checked = validate_create(self.target, mapped, mode=accepted.mode)
        if isinstance(checked, Violation):
            return self._renamed(checked)
        return accepted, checked

    def _read_body(self, request: ApiRequest) -> dict[str, Any] | Violation:
        """The create's fields as a dict (a form's file as base64), or the refusal."""
        content_type = request.header("content-type")
        media_type = (content_type or "").split(";")[0].strip().lower()
        if media_type == "multipart/form-data":
            return self._read_form(request.body, content_type)
        body = parse_json_body(self.contract, content_type, request.body)
        if isinstance(body, Violation):
            return body
        if not isinstance(body, dict):
            detail = f"expected a JSON object, got {type(body).__name__}"
            return Violation("invalid_json", None, self.contract.request_rule("body_object"), detail)
        return body

    def _read_form(self, body: bytes, content_type: str | None) -> dict[str, Any] | Violation:
        parts = parse_form(body, content_type, self._limits)
        if isinstance(parts, FormProblem):
            return self._form_problem(parts)
        out: dict[str, Any] = {}
        for part in parts:
            if part.name in out:
                rule = self.contract.request_rule("duplicate_field")
                return Violation("invalid_parameter", part.name[:100], rule, "is sent more than once")
            value = self._part_value(part)
            if isinstance(value, Violation):
                return value
            out[part.name] = value
        return out

    def _form_problem(self, problem: FormProblem) -> Violation:
        if problem.kind == "too_many_parts":
            return Violation("too_many_parts", None, self.contract.request_rule("multipart_parts"), problem.detail)
        if problem.kind == "part_too_large":
            rule = self.contract.request_rule("multipart_part_size")
            return Violation("part_too_large", problem.param, rule, problem.detail)
        return Violation("invalid_multipart", None, self.contract.request_rule("multipart"), problem.detail)

    def _part_value(self, part: Part) -> Any:
        if part.filename is not None:  # a file (Part.is_file, without a property call per field)
            if part.name != self._file_field:
                rule = self.contract.request_rule("multipart")
                return Violation("invalid_parameter", part.name[:100], rule, "must be a text field, not a file")
            declared = (part.content_type or "application/octet-stream").split(";")[0].strip().lower()
            if declared not in self._file_types:
                rule = self.contract.request_rule("file_content_type")
                detail = f"must be a JPEG or PNG image file, got {declared[:60]}"
                return Violation("invalid_parameter", part.name[:100], rule, detail)
            return base64.b64encode(part.data).decode("ascii")
        try:
            text = part.data.decode("utf-8")
        except UnicodeDecodeError:
            rule = self.contract.request_rule("multipart")
            return Violation("invalid_parameter", part.name[:100], rule, "is not UTF-8 text")
        if part.name in self._numeric:
            return _number_or_text(text)
        return text

    def _to_kling(self, accepted: Accepted) -> dict[str, Any] | Violation:
        """The kling-v2-6 request of Kling's own API that the accepted form maps onto."""
        form = accepted.body
        fields = self._fields
        size = self._sizes[form["size"]]
        out: dict[str, Any] = {
            fields["model"]["kling"]: form["model"],
            fields["prompt"]["kling"]: form["prompt"],
            fields["seconds"]["kling"]: self._seconds[form["seconds"]]["duration"],
            "mode": size["mode"],
        }
        if accepted.mode == "image2video":
            image = self._image(form[self._file_field])
            if isinstance(image, Violation):
                return image
            out[fields["input_reference"]["kling"]] = image
        else:
            out["aspect_ratio"] = size["aspect_ratio"]
        for name in self._passthrough:
            if name in form:
                out[name] = form[name]
        return out

    def _image(self, value: Any) -> str | Violation:
        """``input_reference`` as Kling's ``image``: a URL or raw base64."""
        if isinstance(value, Mapping):
            if "file_id" in value:
                rule = self.contract.request_rule("file_id")
                return Violation("invalid_parameter", f"{self._file_field}.file_id", rule, "the fake has no Files API")
            value = value["image_url"]
        text = str(value)
        if text[:5].lower() == "data:":
            found = _DATA_URL.match(text)
            mime = (found.group("mime") or "").lower() if found else ""
            if found is None or mime not in _IMAGE_MIMES:
                detail = f"a data URL must be data:image/jpeg or image/png;base64,..., got {text[:40]!r}"
                return Violation("rule_violation", self._file_field, "image.format", detail)
            return text[found.end() :]
        return text

    def _param(self, param: str | None) -> str | None:
        """A Kling field path renamed to the form field it came from."""
        if param is None:
            return None
        head, sep, rest = _split(param)
        return self._form_name.get(head, head) + sep + rest

    def _renamed(self, found: Violation) -> Violation:
        detail = found.detail
        if "mode=" in detail:  # the form has no mode: say which sizes give it
            by_mode: dict[str, list[str]] = {}
            for size, row in self._sizes.items():
                by_mode.setdefault(str(row["mode"]), []).append(size)
            detail += "; size picks the mode (" + "; ".join(f"{m}: {', '.join(s)}" for m, s in by_mode.items()) + ")"
        return Violation(found.error, self._param(found.param), found.rule, detail)

    # -- read --------------------------------------------------------------------------------

    def _find(self, engine: Engine, task_id: str, *, poll: bool) -> TaskView | None:
        try:
            if poll:
                return engine.poll_task(task_id, account=ACCOUNT)
            task = engine.task(task_id)
        except TaskNotFound:
            return None
        return task if task.account == ACCOUNT else None

    def _not_found(self, op: Operation, task_id: str) -> Handled:
        response = self.error("task_not_exist", param="task_id", task_id=repr(task_id[:80]))
        return Handled(response, op.id, rule=self.contract.request_rule("task_exists"), param="task_id")

    def get(self, engine: Engine, request: ApiRequest, task_id: str) -> Handled:  # noqa: ARG002 - handler shape
        op = self._ops["task.get"]
        task = self._find(engine, task_id, poll=True)
        if task is None:
            return self._not_found(op, task_id)
        headers = () if task.status.terminal else (self._poll_header,)
        return Handled(ApiResponse.json(200, self.project(task), headers), op.id, task.id)

    def list_videos(self, engine: Engine, request: ApiRequest) -> Handled:
        op = self._ops["task.list"]
        query = validate_query(op, request.query)
        if isinstance(query, Violation):
            return self._refused(op.id, query)
        tasks = engine.list_tasks(account=ACCOUNT)
        if query.get("order", op.query["order"]["default"]) == "asc":
            tasks.reverse()
        start = 0
        after = query.get("after")
        if after is not None:
            ids = [t.id for t in tasks]
            if after not in ids:
                return self._refused(op.id, Violation("invalid_parameter", "after", "query:after", "names no video"))
            start = ids.index(after) + 1
        limit = int(query.get("limit", op.query["limit"]["default"]))
        page = tasks[start : start + limit]
        body = {
            "object": "list",
            "data": [self.project(t) for t in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": start + limit < len(tasks),
        }
        return Handled(ApiResponse.json(200, body), op.id)

    def content(self, engine: Engine, request: ApiRequest, task_id: str) -> Handled:
        op = self._ops["media.get"]
        query = validate_query(op, request.query)
        if isinstance(query, Violation):
            return self._refused(op.id, query)
        task = self._find(engine, task_id, poll=False)
        if task is None:
            return self._not_found(op, task_id)
        if task.status is not Status.SUCCEEDED:
            response = self.error("video_not_ready", param="task_id", detail=self.status_names[task.status._value_])
            rule = self.contract.request_rule("video_ready")
            return Handled(response, op.id, task.id, rule=rule, param="task_id")
        return serve_video(engine, request, task, op.id, self.error, ttl=self.media_ttl, expired_detail=repr(task.id))

    # -- projection --------------------------------------------------------------------------

    def project(self, task: TaskView) -> dict[str, Any]:
        """A task as OpenAI's ``video`` object."""
        done = task.status is Status.SUCCEEDED
        finished = task.finished_at
        error = None
        if task.status is Status.FAILED:
            reason = self._failures[task.outcome.reason or "generation_failed"]
            error = {"code": reason["code"], "message": task.outcome.message or reason["message"]}
        prompt = self._prompt(task)
        video = task.video
        return {
            "id": task.id,
            "object": "video",
            "model": task.model,
            "status": self.status_names[task.status._value_],
            "progress": task.progress,
            "created_at": int(task.created_at),
            "completed_at": None if finished is None else int(finished),
            "expires_at": int(finished + self.media_ttl) if done and finished is not None else None,
            "prompt": prompt,
            "seconds": str(video.duration),
            "size": f"{video.width}x{video.height}",
            "remixed_from_video_id": None,
            "error": error,
        }


def _prompt_of(task: TaskView) -> str | None:
    """The prompt of a task's stored request (a video object shows it)."""
    prompt = task.request.get("prompt")
    return prompt if isinstance(prompt, str) else None


def _split(param: str) -> tuple[str, str, str]:
    """``"image"`` -> ("image", "", ""); ``"a.b"`` -> ("a", ".", "b"); ``"a[1]"`` -> ("a", "[", "1]")."""
    found = re.search(r"[.\[]", param)
    if found is None:
        return param, "", ""
    return param[: found.start()], param[found.start()], param[found.start() + 1 :]


#: the integers orjson reads and writes as integers (a JSON body's others read as floats)
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1


def _number_or_text(text: str) -> Any:
    """A form's text for a numeric Kling field, read as new-api reads a field it forwards: an
    integer, else a number, else the text (which the Kling schema then refuses, naming it). An
    integer past 64 bits is a number, as the JSON parser reads the same digits in a JSON body
    (the journal's renderer, like the parser, holds 64-bit integers only).

    >>> _number_or_text("5"), _number_or_text("0.5"), _number_or_text("9" * 30), _number_or_text("five")
    (5, 0.5, 1e+30, 'five')
    """
    try:
        whole = int(text)
    except ValueError:
        pass
    else:
        if _INT_MIN <= whole <= _UINT_MAX:
            return whole
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text
