"""Kling's own API (api-singapore.klingai.com and friends): ``/v1/videos/{text2video,image2video}``.

Mirrors the official dialect as restated in the API brief, section 2: HS256 JWTs signed with an
access/secret key pair (``iss`` = access key; ``exp``/``nbf`` checked on the engine's clock), the
``{code, message, request_id, data}`` envelope on every answer, numeric-string task ids,
millisecond timestamps, statuses ``submitted``/``processing``/``succeed``/``failed``, per-account
external ids and concurrency slots, and callbacks. Every code, status and message comes from
``contracts/official``; this module decides which catalogue entry applies.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import jwt

from mockserver import media
from mockserver.contract import ModelContract, Operation, load_contract
from mockserver.engine import (
    CreateRefused,
    Engine,
    ExternalIdTaken,
    SlotsExhausted,
    Status,
    TaskNotFound,
    TaskView,
    VideoSpec,
)
from mockserver.engine.core import uuid_text, video_spec
from mockserver.engine.journal import MAX_STRING, ContractWarning, fingerprint, shorten
from mockserver.faces.base import FaceSettings, Handled, Handler, Refused, register_face
from mockserver.faces.common import MAX_AUTH_HEADER, ByRequest, FaceBase, retry_after_headers, serve_video
from mockserver.http import ApiRequest, ApiResponse
from mockserver.validation import ImageInfo, Violation, parse_json_body, validate_create, validate_query

#: verified tokens kept (a client re-signs every request at most; the cache only saves the HMAC)
_TOKEN_CACHE = 1024
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class _Claims:
    __slots__ = ("account", "exp", "nbf")

    def __init__(self, account: str, exp: float | None, nbf: float | None) -> None:
        self.account, self.exp, self.nbf = account, exp, nbf


@register_face("official")
class OfficialFace(FaceBase):
    """Answer Kling's own API from an :class:`Engine`.

    ``settings.key_pairs``: access key -> secret key of the accounts whose JWTs are accepted
    (default: the contract's pair); ``settings.keys``: single API keys accepted as plain Bearer
    tokens (default: the contract's list). Each access key (or API key) is an account: its tasks,
    external ids and concurrency slots are its own.
    """

    name: ClassVar[str] = "official"

    def __init__(self, settings: FaceSettings | None = None) -> None:
        self.settings = settings = settings or FaceSettings()
        self.contract = contract = load_contract(self.name)
        index = contract.index
        auth = index["auth"]
        defaults = {pair["access_key"]: pair["secret_key"] for pair in auth["default_keys"]}
        self.key_pairs: dict[str, str] = dict(settings.key_pairs if settings.key_pairs is not None else defaults)
        self.keys = tuple(settings.keys) if settings.keys is not None else tuple(auth.get("api_keys", ()))
        self.skew = float(auth["jwt"]["clock_skew_seconds"])
        #: situation -> catalogue key (missing, malformed, bad_signature, unknown_access_key,
        #: not_yet_valid, expired)
        self._auth_errors: Mapping[str, str] = auth["errors"]
        self.strict = settings.strict
        concurrency = index["concurrency"]
        self.slots = settings.slots if settings.slots is not None else int(concurrency["slots_per_account"])
        self.callback_hosts = frozenset(h.lower() for h in settings.callback_hosts)
        self.status_names = contract.status_projection
        self.media_ttl = contract.media_ttl
        self.scale = contract.timestamp_scale
        self._failures = contract.task_failures
        self._tokens: OrderedDict[str, _Claims] = OrderedDict()
        self._engine: Engine | None = None
        self._paging = index["limits"]["paging"]
        self._media_file = re.compile(f"(?P<task_id>{contract.id_format.pattern})\\.mp4")
        self._media_op = next(op for op in contract.operations.values() if op.verb == "media.get")
        # the media path around its file name (``{task_id}.mp4``), split once
        head, tail = self._media_op.path.split("{file}")
        self._media_head, self._media_tail = head, ".mp4" + tail
        # read once: every answer carries the envelope, every finished task its units
        envelope = index["envelope"]
        self._success = (envelope["success_code"], envelope["success_message"])
        self._units_per_five: Mapping[str, Any] = index["billing"]["final_unit_deduction"]["units_per_5_seconds"]
        #: stored request -> (watermark asked for, units): see _from_request
        self._from_request = ByRequest(self._derive)

    def attach(self, engine: Engine) -> None:
        """Request ids come from the engine's seeded stream (reproducible answers)."""
        self._engine = engine

    def handlers(self) -> Mapping[str, Handler]:
        out: dict[str, Handler] = {}
        for op in self.contract.operations.values():
            if op.verb == "task.create":
                out[op.id] = self._create_handler(op)
            elif op.verb == "task.get":
                out[op.id] = self._get_handler(op)
            elif op.verb == "task.list":
                out[op.id] = self._list_handler(op)
            elif op.verb == "account.costs":
                out[op.id] = self._costs_handler(op)
            elif op.verb == "media.get":
                out[op.id] = self._media_handler(op)
            else:  # a contract operation this module has no answer for is a contract error
                raise ValueError(f"official face: no handler for operation {op.id!r} (verb {op.verb!r})")
        return out

    def secrets(self) -> tuple[str, ...]:
        """The secret keys of the accepted pairs and the single API keys."""
        return (*self.key_pairs.values(), *(k for k in self.keys if k != "*"))

    def _create_handler(self, op: Operation) -> Handler:
        return lambda engine, request, params, account: self.create(engine, request, op, account)

    def _get_handler(self, op: Operation) -> Handler:
        return lambda engine, request, params, account: self.get(engine, request, op, params["task_id"], account)

    def _costs_handler(self, op: Operation) -> Handler:
        return lambda engine, request, params, account: self.costs(engine, request, op)

    def _media_handler(self, op: Operation) -> Handler:
        return lambda engine, request, params, account: self.media(engine, request, params["file"], op)

    def _list_handler(self, op: Operation) -> Handler:
        return lambda engine, request, params, account: self.list_tasks(engine, request, op, account)

    # -- the envelope ------------------------------------------------------------------------

    def _request_id(self) -> str:
        return self._engine.new_request_id() if self._engine is not None else _NO_ENGINE_ID

    def ok(self, engine: Engine, data: Any) -> ApiResponse:
        code, message = self._success
        body = {
            "code": code,
            "message": message,
            "request_id": engine.new_request_id(),
            "data": data,
        }
        return ApiResponse.json(200, body)

    def error(
        self,
        key: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        **values: object,
    ) -> ApiResponse:
        """The catalogued error ``key`` in Kling's envelope (``data`` null). Kling sends no
        Retry-After (api-brief 2.6); an injected plan's ``retry_after`` adds one anyway."""
        spec = self.contract.errors[key]
        body = {
            "code": spec.code,
            "message": spec.render_message(param=param, **values),
            "request_id": self._request_id(),
            "data": None,
        }
        return ApiResponse.json(spec.http_status, body, retry_after_headers(self.contract, key, retry_after, headers))

    # -- auth --------------------------------------------------------------------------------

    def authenticate(self, request: ApiRequest, engine: Engine) -> str | Refused:
        """The account a request acts for: a JWT's access key, or a single API key."""
        values = request.header_values("authorization")
        if not values or not values[0].strip():
            return self._refuse(self._auth_errors["missing"], "auth.header")
        if len(values) > 1:
            return self._refuse(
                self._auth_errors["malformed"], "auth.header", detail="more than one Authorization header"
            )
        value = values[0]
        # Verified tokens are kept by the whole header value: a client sends the same header on
        # every request, and one found here skips the parsing below too.
        claims = self._tokens.get(value)
        if claims is None:
            found = self._claims(value)
            if not isinstance(found, _Claims):
                return found
            claims = found
            self._tokens[value] = claims
            if len(self._tokens) > _TOKEN_CACHE:
                self._tokens.popitem(last=False)
        now = engine.clock.now()
        # exp and nbf are checked on the engine's clock on every use, cached or not, so a test
        # expires a token by advancing the clock.
        if claims.nbf is not None and now + self.skew < claims.nbf:
            return self._refuse(
                self._auth_errors["not_yet_valid"], "auth.nbf", detail=f"nbf is {claims.nbf - now:.0f} s ahead"
            )
        if claims.exp is not None and now - self.skew >= claims.exp:
            return self._refuse(
                self._auth_errors["expired"], "auth.exp", detail=f"expired {now - claims.exp:.0f} s ago"
            )
        return claims.account

    def _claims(self, value: str) -> _Claims | Refused | str:
        """What an Authorization header not seen before holds: a JWT's verified claims, the
        account of a single API key, or the refusal."""
        if len(value) > MAX_AUTH_HEADER:
            detail = f"the Authorization header is over {MAX_AUTH_HEADER} characters"
            return self._refuse(self._auth_errors["malformed"], "auth.header", detail=detail)
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return self._refuse(self._auth_errors["malformed"], "auth.header", detail="use Authorization: Bearer <JWT>")
        if not _JWT_SHAPE.fullmatch(token):
            # Decision (release notes mention single API keys; no doc copy describes them): a
            # token that is not a JWT is looked up in the configured key list.
            if "*" in self.keys or token in self.keys:
                return "key:" + token
            return self._refuse(
                self._auth_errors["malformed"],
                "auth.api_key",
                detail=f"key {fingerprint(token)} is not accepted",
            )
        return self._verify(token)

    def _verify(self, token: str) -> _Claims | Refused:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            return self._refuse(self._auth_errors["malformed"], "auth.jwt", detail=f"not a JWT ({_plain(exc)})")
        if header.get("alg") != "HS256":
            return self._refuse(
                self._auth_errors["malformed"],
                "auth.jwt",
                detail=f"alg must be HS256, got {header.get('alg')!r}",
            )
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or issuer not in self.key_pairs:
            shown = fingerprint(issuer) if isinstance(issuer, str) else repr(issuer)[:40]
            return self._refuse(
                self._auth_errors["unknown_access_key"],
                "auth.iss",
                detail=f"iss {shown} is not a known access key",
            )
        secret = self.key_pairs[issuer]
        try:
            with warnings.catch_warnings():
                # Test secrets are often short; PyJWT's advice about key length is for production.
                warnings.simplefilter("ignore", _KEY_LENGTH_WARNING)
                # exp/nbf are checked by the caller on the engine's clock, not on the wall clock.
                claims = jwt.decode(
                    token,
                    secret,
                    algorithms=["HS256"],
                    options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False},
                )
        except jwt.PyJWTError as exc:
            return self._refuse(self._auth_errors["bad_signature"], "auth.signature", detail=_plain(exc))
        exp, nbf = claims.get("exp"), claims.get("nbf")
        for name, value in (("exp", exp), ("nbf", nbf)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                return self._refuse(self._auth_errors["malformed"], "auth.jwt", detail=f"{name} must be a number")
        if exp is None:
            return self._refuse(self._auth_errors["malformed"], "auth.exp", detail="the token has no exp claim")
        return _Claims("ak:" + issuer, float(exp), None if nbf is None else float(nbf))

    def _refuse(self, key: str, rule: str, *, detail: str = "") -> Refused:
        return Refused(self.error(key, detail=detail), rule)

    # -- operations --------------------------------------------------------------------------

    def create(self, engine: Engine, request: ApiRequest, op: Operation, account: str) -> Handled:
        body = parse_json_body(self.contract, request.header("content-type"), request.body)
        if isinstance(body, Violation):
            return Handled(self.violation(body), op.id, rule=body.rule, param=body.param)
        result = validate_create(self.contract, body, strict=self.strict, mode=op.kind)
        if isinstance(result, Violation):
            return Handled(self.violation(result), op.id, request_json=body, rule=result.rule, param=result.param)
        warnings = list(result.warnings)
        accepted = result.body
        callback = accepted.get("callback_url")
        if isinstance(callback, str) and len(callback) > MAX_STRING:
            warnings.append(
                ContractWarning(
                    self.contract.request_rule("callback_host"),
                    "callback_url",
                    f"a callback URL of {len(callback)} characters (over {MAX_STRING}) will get no callbacks",
                )
            )
            callback = None
        if isinstance(callback, str) and callback and not self._callback_allowed(callback):
            warnings.append(
                ContractWarning(
                    self.contract.request_rule("callback_host"),
                    "callback_url",
                    f"callbacks go only to allow-listed hosts ({', '.join(sorted(self.callback_hosts))}); "
                    f"{_host(callback) or callback[:80]!r} will get none",
                )
            )
            callback = None
        external = accepted.get("external_task_id")
        video = video_for(result.model, accepted, result.images.get("image") or result.images.get("image_tail"))
        try:
            task = engine.create_task(
                model=result.model.name,
                kind=result.mode,
                request=accepted,
                video=video,
                id_format=self.contract.id_format,
                face=self.name,
                account=account,
                external_id=external if isinstance(external, str) and external else None,
                slots=self.slots,
                callback_url=callback if isinstance(callback, str) and callback else None,
            )
        except ExternalIdTaken as exc:
            response = self.error(
                "duplicate_external_task_id", param="external_task_id", detail=repr(exc.external_id[:80])
            )
            rule = self.contract.request_rule("external_task_id_unique")
            return Handled(response, op.id, request_json=body, rule=rule, param="external_task_id")
        except SlotsExhausted as exc:
            response = self.error(str(self.contract.index["concurrency"]["error"]), detail=str(exc))
            return Handled(response, op.id, request_json=body, rule=self.contract.request_rule("concurrency_slots"))
        except CreateRefused as exc:
            key = self.contract.resolve_error(exc.reason) or "content_safety"
            return Handled(
                self.error(key, detail=exc.reason),
                op.id,
                request_json=body,
                fault=f"outcome:{exc.reason}",
            )
        except OverflowError as exc:
            return Handled(self.error("upstream_unavailable", detail=str(exc)), op.id, request_json=body)
        data = {
            "task_id": task.id,
            "task_info": self._task_info(task),
            "task_status": self.status_names[task.status._value_],
            "created_at": self._ms(task.created_at),
            "updated_at": self._ms(task.updated_at),
        }
        return Handled(self.ok(engine, data), op.id, task.id, body, tuple(warnings))

    def get(self, engine: Engine, request: ApiRequest, op: Operation, task_id: str, account: str) -> Handled:
        try:
            # A task is found on either kind's path (api-brief 2.2: one app polls every task on
            # the text2video path), by its id or by the account's external_task_id.
            task = engine.poll_task(task_id, account=account, external=True)
        except TaskNotFound:
            return self._not_found(op, task_id)
        return Handled(self.ok(engine, self.project(task, request.link_base_url)), op.id, task.id)

    def list_tasks(self, engine: Engine, request: ApiRequest, op: Operation, account: str) -> Handled:
        query = validate_query(op, request.query)
        if isinstance(query, Violation):
            return Handled(self.violation(query), op.id, rule=query.rule, param=query.param)
        external = query.get("external_task_id")
        if external is not None:
            # Seen in public clients: a lookup by external id on the list path; the list holds
            # the account's one task with that id, of either kind, or nothing.
            try:
                found = [engine.poll_task(external, account=account, external=True)]
            except TaskNotFound:
                found = []
            found = [t for t in found if t.external_id == shorten(external)]
            return Handled(self.ok(engine, [self.project(t, request.link_base_url) for t in found]), op.id)
        paging = self._paging
        number = int(query.get("pageNum", paging["pageNum"]["default"]))
        size = int(query.get("pageSize", paging["pageSize"]["default"]))
        tasks = engine.list_tasks(account=account, kind=op.kind, offset=(number - 1) * size, limit=size)
        return Handled(self.ok(engine, [self.project(t, request.link_base_url) for t in tasks]), op.id)

    def costs(self, engine: Engine, request: ApiRequest, op: Operation) -> Handled:
        """``GET /account/costs``: one SDK checks its key with it at start-up; the fake's
        accounts have an unlimited resource pack (decision)."""
        query = validate_query(op, request.query)
        if isinstance(query, Violation):
            return Handled(self.violation(query), op.id, rule=query.rule, param=query.param)
        pack = {k: v for k, v in self.contract.index["billing"]["resource_pack"].items() if k != "source"}
        now = self._ms(engine.clock.now())
        start = int(query.get("start_time", now))
        end = max(start, int(query.get("end_time", now)))
        pack.update(purchase_time=start, effective_time=start, invalid_time=end + 30 * 86_400_000)
        data = {"code": 0, "msg": "", "resource_pack_subscribe_infos": [pack]}
        return Handled(self.ok(engine, data), op.id)

    def _not_found(self, op: Operation, task_id: str) -> Handled:
        response = self.error("task_not_exist", param="task_id", task_id=repr(task_id[:80]))
        return Handled(response, op.id, rule=self.contract.request_rule("task_exists"), param="task_id")

    def media(self, engine: Engine, request: ApiRequest, file: str, op: Operation) -> Handled:
        found = self._media_file.fullmatch(file)
        task = engine.find_task(found.group("task_id")) if found else None
        if task is None or task.status is not Status.SUCCEEDED:
            return Handled(self.error("media_not_found", detail=repr(file[:80])), op.id, task.id if task else None)
        return serve_video(engine, request, task, op.id, self.error, ttl=self.media_ttl, expired_detail=repr(file))

    # -- projection --------------------------------------------------------------------------

    def _ms(self, seconds: float) -> int:
        return int(seconds * self.scale)

    def _task_info(self, task: TaskView) -> dict[str, Any]:
        # Always an object (api-brief 2.5: one client requires it), with the caller's id if any.
        return {"external_task_id": task.external_id} if task.external_id is not None else {}

    def media_url(self, task: TaskView, base_url: str, *, watermark: bool = False) -> str:
        # Decision: the watermarked copy is the same MP4 (the fake draws no mark); its own URL
        # lets a client prove it downloads the one it asked for.
        url = base_url + self._media_head + task.id + self._media_tail
        return url + "?watermark=1" if watermark else url

    def _derive(self, task: TaskView) -> tuple[bool, str]:
        """What the task object reads from the stored request (see :class:`ByRequest`): whether
        a watermarked copy was asked for, and the units a finished task costs."""
        request = task.request
        marks = request.get("watermark_info")
        watermark = isinstance(marks, dict) and marks.get("enabled") is True  # parsed JSON: no ABC check
        return watermark, self._units(request, task)

    def project(self, task: TaskView, base_url: str) -> dict[str, Any]:
        """A task as Kling's task object (the ``data`` of a query, an item of a list)."""
        done = task.status is Status.SUCCEEDED
        failed = task.status is Status.FAILED
        watermark, units = self._from_request(task)
        message = ""
        if failed:
            reason = self._failures[task.outcome.reason or "generation_failed"]
            message = task.outcome.message or str(reason["message"])
        videos = []
        if done:
            video: dict[str, Any] = {
                # a UUID like Kling's, stable for the task (the same on every poll)
                "id": video_uuid(task.id),
                "url": self.media_url(task, base_url),
                "duration": f"{task.video.duration:.1f}",
            }
            if watermark:
                video["watermark_url"] = self.media_url(task, base_url, watermark=True)
            videos.append(video)
        return {
            "task_id": task.id,
            "task_status": self.status_names[task.status._value_],
            "task_status_msg": message,
            "task_info": self._task_info(task),
            "task_result": {"videos": videos},
            "watermark_info": {"enabled": watermark},
            "final_unit_deduction": units if done else "0",
            # int(seconds * scale), as _ms does, without two calls on every poll
            "created_at": int(task.created_at * self.scale),
            "updated_at": int(task.updated_at * self.scale),
        }

    def _units(self, request: Mapping[str, Any], task: TaskView) -> str:
        units = float(self._units_per_five.get(str(request.get("mode", "std")), "1")) * task.video.duration / 5
        return f"{units:g}"

    def callback_body(self, task: TaskView, base_url: str) -> Any:
        """The task object with no envelope (api-brief 2.7)."""
        return self.project(task, base_url)

    def _callback_allowed(self, url: str) -> bool:
        host = _host(url)
        return (
            url.split(":", 1)[0].lower() in ("http", "https")
            and bool(host)
            and ("*" in self.callback_hosts or host in self.callback_hosts)
        )


_NO_ENGINE_ID = "00000000-0000-4000-8000-000000000000"
#: PyJWT 2.10 and later warn about short HMAC keys; older ones have no such warning class
_KEY_LENGTH_WARNING: type[Warning] = getattr(jwt, "InsecureKeyLengthWarning", UserWarning)


#: a URL's authority: ``[user@]host[:port]``, the host a name or a bracketed IPv6 address
_AUTHORITY = re.compile(r"(?:[^@/?#]*@)?(?:\[[0-9A-Fa-f:.]+\]|[^:\[\]/?#@]+)(?::[0-9]*)?")


def _host(url: str) -> str | None:
    """The URL's host in lower case; None when it has none or cannot be parsed (a callback_url
    such as ``http://[`` or ``https://a:b`` passes the schema's pattern but is no URL: it gets no
    callback)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not _AUTHORITY.fullmatch(parts.netloc):
        return None
    return parts.hostname.lower() if parts.hostname else None


_VIDEO_NAMESPACE = uuid.NAMESPACE_URL.bytes


@functools.lru_cache(maxsize=4096)  # a poll of a finished task renders it again; same id, same text
def video_uuid(task_id: str) -> str:
    """A finished task's video id: ``uuid5(NAMESPACE_URL, "kling-testkit:<task id>")``, hashed
    directly (every poll of a finished task renders it; the UUID objects cost more than the hash).

    >>> video_uuid("1") == str(uuid.uuid5(uuid.NAMESPACE_URL, "kling-testkit:1"))
    True
    """
    digest = hashlib.sha1(_VIDEO_NAMESPACE + f"kling-testkit:{task_id}".encode(), usedforsecurity=False).digest()
    return uuid_text(int.from_bytes(digest[:16], "big"), 5)


def _plain(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__)[:200]


def video_for(model: ModelContract, body: Mapping[str, Any], image: ImageInfo | None) -> VideoSpec:
    """The video an accepted request produces, from the model's ``output`` table: the mode's
    frame size, for the requested aspect ratio (text) or the one nearest the image (image)."""
    output = model.output
    mode = str(body.get("mode", "std"))
    # The fake ships 5 s and 10 s clips; a duration between them (kling-v3 takes 3-15 s) gets the
    # longest clip not over it (5 s at least), and the task object reports what is served.
    wanted = int(float(body.get("duration", 5)))
    sound = body.get("sound") == "on"
    if image is not None and image.width and image.height:
        sizes = output["frame_sizes"][output["resolution_by_mode"][mode]]
        ratio = math.log(image.width / image.height)
        aspect = min(sizes, key=lambda name: abs(math.log(sizes[name][0] / sizes[name][1]) - ratio))
    else:
        aspect = str(body.get(output.get("aspect_field", "aspect_ratio")) or output["text2video_aspect"])
    return _video(model, mode, aspect, wanted, sound)


@functools.lru_cache(maxsize=256)  # a few modes x aspects x durations per model: every create asks
def _video(model: ModelContract, mode: str, aspect: str, wanted: int, sound: bool) -> VideoSpec:
    """The clip served for these request values, from the contract's ``output`` table alone."""
    output = model.output
    sizes = output["frame_sizes"][output["resolution_by_mode"][mode]]
    width, height = sizes[aspect if aspect in sizes else str(output["text2video_aspect"])]
    served = max([d for d in media.video_durations() if d <= wanted] or [min(media.video_durations())])
    return video_spec(served, width, height, int(output["fps"]), sound)
