"""What several faces do alike, written once: the gateway family's error object and ``sk-`` key
check (the gateway and its OpenAI-compatible route are one gateway), ``Retry-After`` on a 429,
injected faults, and serving a finished task's MP4 from its link.

Each helper takes the face's contract and its ``error`` renderer, so the wire stays the face's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any, ClassVar, Generic, TypeVar

from mockserver import media
from mockserver.contract import Contract, Operation, load_contract
from mockserver.engine import Engine, FaultPlan, TaskView
from mockserver.engine.journal import fingerprint
from mockserver.faces.base import FaceSettings, Handled, Refused
from mockserver.http import ApiRequest, ApiResponse
from mockserver.validation import Violation, validate_create

__all__ = [
    "MAX_AUTH_HEADER",
    "BearerKeys",
    "ByRequest",
    "error_object",
    "fault_response",
    "retry_after_headers",
    "serve_video",
]

#: Longest Authorization header a face reads (a longer one is refused, not parsed).
MAX_AUTH_HEADER = 4096
#: Accepted Authorization values a face remembers
_ACCEPTED_HEADERS = 256

ErrorRenderer = Callable[..., ApiResponse]

T = TypeVar("T")
_ABSENT = object()


class ByRequest(Generic[T]):
    """What a face's answers read from a task's stored request, worked out once per stored
    request: polls re-parsed the request every time. A task's request never changes; the value
    is keyed by the request's bytes (the task's own object, so hashed once), not the task id,
    since after a reset the seeded ids come back for other requests. At most ``kept`` values
    are kept, then it starts over. ``derive(task)`` may read only the task's request and video
    (equal requests give equal videos).

    >>> from mockserver import Engine, VirtualClock
    >>> from mockserver.engine import VideoSpec
    >>> task = Engine(clock=VirtualClock()).create_task(
    ...     model="m", kind="text2video", request={"prompt": "a fox"}, video=VideoSpec(5, 1280, 720))
    >>> prompt = ByRequest(lambda task: task.request.get("prompt"))
    >>> prompt(task), prompt(task)
    ('a fox', 'a fox')
    """

    def __init__(self, derive: Callable[[TaskView], T], kept: int = 4096) -> None:
        self._derive = derive
        self._kept = kept
        self._values: dict[bytes, T] = {}

    def __call__(self, task: TaskView) -> T:
        found: Any = self._values.get(task.request_json, _ABSENT)
        if found is _ABSENT:
            found = self._derive(task)
            if len(self._values) >= self._kept:
                self._values.clear()
            self._values[task.request_json] = found
        value: T = found
        return value

    def clear(self) -> None:
        """Forget every value (they are worked out again on next use)."""
        self._values.clear()


def retry_after_headers(
    contract: Contract, key: str, retry_after: float | None, headers: tuple[tuple[str, str], ...]
) -> list[tuple[str, str]]:
    """``headers`` plus ``Retry-After`` when ``key`` is a 429 that names a wait (the catalogue's,
    or an injected plan's ``retry_after``)."""
    spec = contract.errors[key]
    extra = list(headers)
    wait = retry_after if retry_after is not None else spec.retry_after
    if spec.http_status == 429 and wait is not None:
        extra.append(("retry-after", str(math.ceil(wait))))
    return extra


def error_object(
    contract: Contract,
    key: str,
    *,
    param: str | None = None,
    retry_after: float | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    **values: object,
) -> ApiResponse:
    """The catalogued error ``key`` as the gateway family's ``{"error": {message, type, param,
    code}}`` object (new-api's, and OpenAI's)."""
    spec = contract.errors[key]
    body = {
        "error": {
            "message": spec.render_message(param=param, **values),
            "type": spec.type,
            "param": param,
            "code": spec.code,
        }
    }
    return ApiResponse.json(spec.http_status, body, retry_after_headers(contract, key, retry_after, headers))


def fault_response(contract: Contract, error: ErrorRenderer, plan: FaultPlan) -> ApiResponse | None:
    """An armed plan's error in the face's format (None: a latency-only plan, or an error the
    face cannot render, which the service's fault check refuses when the plan is armed)."""
    if plan.error is None:
        return None
    key = contract.resolve_error(plan.error)
    if key is None:
        return None
    return error(key, retry_after=plan.retry_after, detail="injected fault", task_id="?")


class BearerKeys:
    """The gateway family's ``Authorization: Bearer sk-...`` check: the ``sk-`` prefix is
    stripped (new-api's middleware), ``"*"`` accepts any non-empty key.

    >>> from mockserver.contract import load_contract
    >>> BearerKeys(load_contract(), ["sk-a"]).accepts("sk-a"), BearerKeys(load_contract(), ["*"]).accepts("x")
    (True, True)
    """

    def __init__(self, contract: Contract, keys: Collection[str] | None) -> None:
        auth = contract.index["auth"]
        self.contract = contract
        self.prefix = str(auth["key_prefix"])
        self.keys = tuple(keys) if keys is not None else tuple(auth["default_keys"])
        self._accepted = {self.strip(k) for k in self.keys}
        self._rule = contract.request_rule("api_key")
        #: Authorization values found acceptable (bounded: with ``"*"`` any key is, and a client
        #: may send many); keys are fixed for the life of a face, so an accepted value stays so
        self._accepted_headers: set[str] = set()

    def strip(self, key: str) -> str:
        return key[len(self.prefix) :] if key.startswith(self.prefix) else key

    def accepts(self, token: str) -> bool:
        key = self.strip(token)
        return bool(key) and ("*" in self._accepted or key in self._accepted)

    def check(self, request: ApiRequest, error: ErrorRenderer, account: str) -> str | Refused:
        """``account`` when the request carries an accepted key, else the face's 401."""
        rule = self._rule
        values = request.header_values("authorization")
        if len(values) == 1 and values[0] in self._accepted_headers:
            return account  # this exact header was accepted before; the keys do not change
        if not values:
            return Refused(error("missing_api_key"), rule)
        if len(values) > 1:
            return Refused(error("invalid_api_key", detail="more than one Authorization header"), rule)
        value = values[0]
        if len(value) > MAX_AUTH_HEADER:
            detail = f"the Authorization header is over {MAX_AUTH_HEADER} characters"
            return Refused(error("invalid_api_key", detail=detail), rule)
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Refused(error("invalid_api_key", detail="use Authorization: Bearer sk-..."), rule)
        if not self.accepts(token):
            return Refused(error("invalid_api_key", detail=f"key {fingerprint(token)} is not accepted"), rule)
        if len(self._accepted_headers) < _ACCEPTED_HEADERS:
            self._accepted_headers.add(value)
        return account


def serve_video(
    engine: Engine,
    request: ApiRequest,
    task: TaskView,
    operation: str,
    error: ErrorRenderer,
    *,
    ttl: float,
    expired_detail: str,
) -> Handled:
    """A finished task's MP4 (GET, HEAD, byte ranges), or ``link_expired`` once ``ttl`` seconds
    of the engine's clock have passed since it ended; a range past the end keeps
    ``Content-Range`` (RFC 9110) but answers with the face's ``range_not_satisfiable``."""
    assert task.finished_at is not None
    if engine.clock.now() > task.finished_at + ttl:
        return Handled(error("link_expired", detail=expired_detail), operation, task.id)
    video = task.video
    data = media.mp4_bytes(video.duration, video.width, video.height, audio=video.audio)
    served = media.serve_bytes(data, method=request.method, range_header=request.header("range"))
    if served.status == 416:
        content_range = tuple((k.lower(), v) for k, v in served.headers if k.lower() == "content-range")
        return Handled(error("range_not_satisfiable", headers=content_range), operation, task.id)
    body: Any = served.body
    return Handled(ApiResponse(served.status, served.headers, body), operation, task.id)


class FaceBase:
    """What every built-in face does the same way through its own :meth:`error`: answer a
    refusal and an armed fault, and judge a create by its own model's schema and rules (a face
    whose create maps onto another face's request overrides :meth:`judge_create`)."""

    contract: Contract
    strict: bool

    def error(
        self,
        key: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        **values: object,
    ) -> ApiResponse:
        raise NotImplementedError  # each face renders its catalogue in its own envelope

    def violation(self, found: Violation) -> ApiResponse:
        """The face's answer to a refusal, naming its field and rule."""
        return self.error(found.error, param=found.param, detail=found.detail, rule=found.rule)

    def fault_response(self, plan: FaultPlan, operation: Operation) -> ApiResponse | None:  # noqa: ARG002 - Face protocol
        return fault_response(self.contract, self.error, plan)

    def judge_create(self, body: Any, *, kind: str | None = None) -> Violation | None:
        """The model's schema and rules, as the create checks them.

        >>> from mockserver.faces import make_face
        >>> make_face("gateway").judge_create({"model": "kling-v2-6"}).rule
        'schema:required'
        >>> kling = {"model_name": "kling-v2-6", "prompt": "a fox", "sound": "on"}
        >>> make_face("official").judge_create(kling, kind="text2video").rule
        'sound.requires_pro'
        """
        result = validate_create(self.contract, body, strict=self.strict, mode=kind)
        return result if isinstance(result, Violation) else None


class GatewayKeysFace(FaceBase):
    """A face of the gateway: its ``sk-`` keys (:class:`BearerKeys`) and its error object."""

    name: ClassVar[str]
    _bearer: BearerKeys
    keys: tuple[str, ...]

    def __init__(self, settings: FaceSettings | None = None) -> None:
        self.settings = settings = settings or FaceSettings()
        self.contract = contract = load_contract(self.name)
        self._bearer = BearerKeys(contract, settings.keys)
        self.keys = self._bearer.keys
        self.strict = settings.strict
        self.status_names = contract.status_projection
        self.media_ttl = contract.media_ttl
        self._failures = contract.task_failures

    def secrets(self) -> tuple[str, ...]:
        """The accepted API keys (as sent, and without the ``sk-`` prefix): never shown in clear."""
        return tuple(k for key in self.keys if key != "*" for k in (key, self._bearer.strip(key)))

    def error(
        self,
        key: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        **values: object,
    ) -> ApiResponse:
        """The catalogued error ``key`` as the gateway's (and OpenAI's) error object."""
        return error_object(self.contract, key, param=param, retry_after=retry_after, headers=headers, **values)
