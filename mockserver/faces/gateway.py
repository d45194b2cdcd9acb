"""The gateway face (ModelStream, new-api style): ``/v1/video/generations``.

Mirrors new-api's behaviour as restated in the API brief, section 1: Bearer ``sk-`` keys, the
``{"error": {message, type, param, code}}`` object for every error, statuses ``queued`` /
``in_progress`` / ``completed`` / ``failed``, Unix-second timestamps. Every status code,
error code and message comes from ``contracts/gateway``; this module only decides which
catalogue entry applies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from mockserver.contract import ModelContract
from mockserver.engine import CreateRefused, Engine, Status, TaskNotFound, TaskView, VideoSpec
from mockserver.engine.core import video_spec
from mockserver.faces.base import FaceSettings, Handled, Handler, Refused, register_face
from mockserver.faces.common import GatewayKeysFace, serve_video
from mockserver.http import ApiRequest, ApiResponse
from mockserver.validation import ImageInfo, Violation, parse_json_body, validate_create


@register_face("gateway")
class GatewayFace(GatewayKeysFace):
    """Answer gateway-face requests from an :class:`Engine`.

    ``settings.keys``: the accepted API keys (default: the contract's ``default_keys``,
    ``sk-test``); ``["*"]`` accepts any non-empty key. ``settings.strict``: refuse unknown
    fields instead of dropping them with a warning. The gateway's keys are one user's tokens,
    so every key sees every task (new-api scopes tasks by user, not by token).
    """

    name: ClassVar[str] = "gateway"

    def __init__(self, settings: FaceSettings | None = None) -> None:
        super().__init__(settings)
        contract = self.contract
        ops = contract.operations
        self.create_op = ops["video_generations.create"]
        self.get_op = ops["video_generations.get"]
        self.media_op = ops["media.get"]
        self._media_file = re.compile(f"(?P<task_id>{contract.id_format.pattern})\\.mp4")

    def attach(self, engine: Engine) -> None:
        """The gateway's answers carry nothing drawn per answer."""

    def handlers(self) -> Mapping[str, Handler]:
        return {
            self.create_op.id: lambda engine, request, params, account: self.create(engine, request),
            self.get_op.id: lambda engine, request, params, account: self.get(engine, request, params["task_id"]),
            self.media_op.id: lambda engine, request, params, account: self.media(engine, request, params["file"]),
        }

    def callback_body(self, task: TaskView, base_url: str) -> Any:
        """The gateway sends no callbacks; its query answer is what one would carry."""
        return self.project(task, base_url)

    # -- auth --------------------------------------------------------------------------------

    def authenticate(self, request: ApiRequest, engine: Engine | None = None) -> str | Refused:  # noqa: ARG002 - Face protocol
        """The account (the gateway has one: ``""``) or the 401 that refuses the key."""
        return self._bearer.check(request, self.error, "")

    # -- operations --------------------------------------------------------------------------

    def create(self, engine: Engine, request: ApiRequest) -> Handled:
        op = self.create_op.id
        body = parse_json_body(self.contract, request.header("content-type"), request.body)
        if isinstance(body, Violation):
            return Handled(self.violation(body), op, rule=body.rule, param=body.param)
        result = validate_create(self.contract, body, strict=self.strict)
        if isinstance(result, Violation):
            return Handled(self.violation(result), op, request_json=body, rule=result.rule, param=result.param)
        video = video_for(result.model, result.body, result.images.get("image"))
        try:
            task = engine.create_task(
                model=result.model.name,
                kind=result.mode,
                request=result.body,
                video=video,
                id_format=self.contract.id_format,
                face=self.name,
            )
        except CreateRefused as exc:
            key = self.contract.resolve_error(exc.reason) or "task_failed"
            return Handled(self.error(key, detail=exc.reason), op, request_json=body, fault=f"outcome:{exc.reason}")
        except OverflowError as exc:
            return Handled(self.error("upstream_unavailable", detail=str(exc)), op, request_json=body)
        payload = {
            "id": task.id,
            "task_id": task.id,
            "object": "video",
            "model": task.model,
            "status": self.status_names[task.status._value_],
            "progress": task.progress,
            "created_at": int(task.created_at),
        }
        return Handled(ApiResponse.json(200, payload), op, task.id, body, result.warnings)

    def get(self, engine: Engine, request: ApiRequest, task_id: str) -> Handled:
        try:
            task = engine.poll_task(task_id)
        except TaskNotFound:
            shown = task_id[:80]
            return Handled(
                self.error("task_not_exist", param="task_id", task_id=repr(shown)),
                self.get_op.id,
                rule=self.contract.request_rule("task_exists"),
                param="task_id",
            )
        return Handled(ApiResponse.json(200, self.project(task, request.link_base_url)), self.get_op.id, task.id)

    def media(self, engine: Engine, request: ApiRequest, file: str) -> Handled:
        op = self.media_op.id
        found = self._media_file.fullmatch(file)
        task = engine.find_task(found.group("task_id")) if found else None
        if task is None or task.status is not Status.SUCCEEDED:
            return Handled(self.error("media_not_found", detail=repr(file[:80])), op, task.id if task else None)
        return serve_video(engine, request, task, op, self.error, ttl=self.media_ttl, expired_detail=repr(file))

    # -- projection --------------------------------------------------------------------------

    def media_url(self, task: TaskView, base_url: str) -> str:
        return base_url + self.media_op.path.replace("{file}", f"{task.id}.mp4")

    def project(self, task: TaskView, base_url: str) -> dict[str, Any]:
        """A task as the gateway's query response."""
        done = task.status is Status.SUCCEEDED
        failed = task.status is Status.FAILED
        error = None
        if failed:
            reason = self._failures[task.outcome.reason or "generation_failed"]
            error = {
                "message": task.outcome.message or reason["message"],
                "type": reason["type"],
                "param": None,
                "code": reason["code"],
            }
        metadata = None
        if done:
            v = task.video
            metadata = {
                "duration": v.duration,
                "fps": v.fps,
                "width": v.width,
                "height": v.height,
                "seed": task.seed,
            }
        return {
            "task_id": task.id,
            "status": self.status_names[task.status._value_],
            "url": self.media_url(task, base_url) if done else None,
            "format": "mp4",
            "metadata": metadata,
            "error": error,
            "progress": task.progress,
            "created_at": int(task.created_at),
            "updated_at": int(task.updated_at),
        }


def video_for(model: ModelContract, body: Mapping[str, Any], image: ImageInfo | None) -> VideoSpec:
    """The video an accepted request produces (the contract's ``output`` table): the size's frame
    for 16:9, or for the supported aspect nearest the first frame's."""
    output = model.output
    sizes = output["frame_sizes"][body["size"]]
    aspect = output["text2video_aspect"]
    if image is not None and image.width and image.height:
        ratio = math.log(image.width / image.height)
        aspect = min(sizes, key=lambda name: abs(math.log(sizes[name][0] / sizes[name][1]) - ratio))
    width, height = sizes[aspect]
    return video_spec(int(body["duration"]), width, height, int(output["fps"]), body.get("sound") == "on")
