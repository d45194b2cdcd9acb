"""What a face answers: creates, queries in every status, lists, every catalogued error; timelines.

The strategies draw a *task* from the contract -- its status (``lifecycle.json``), the path it
took through the lifecycle's transitions, its progress, timestamps, result video (the model's
``output`` table), failure reason (``task_failures``), the request it was created from
(:func:`~kling_testkit.strategies.valid_requests`) -- and let the face render it: the face's
own handlers answer a request for it from an engine that holds exactly that task. So every
answer is in that face's envelope and vocabulary (``{"code": 0, "data": {...}}`` and
``succeed`` on Kling's own API, a bare object and ``completed`` on the gateway) without this
module naming a single field of either. Errors are the face's rendering of each catalogued
error of the operation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn, SearchStrategy

from kling_testkit._lifecycle import successors
from kling_testkit._strategies.common import as_strategy, choices, contract_for, draw_model
from kling_testkit._strategies.requests import Pins, _valid
from kling_testkit._strategies.schema import field_values
from mockserver.contract import Contract, IdFormat, ModelContract, Operation
from mockserver.engine import Engine, Outcome, Progression, Status, TaskNotFound, TaskView, VideoSpec, VirtualClock
from mockserver.engine.core import compact_request
from mockserver.faces import Face, make_face
from mockserver.http import ApiRequest, ApiResponse, dump_json

_TIME_ZERO = 1_700_000_000  # a realistic Unix-seconds epoch to start from (2023-11)
_DETAILS = st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1, max_size=40)
_EXTERNAL_IDS = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=40)
_SUCCEEDED = Status.SUCCEEDED.value  # the engine's success status; faces spell it their way
_CREATE, _GET, _LIST = "task.create", "task.get", "task.list"


@dataclass(frozen=True, slots=True)
class WireResponse:
    """One answer of a face: operation id, HTTP status, headers, JSON body, and the contract
    schema (``responses/...schema.json``) it validates against.

    >>> WireResponse("video_generations.get", 200, (), {}, "responses/x.schema.json").status
    200
    """

    operation: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: dict[str, Any]
    schema: str


def task_ids(contract: Contract | None = None, *, face: str | None = None) -> SearchStrategy[str]:
    """Task ids in the face's format (``index.json`` ``task_id``): ``task_`` + 32 alphanumerics
    on the gateway, 18 digits (not starting with 0) on Kling's own API; shrinks to the first
    characters of the alphabets.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20, deadline=None)
    ... @given(task_ids())
    ... def test_ids(task_id):
    ...     assert task_id.startswith("task_") and len(task_id) == 37
    >>> test_ids()
    >>> @settings(max_examples=20, deadline=None)
    ... @given(task_ids(face="official"))
    ... def test_numeric(task_id):
    ...     assert task_id.isdigit() and len(task_id) == 18 and task_id[0] != "0"
    >>> test_numeric()
    """
    return st.deferred(lambda: _task_ids(contract or contract_for(face)))


def _task_ids(contract: Contract) -> SearchStrategy[str]:
    fmt = contract.id_format
    if fmt.first_alphabet:
        head = st.sampled_from(fmt.first_alphabet)
        tail = st.text(fmt.alphabet, min_size=fmt.length - 1, max_size=fmt.length - 1)
        return st.tuples(head, tail).map(lambda parts: fmt.prefix + parts[0] + parts[1])
    return st.text(fmt.alphabet, min_size=fmt.length, max_size=fmt.length).map(lambda tail: fmt.prefix + tail)


def _base_urls(contract: Contract) -> SearchStrategy[str]:
    return st.sampled_from([*contract.base_urls, "http://127.0.0.1:8000", "http://localhost"])


# -- an engine that holds exactly the drawn tasks -----------------------------------------------


class _Scripted(Engine):
    """An engine whose tasks are the ones a strategy drew; the face's handlers render them as
    they render any task (the engine's own progressions never run)."""

    def __init__(self, seed: int) -> None:
        super().__init__(clock=VirtualClock(start=_TIME_ZERO), seed=seed)
        #: newest first
        self.views: list[TaskView] = []
        #: what the next create stores (its request, model and video come from the create)
        self.template: TaskView | None = None

    def create_task(
        self,
        *,
        model: str,
        kind: str,
        request: Mapping[str, Any],
        video: VideoSpec,
        id_format: IdFormat = IdFormat(),  # noqa: B008, ARG002 - Engine's signature
        face: str = "",
        account: str = "",
        external_id: str | None = None,
        slots: int | None = None,  # noqa: ARG002 - Engine's signature
        callback_url: str | None = None,
    ) -> TaskView:
        assert self.template is not None, "no task drawn for this create"
        view = replace(
            self.template,
            model=model,
            kind=kind,
            request_json=compact_request(request),
            video=video,
            face=face,
            account=account,
            external_id=external_id,
            callback_url=callback_url,
        )
        self.views.insert(0, view)
        return view

    def poll_task(
        self,
        task_id: str,
        *,
        account: str | None = None,  # noqa: ARG002 - Engine's signature: every drawn task is the caller's
        external: bool = False,
    ) -> TaskView:
        for view in self.views:
            if view.id == task_id or (external and view.external_id == task_id):
                return view
        raise TaskNotFound(task_id)

    def list_tasks(
        self,
        *,
        account: str | None = None,  # noqa: ARG002 - Engine's signature: every drawn task is the caller's
        kind: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[TaskView]:
        chosen = [v for v in self.views if kind is None or v.kind == kind]
        return chosen[offset : None if limit is None else offset + limit]

    def task(self, task_id: str) -> TaskView:
        return self.poll_task(task_id)

    def tasks(self) -> list[TaskView]:
        return list(reversed(self.views))


def _face(contract: Contract, engine: Engine) -> Face:
    face = make_face(contract.face)
    face.attach(engine)
    return face


def _path(op: Operation, params: Mapping[str, str]) -> str:
    path = op.path
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    return path


def _answer(
    face: Face,
    engine: Engine,
    op: Operation,
    base: str,
    *,
    params: Mapping[str, str] | None = None,
    query: Mapping[str, Any] | None = None,
    body: Any = None,
) -> ApiResponse:
    """The face's own answer to one request (its handler, no auth or fault in between)."""
    url = base + _path(op, params or {}) + ("?" + urlencode(query) if query else "")
    headers = [("content-type", "application/json")] if body is not None else []
    request = ApiRequest.build(op.method, url, headers, dump_json(body) if body is not None else b"")
    return face.handlers()[op.id](engine, request, params or {}, "").response


# -- drawing a task -------------------------------------------------------------------------------


def _internal_status(contract: Contract, wire: str) -> str:
    for internal, spelled in contract.status_projection.items():
        if spelled == wire:
            return internal
    raise InvalidArgument(
        f"unknown task status {wire!r}; face {contract.face!r} says {sorted(contract.status_projection.values())}"
    )


def _progress_range(contract: Contract, internal: str, history: int) -> tuple[int, int]:
    """Progress the engine reports: 0 before work, 1..99 while working, 100 when done."""
    lifecycle = contract.lifecycle
    if internal == lifecycle["initial"]:
        return 0, 0
    if internal in lifecycle["terminal"]:
        return (100, 100) if internal == _SUCCEEDED else ((0, 0) if history < 3 else (1, 99))
    return 1, 99


def _reachable(contract: Contract, goal: set[str]) -> set[str]:
    """Statuses from which some status in ``goal`` can be reached."""
    return {s for s, after in successors(contract, wire=False).items() if s in goal or after & goal}


@st.composite
def _path_to(draw: DrawFn, contract: Contract, goal: Sequence[str]) -> list[str]:
    """A walk along the lifecycle's transitions from the initial status to one of ``goal``."""
    lifecycle = contract.lifecycle
    can_end = _reachable(contract, set(goal))
    path = [lifecycle["initial"]]
    while path[-1] not in goal:
        nexts = [t["to"] for t in lifecycle["transitions"] if t["from"] == path[-1] and t["to"] in can_end]
        if not nexts or path[-1] in lifecycle["terminal"]:
            raise InvalidArgument(f"no transition from {path[-1]!r} reaches {list(goal)}")
        path.append(draw(st.sampled_from(sorted(nexts))))
    return path


@st.composite
def _outcome(draw: DrawFn, contract: Contract) -> Outcome:
    reason = draw(st.sampled_from(sorted(contract.task_failures)))
    return Outcome.fail(reason, draw(st.one_of(st.none(), _DETAILS)))


@st.composite
def _video(draw: DrawFn, model: ModelContract, request: Mapping[str, Any]) -> VideoSpec:
    sizes = model.output["frame_sizes"]
    size = draw(st.sampled_from(sorted(sizes)))
    width, height = sizes[size][draw(st.sampled_from(sorted(sizes[size])))]
    duration = request.get("duration", model.defaults.get("duration", 5))
    return VideoSpec(duration=int(float(duration)), width=width, height=height, fps=int(model.output["fps"]))


@dataclass(frozen=True)
class _Task:
    """What stays the same about one task across its answers."""

    id: str
    model: ModelContract
    kind: str
    body: Mapping[str, Any]  # as sent
    request: Mapping[str, Any]  # as accepted (the form's defaults applied)
    video: VideoSpec
    seed: int
    created_at: float
    outcome: Outcome
    external_id: str | None


@st.composite
def _task(draw: DrawFn, contract: Contract, model: ModelContract, kinds: Sequence[str] | None = None) -> _Task:
    kind = draw(st.sampled_from(sorted(kinds if kinds is not None else model.request_schemas)))
    # image URLs: the answers never show the image, and a URL costs nothing to make
    body = draw(_valid(contract.face, model.name, Pins(kind=kind, variant="url"))).body
    request = {**model.defaults, **body}
    return _Task(
        id=draw(task_ids(contract)),
        model=model,
        kind=kind,
        body=body,
        request=request,
        video=draw(_video(model, request)),
        seed=draw(st.integers(0, 2**31 - 1)),
        created_at=draw(st.integers(_TIME_ZERO * 1000, (_TIME_ZERO + 10**7) * 1000)) / 1000,
        outcome=draw(_outcome(contract)),
        external_id=draw(st.one_of(st.none(), _EXTERNAL_IDS)),
    )


def _view(task: _Task, path: Sequence[str], updated_at: float, progress: int) -> TaskView:
    internal = path[-1]
    return TaskView(
        id=task.id,
        model=task.model.name,
        kind=task.kind,
        status=Status(internal),
        progress=progress,
        created_at=task.created_at,
        updated_at=updated_at,
        video=task.video,
        seed=task.seed,
        polls=0,
        progression=Progression.manual(),
        outcome=task.outcome if internal == Status.FAILED.value else Outcome.succeed(),
        request_json=compact_request(task.request),
        history=tuple((Status(s), task.created_at if i == 0 else updated_at) for i, s in enumerate(path)),
        external_id=task.external_id,
    )


@st.composite
def _view_in(draw: DrawFn, contract: Contract, task: _Task, statuses: Any) -> TaskView:
    """``task`` in one status (drawn, or the wire status ``statuses`` names)."""
    lifecycle = contract.lifecycle
    internal = (
        draw(st.sampled_from(list(lifecycle["statuses"])))
        if statuses is None
        else _internal_status(contract, draw(as_strategy(statuses)))
    )
    path = draw(_path_to(contract, [internal]))
    updated = task.created_at if len(path) == 1 else task.created_at + draw(st.integers(0, 3600))
    lo, hi = _progress_range(contract, internal, len(path))
    return _view(task, path, updated, draw(st.integers(lo, hi)))


# -- responses ------------------------------------------------------------------------------------


def _json_operations(contract: Contract) -> list[str]:
    return sorted(op for op, spec in contract.operations.items() if spec.errors or _ok_schema(contract, op))


def _ok_schema(contract: Contract, operation: str) -> str | None:
    schema = contract.operations[operation].responses.get("200")
    return schema if schema in contract.response_schemas else None


def _field_paths(model: ModelContract) -> list[str]:
    """Field paths an error may name: every member of the request schemas, and the members of
    an item of each array of objects (``multi_prompt[0].prompt``)."""
    names: dict[str, None] = {}
    for schema in model.request_schemas.values():
        for name, sub in schema.get("properties", {}).items():
            names[name] = None
            items = sub.get("items")
            if isinstance(items, Mapping):
                names.update({f"{name}[0].{inner}": None for inner in items.get("properties", {})})
    return list(names)


@st.composite
def _error(draw: DrawFn, contract: Contract, operation: str, key: str, model: ModelContract) -> WireResponse:
    spec = contract.errors[key]
    template = spec.message
    param: str | None = None
    if "{param}" in template:
        param = draw(st.sampled_from(_field_paths(model)))
    elif "{task_id}" in template:
        param = draw(st.sampled_from([None, "task_id"]))
    rule = draw(st.sampled_from([r.id for r in model.rules] + ["schema:required"]))
    wait = None
    if spec.http_status == 429 and spec.retry_after is not None:
        wait = draw(st.one_of(st.just(spec.retry_after), st.integers(1, 120)))
    engine = _Scripted(draw(st.integers(0, 2**32 - 1)))
    answer = _face(contract, engine).error(
        key,
        param=param,
        detail=draw(_DETAILS),
        rule=rule,
        task_id=repr(draw(task_ids(contract))),
        retry_after=None if wait is None else float(math.ceil(wait)),
    )
    return WireResponse(operation, answer.status, answer.headers, answer.payload, contract.error_envelope)


@st.composite
def _query(draw: DrawFn, op: Operation, ids: Sequence[str] = ()) -> dict[str, Any]:
    """Query parameters the operation accepts, drawn from its contract schemas; a parameter
    whose schema says it holds a task id (``x-content: task_id``, a list's cursor) names one
    of the listed tasks ``ids``, or is left out when there are none."""
    out: dict[str, Any] = {}
    for name, schema in op.query.items():
        if schema.get("x-content") == "task_id":
            if ids and (name in op.required_query or draw(st.booleans())):
                out[name] = draw(st.sampled_from(list(ids)))
            continue
        if name in op.required_query or draw(st.booleans()):
            clean = {k: v for k, v in schema.items() if k not in ("default", "description")}
            out[name] = draw(field_values(clean, f"query/{name}", st.nothing()))
    return out


@st.composite
def _ok(draw: DrawFn, contract: Contract, op: Operation, model: ModelContract, statuses: Any) -> WireResponse:
    engine = _Scripted(draw(st.integers(0, 2**32 - 1)))
    face = _face(contract, engine)
    base = draw(_base_urls(contract))
    kinds = [op.kind] if op.kind is not None and op.kind in model.request_schemas else None
    if op.verb == _CREATE:
        task = draw(_task(contract, model, kinds))
        engine.template = draw(_view_in(contract, task, statuses))
        answer = _answer(face, engine, op, base, body=task.body)
    elif op.verb == _GET:
        task = draw(_task(contract, model))
        view = draw(_view_in(contract, task, statuses))
        engine.views.append(view)
        answer = _answer(face, engine, op, base, params={"task_id": view.id})
    elif op.verb == _LIST:
        for _ in range(draw(st.integers(0, 3))):
            engine.views.append(draw(_view_in(contract, draw(_task(contract, model, kinds)), statuses)))
        answer = _answer(face, engine, op, base, query=draw(_query(op, [view.id for view in engine.views])))
    else:
        answer = _answer(face, engine, op, base, query=draw(_query(op)))
    if answer.status != 200:
        raise AssertionError(f"{contract.face} face refused a request the strategy built: {answer.payload!r:.300}")
    schema = op.responses["200"]
    return WireResponse(op.id, 200, answer.headers, answer.payload, schema)


_TASK_VERBS = (_CREATE, _GET, _LIST)


@st.composite
def _responses(draw: DrawFn, face: str | None, model: Any, operations: Any, statuses: Any, errors: Any) -> WireResponse:
    contract = contract_for(face)
    known = _json_operations(contract)
    operation = draw(st.sampled_from(known)) if operations is None else draw(as_strategy(operations))
    if operation not in known:
        raise InvalidArgument(f"unknown operation {operation!r}; JSON operations of face {contract.face!r}: {known}")
    op = contract.operations[operation]
    if model is None and op.kind is not None and op.verb in (_CREATE, _LIST):
        # an operation of one request kind: a model that serves it
        model = st.sampled_from(sorted(n for n, m in contract.models.items() if op.kind in m.request_schemas))
    found = draw_model(draw, model, face)
    catalogue = list(op.errors)
    options: list[str] = []
    answerable = op.kind is None or op.kind in found.request_schemas or op.verb != _CREATE
    if (
        errors is None
        and _ok_schema(contract, operation)
        and (statuses is None or op.verb in _TASK_VERBS)
        and answerable
    ):
        options.append("ok")
    if statuses is None:
        options.extend(catalogue)
    if errors is not None:
        key = draw(as_strategy(errors))
        if key not in catalogue:
            raise InvalidArgument(f"{operation} does not answer {key!r}; its errors are {catalogue}")
        options = [key]
    if not options:
        raise InvalidArgument(f"{operation} has no response matching statuses={statuses!r}")
    choice = draw(choices(tuple(options)))
    if choice != "ok":
        return draw(_error(contract, operation, choice, found))
    return draw(_ok(contract, op, found, statuses))


def responses(
    operations: str | SearchStrategy[str] | None = None,
    *,
    face: str | None = None,
    statuses: str | SearchStrategy[str] | None = None,
    errors: str | SearchStrategy[str] | None = None,
    model: str | SearchStrategy[str] | None = None,
) -> SearchStrategy[WireResponse]:
    """Answers a face can give, as :class:`WireResponse`: for downstream parsing tests.

    ``face`` picks the dialect (default: the first registered face, the gateway).
    ``operations`` narrows the operation (the face's ids: ``"video_generations.get"``;
    ``"text2video.get"``, ``"image2video.list"``, ``"account.costs"`` on Kling's own API;
    ``"media.get"`` -- its JSON errors); ``statuses`` asks for successful answers whose task is
    in that wire status (``"queued"``... on the gateway, ``"submitted"``, ``"processing"``,
    ``"succeed"``, ``"failed"`` on Kling's own API); ``errors`` for one catalogued error key
    (``"rate_limited"`` comes with ``Retry-After`` where the catalogue says the face sends
    one). Each takes a fixed value or a strategy. Bodies are the face's own rendering of a
    drawn task: result link exactly when succeeded, failure exactly when failed, progress and
    timestamps as the fake reports them.

    Shrinks towards the first operation's success answer, the initial status and small values.

    >>> from hypothesis import given
    >>> @given(responses("video_generations.get", statuses="completed"))
    ... def test(answer): assert answer.body["url"].endswith(".mp4")
    >>> test()
    >>> @given(responses("text2video.get", face="official", statuses="succeed"))
    ... def test_official(answer): assert answer.body["data"]["task_result"]["videos"][0]["url"].endswith(".mp4")
    >>> test_official()
    """
    return _responses(face, model, operations, statuses, errors)


@st.composite
def _timelines(draw: DrawFn, face: str | None, model: Any, outcomes: Any, polls: Any) -> list[dict[str, Any]]:
    contract = contract_for(face)
    found = draw_model(draw, model, face)
    lifecycle = contract.lifecycle
    terminal = list(lifecycle["terminal"])
    if outcomes is not None:
        wanted = _internal_status(contract, draw(as_strategy(outcomes)))
        if wanted not in terminal:
            raise InvalidArgument(f"outcomes must be terminal statuses, got {wanted!r}")
        terminal = [wanted]
    path = draw(_path_to(contract, terminal))
    most = 4 if polls is None else draw(as_strategy(polls))
    task = draw(_task(contract, found))
    engine = _Scripted(draw(st.integers(0, 2**32 - 1)))
    face_obj = _face(contract, engine)
    base = draw(_base_urls(contract))
    get = next(op for op in contract.operations.values() if op.verb == _GET and op.kind in (task.kind, None))
    out: list[dict[str, Any]] = []
    updated, progress = task.created_at, 0
    for step in range(len(path)):
        if step:
            updated += draw(st.integers(0, 600))
        internal = path[step]
        final = internal in lifecycle["terminal"]
        for _ in range(1 if final else draw(st.integers(1, max(1, most)))):
            lo, hi = _progress_range(contract, internal, len(path))
            progress = draw(st.integers(max(lo, min(progress, hi)), hi))
            engine.views[:] = [_view(task, path[: step + 1], updated, progress)]
            answer = _answer(face_obj, engine, get, base, params={"task_id": task.id})
            if answer.status != 200:
                raise AssertionError(f"{contract.face} face refused a poll the strategy built: {answer.payload!r:.300}")
            out.append(answer.payload)
    return out


def task_timelines(
    *,
    face: str | None = None,
    outcomes: str | SearchStrategy[str] | None = None,
    polls: int | SearchStrategy[int] | None = None,
    model: str | SearchStrategy[str] | None = None,
) -> SearchStrategy[list[dict[str, Any]]]:
    """What a client polling one task sees: a list of query answers (the face's ``task.get``
    operation, in its envelope: the whole body a client decodes).

    Statuses follow ``contracts/lifecycle.json``: each consecutive pair is the same status or
    an allowed transition, the first is the initial status, the last is terminal and appears
    once. The task id and creation time never change, the update time and progress never go
    down, the result link appears exactly in the succeeded answer, the failure exactly in the
    failed one. ``outcomes`` narrows the final wire status (``"completed"``/``"failed"`` on
    the gateway, ``"succeed"``/``"failed"`` on Kling's own API); ``polls`` caps how often one
    non-final status is seen (default 4). Read the answers with the face's contract reader
    (``load_contract(face).reader.get("status", body)``) to stay face-neutral.

    Shrinks towards the shortest path, one poll per status and equal timestamps.

    >>> from hypothesis import given
    >>> @given(task_timelines(outcomes="failed"))
    ... def test(timeline): assert timeline[-1]["error"] is not None
    >>> test()
    >>> @given(task_timelines(face="official", outcomes="failed"))
    ... def test_official(timeline): assert timeline[-1]["data"]["task_status_msg"]
    >>> test_official()
    """
    return _timelines(face, model, outcomes, polls)
