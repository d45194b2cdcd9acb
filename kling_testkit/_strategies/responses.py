"""Gateway response bodies: create, query in every status, every catalogued error; timelines.

Values are built from the contract: the task-id format (``index.json`` ``task_id``), the status
projection and the lifecycle's transitions, the media path and link base URLs, the model's
output table (fps, frame sizes) and durations, the failure reasons (``task_failures``) and the
error catalogue (status, type, code, message template, ``Retry-After``). Constants of the
response schemas (``object``, ``format``) are read from the schemas themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn, SearchStrategy

from kling_testkit._lifecycle import successors
from kling_testkit._strategies.common import as_strategy, model_names, resolve_model
from mockserver.contract import Contract, load_contract

_TIME_ZERO = 1_700_000_000  # a realistic Unix-seconds epoch to start from (2023-11)
_DETAILS = st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1, max_size=40)


@dataclass(frozen=True, slots=True)
class WireResponse:
    """One gateway answer: operation id, HTTP status, headers, JSON body, and the contract
    schema (``responses/...schema.json``) it validates against.

    >>> WireResponse("video_generations.get", 200, (), {}, "responses/x.schema.json").status
    200
    """

    operation: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: dict[str, Any]
    schema: str


def _json_operations(contract: Contract) -> list[str]:
    return sorted(op for op, spec in contract.operations.items() if spec.errors or _ok_schema(contract, op))


def _ok_schema(contract: Contract, operation: str) -> str | None:
    schema = contract.operations[operation].responses.get("200")
    return schema if schema in contract.response_schemas else None


def _const(contract: Contract, schema: str, name: str) -> Any:
    return contract.response_schemas[schema]["properties"][name]["const"]


def task_ids(contract: Contract | None = None) -> SearchStrategy[str]:
    """Task ids in the contract's format (``task_`` + 32 alphanumerics); shrinks to all ``A``.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=20, deadline=None)
    ... @given(task_ids())
    ... def test_ids(task_id):
    ...     assert task_id.startswith("task_") and len(task_id) == 37
    >>> test_ids()
    """
    return st.deferred(lambda: _task_ids(contract or load_contract()))


def _task_ids(contract: Contract) -> SearchStrategy[str]:
    spec = contract.index["task_id"]
    return st.text(spec["alphabet"], min_size=spec["length"], max_size=spec["length"]).map(
        lambda tail: spec["prefix"] + tail
    )


def _base_urls(contract: Contract) -> SearchStrategy[str]:
    return st.sampled_from([*contract.index["base_urls"], "http://127.0.0.1:8000", "http://localhost"])


@st.composite
def _video(draw: DrawFn, model_name: str) -> dict[str, Any]:
    model = resolve_model(model_name)
    sizes = model.output["frame_sizes"]
    size = draw(st.sampled_from(sorted(sizes)))
    width, height = sizes[size][draw(st.sampled_from(sorted(sizes[size])))]
    duration_schema = model.request_schemas[next(iter(model.request_schemas))]["properties"]["duration"]
    return {
        "duration": draw(st.sampled_from(list(duration_schema.get("enum", [model.defaults["duration"]])))),
        "fps": int(model.output["fps"]),
        "width": width,
        "height": height,
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@st.composite
def _failure(draw: DrawFn, contract: Contract) -> dict[str, Any]:
    reason = contract.task_failures[draw(st.sampled_from(sorted(contract.task_failures)))]
    message = draw(st.one_of(st.just(reason["message"]), _DETAILS))
    return {"message": message, "type": reason["type"], "param": None, "code": reason["code"]}


def _wire_status(contract: Contract, internal: str) -> str:
    return contract.status_projection[internal]


def _internal_status(contract: Contract, wire: str) -> str:
    for internal, spelled in contract.status_projection.items():
        if spelled == wire:
            return internal
    raise InvalidArgument(
        f"unknown task status {wire!r}; the gateway says {sorted(contract.status_projection.values())}"
    )


def _progress_range(contract: Contract, internal: str, history: int) -> tuple[int, int]:
    """Progress the engine reports: 0 before work, 1..99 while working, 100 when done."""
    lifecycle = contract.lifecycle
    if internal == lifecycle["initial"]:
        return 0, 0
    if internal in lifecycle["terminal"]:
        return (100, 100) if internal == _succeeded(contract) else ((0, 0) if history < 3 else (1, 99))
    return 1, 99


def _succeeded(contract: Contract) -> str:
    """The terminal status whose projection carries the result link (``completed``)."""
    schema = contract.response_schemas["responses/video_generations.get.response.schema.json"]
    for clause in schema.get("allOf", []):
        wire = clause.get("if", {}).get("properties", {}).get("status", {}).get("const")
        if wire is not None and "url" in clause.get("then", {}).get("properties", {}):
            return _internal_status(contract, wire)
    raise InvalidArgument("the query schema names no status that carries the url")


def _query_body(
    contract: Contract,
    *,
    task_id: str,
    internal: str,
    progress: int,
    created_at: int,
    updated_at: int,
    url: str | None,
    video: dict[str, Any] | None,
    error: dict[str, Any] | None,
) -> dict[str, Any]:
    schema = "responses/video_generations.get.response.schema.json"
    return {
        "task_id": task_id,
        "status": _wire_status(contract, internal),
        "url": url,
        "format": _const(contract, schema, "format"),
        "metadata": video,
        "error": error,
        "progress": progress,
        "created_at": created_at,
        "updated_at": updated_at,
    }


def _media_url(contract: Contract, base: str, task_id: str) -> str:
    return base + str(contract.index["media"]["path"]).replace("{file}", f"{task_id}.mp4")


@st.composite
def _query(draw: DrawFn, contract: Contract, model_name: str, statuses: Any) -> WireResponse:
    internal = (
        draw(st.sampled_from(list(contract.lifecycle["statuses"])))
        if statuses is None
        else _internal_status(contract, draw(as_strategy(statuses)))
    )
    task_id = draw(task_ids(contract))
    created = draw(st.integers(_TIME_ZERO, _TIME_ZERO + 10**7))
    updated = created + draw(st.integers(0, 3600))
    lo, hi = _progress_range(contract, internal, draw(st.sampled_from([2, 3])))
    done = internal == _succeeded(contract)
    failed = internal in contract.lifecycle["terminal"] and not done
    body = _query_body(
        contract,
        task_id=task_id,
        internal=internal,
        progress=draw(st.integers(lo, hi)),
        created_at=created,
        updated_at=updated,
        url=_media_url(contract, draw(_base_urls(contract)), task_id) if done else None,
        video=draw(_video(model_name)) if done else None,
        error=draw(_failure(contract)) if failed else None,
    )
    return WireResponse(
        "video_generations.get", 200, _JSON, body, "responses/video_generations.get.response.schema.json"
    )


_JSON = (("content-type", "application/json"),)


@st.composite
def _create(draw: DrawFn, contract: Contract, model_name: str, statuses: Any) -> WireResponse:
    query = draw(_query(contract, model_name, statuses)).body
    schema = "responses/video_generations.create.response.schema.json"
    body = {
        "id": query["task_id"],
        "task_id": query["task_id"],
        "object": _const(contract, schema, "object"),
        "model": model_name,
        "status": query["status"],
        "progress": query["progress"],
        "created_at": query["created_at"],
    }
    return WireResponse("video_generations.create", 200, _JSON, body, schema)


def _field_paths(model_name: str) -> list[str]:
    model = resolve_model(model_name)
    names: dict[str, None] = {}
    for schema in model.request_schemas.values():
        for name in schema.get("properties", {}):
            names[name] = None
    return [*names, "multi_prompt[0].prompt", "multi_prompt[1].duration"]


@st.composite
def _error(draw: DrawFn, contract: Contract, operation: str, key: str, model_name: str) -> WireResponse:
    spec = contract.errors[key]
    template = spec.message
    param: str | None = None
    if "{param}" in template:
        param = draw(st.sampled_from(_field_paths(model_name)))
    elif "{task_id}" in template:
        param = draw(st.sampled_from([None, "task_id"]))
    rule = draw(st.sampled_from([r.id for r in resolve_model(model_name).rules] + ["schema:required"]))
    message = spec.render_message(detail=draw(_DETAILS), param=param, rule=rule, task_id=repr(draw(task_ids(contract))))
    headers = list(_JSON)
    if spec.http_status == 429:
        wait = draw(st.one_of(st.just(spec.retry_after or 1), st.integers(1, 120)))
        headers.append(("retry-after", str(math.ceil(wait))))
    body = {"error": {"message": message, "type": spec.type, "param": param, "code": spec.code}}
    return WireResponse(operation, spec.http_status, tuple(headers), body, contract.error_envelope)


@st.composite
def _responses(draw: DrawFn, model: Any, operations: Any, statuses: Any, errors: Any) -> WireResponse:
    contract = load_contract()
    model_name = draw(as_strategy(model))
    resolve_model(model_name)
    known = _json_operations(contract)
    operation = draw(st.sampled_from(known)) if operations is None else draw(as_strategy(operations))
    if operation not in known:
        raise InvalidArgument(f"unknown operation {operation!r}; JSON operations of the contract: {known}")
    catalogue = list(contract.operations[operation].errors)
    choices: list[str] = []
    if errors is None and _ok_schema(contract, operation):
        choices.append("ok")
    if statuses is None:
        choices.extend(catalogue)
    if errors is not None:
        key = draw(as_strategy(errors))
        if key not in catalogue:
            raise InvalidArgument(f"{operation} does not answer {key!r}; its errors are {catalogue}")
        choices = [key]
    if not choices:
        raise InvalidArgument(f"{operation} has no response matching statuses={statuses!r}")
    choice = draw(st.sampled_from(choices))
    if choice != "ok":
        return draw(_error(contract, operation, choice, model_name))
    if operation == "video_generations.create":
        return draw(_create(contract, model_name, statuses))
    return draw(_query(contract, model_name, statuses))


def responses(
    operations: str | SearchStrategy[str] | None = None,
    *,
    statuses: str | SearchStrategy[str] | None = None,
    errors: str | SearchStrategy[str] | None = None,
    model: str | SearchStrategy[str] | None = None,
) -> SearchStrategy[WireResponse]:
    """Answers the gateway can give, as :class:`WireResponse`: for downstream parsing tests.

    ``operations`` (``"video_generations.create"``, ``"video_generations.get"``,
    ``"media.get"`` -- its JSON errors) narrows the operation; ``statuses`` asks for successful
    answers whose task is in that wire status (``"queued"``, ``"in_progress"``,
    ``"completed"``, ``"failed"``); ``errors`` for one catalogued error key (``"rate_limited"``
    comes with ``Retry-After``). Each takes a fixed value or a strategy. Bodies follow the
    contract: ``url`` and ``metadata`` exactly when completed, ``error`` exactly when failed,
    progress 0 / 1-99 / 100 as the fake reports it.

    Shrinks towards the first operation's success answer, the initial status and small values.

    >>> from hypothesis import given
    >>> @given(responses("video_generations.get", statuses="completed"))
    ... def test(answer): assert answer.body["url"].endswith(".mp4")
    >>> test()
    """
    return _responses(model if model is not None else model_names(), operations, statuses, errors)


def _reachable(contract: Contract, goal: set[str]) -> set[str]:
    """Statuses from which some status in ``goal`` can be reached."""
    return {s for s, after in successors(contract, wire=False).items() if s in goal or after & goal}


@st.composite
def _timelines(draw: DrawFn, model: Any, outcomes: Any, polls: Any) -> list[dict[str, Any]]:
    contract = load_contract()
    model_name = draw(as_strategy(model))
    resolve_model(model_name)
    lifecycle = contract.lifecycle
    terminal = list(lifecycle["terminal"])
    if outcomes is not None:
        wanted = _internal_status(contract, draw(as_strategy(outcomes)))
        if wanted not in terminal:
            raise InvalidArgument(f"outcomes must be terminal statuses, got {wanted!r}")
        terminal = [wanted]
    can_end = _reachable(contract, set(terminal))
    path = [lifecycle["initial"]]
    while path[-1] not in lifecycle["terminal"]:
        nexts = [t["to"] for t in lifecycle["transitions"] if t["from"] == path[-1] and t["to"] in can_end]
        if path[-1] not in terminal and not nexts:
            raise InvalidArgument(f"no transition from {path[-1]!r} reaches {terminal}")
        path.append(draw(st.sampled_from(sorted(nexts))))
    most = 4 if polls is None else draw(as_strategy(polls))
    task_id = draw(task_ids(contract))
    created = draw(st.integers(_TIME_ZERO, _TIME_ZERO + 10**7))
    base = draw(_base_urls(contract))
    done = _succeeded(contract)
    video = draw(_video(model_name))
    error = draw(_failure(contract))
    out: list[dict[str, Any]] = []
    updated, progress = created, 0
    for step, internal in enumerate(path):
        if step:
            updated += draw(st.integers(0, 600))
        final = internal in lifecycle["terminal"]
        for _ in range(1 if final else draw(st.integers(1, max(1, most)))):
            lo, hi = _progress_range(contract, internal, len(path))
            progress = draw(st.integers(max(lo, min(progress, hi)), hi))
            out.append(
                _query_body(
                    contract,
                    task_id=task_id,
                    internal=internal,
                    progress=progress,
                    created_at=created,
                    updated_at=updated,
                    url=_media_url(contract, base, task_id) if internal == done else None,
                    video=video if internal == done else None,
                    error=error if final and internal != done else None,
                )
            )
    return out


def task_timelines(
    *,
    outcomes: str | SearchStrategy[str] | None = None,
    polls: int | SearchStrategy[int] | None = None,
    model: str | SearchStrategy[str] | None = None,
) -> SearchStrategy[list[dict[str, Any]]]:
    """What a client polling one task sees: a list of query bodies (``video_generations.get``).

    Statuses follow ``contracts/lifecycle.json``: each consecutive pair is the same status or
    an allowed transition, the first is the initial status, the last is terminal and appears
    once. The task id and ``created_at`` never change, ``updated_at`` and ``progress`` never go
    down, ``url``/``metadata`` appear exactly in the completed answer, ``error`` exactly in
    the failed one. ``outcomes`` narrows the final wire status (``"completed"``/``"failed"``);
    ``polls`` caps how often one non-final status is seen (default 4).

    Shrinks towards the shortest path, one poll per status and equal timestamps.

    >>> from hypothesis import given
    >>> @given(task_timelines(outcomes="failed"))
    ... def test(timeline): assert timeline[-1]["error"] is not None
    >>> test()
    """
    return _timelines(model if model is not None else model_names(), outcomes, polls)
