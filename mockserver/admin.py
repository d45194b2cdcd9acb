"""The admin API (``/__mock__/...``): the engine's control verbs over HTTP, same names.

Out-of-process clients (the live-server fixture, non-Python test suites) drive the fake with
these; in-process code calls the same-named :class:`~mockserver.engine.Engine` methods. The
table below is the whole API and is what the README documents.

=======  ===================================  ==========================================
method   path                                 engine
=======  ===================================  ==========================================
POST     /__mock__/reset                      ``reset()``
GET      /__mock__/clock                      ``clock.now()``
POST     /__mock__/clock/advance {seconds}    ``advance_clock(seconds)``
GET      /__mock__/journal                    ``journal.entries()`` (``?operation=&task_id=``)
GET      /__mock__/journal.jsonl              the same entries as JSON Lines (one ``to_json()`` per line)
GET      /__mock__/warnings                   ``journal.warnings()``
GET      /__mock__/tasks                      ``tasks()``
GET      /__mock__/tasks/{id}                 ``task(id)``
POST     /__mock__/tasks/{id}/advance         ``advance(id)``
POST     /__mock__/tasks/{id}/progression     ``set_progression(p, task_id=id)``
POST     /__mock__/tasks/{id}/outcome         ``set_outcome(o, task_id=id)``
GET      /__mock__/policies                   ``policies()``
POST     /__mock__/progression                ``set_progression(p)``
POST     /__mock__/outcome                    ``set_outcome(o)``
POST     /__mock__/outcome/rules              ``add_outcome_rule(rule)``
GET      /__mock__/faults                     ``faults()``
POST     /__mock__/faults                     ``arm_fault(plan)``
DELETE   /__mock__/faults                     ``clear_faults()``
GET      /__mock__/callbacks                  ``deliveries()`` (callbacks queued, with attempts)
=======  ===================================  ==========================================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from mockserver.engine import Engine, FaultPlan, Outcome, OutcomeRule, Progression, TaskNotFound
from mockserver.http import ApiRequest, ApiResponse, dump_json, load_json

PREFIX = "/__mock__"
AdminHandler = Callable[[Engine, ApiRequest, dict[str, str]], Any]


class AdminError(Exception):
    """A bad admin call; rendered as the face's ``invalid_admin_request`` error."""


def _body(request: ApiRequest, engine: Engine) -> Any:
    if not request.body.strip():
        return {}
    try:
        # The API's nesting limit: a deep outcome-rule schema overflowed the schema checker's stack.
        return load_json(request.body, engine.max_json_depth, engine.max_json_values)
    except ValueError as exc:
        raise AdminError(f"body is not JSON: {exc}") from None


def _object(request: ApiRequest, engine: Engine) -> dict[str, Any]:
    data = _body(request, engine)
    if not isinstance(data, dict):
        raise AdminError("body must be a JSON object")
    return data


def _advance_clock(engine: Engine, request: ApiRequest, _: dict[str, str]) -> Any:
    data = _object(request, engine)
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise AdminError('clock/advance needs {"seconds": <number >= 0>}')
    return {"now": engine.advance_clock(seconds)}


def _journal(engine: Engine, request: ApiRequest, _: dict[str, str]) -> Any:
    query = parse_qs(request.query)
    entries = engine.journal.entries(
        operation=query.get("operation", [None])[0], task_id=query.get("task_id", [None])[0]
    )
    return {
        "entries": [e.to_json() for e in entries],
        "dropped": engine.journal.dropped,
        "limit": engine.journal.limit,
    }


def _journal_jsonl(engine: Engine, request: ApiRequest, _: dict[str, str]) -> Any:
    # The record format `kling-testkit check` reads; out-of-process suites fetch and re-check it.
    query = parse_qs(request.query)
    entries = engine.journal.entries(
        operation=query.get("operation", [None])[0], task_id=query.get("task_id", [None])[0]
    )
    body = b"".join(dump_json(e.to_json()) + b"\n" for e in entries)
    return ApiResponse(200, (("content-type", "application/x-ndjson"), ("content-length", str(len(body)))), body)


def _warnings(engine: Engine, _request: ApiRequest, _: dict[str, str]) -> Any:
    return {"warnings": [{"seq": e.seq, "operation": e.operation, **w.to_json()} for e, w in engine.journal.warnings()]}


def _reset(engine: Engine, _request: ApiRequest, _: dict[str, str]) -> Any:
    engine.reset()
    return {"reset": True}


def _set_progression(engine: Engine, request: ApiRequest, params: dict[str, str]) -> Any:
    progression = Progression.from_json(_object(request, engine))
    engine.set_progression(progression, task_id=params.get("task_id"))
    return progression.to_json()


def _set_outcome(engine: Engine, request: ApiRequest, params: dict[str, str]) -> Any:
    outcome = Outcome.from_json(_object(request, engine))
    engine.set_outcome(outcome, task_id=params.get("task_id"))
    return outcome.to_json()


def _add_rule(engine: Engine, request: ApiRequest, _: dict[str, str]) -> Any:
    rule = OutcomeRule.from_json(_object(request, engine))
    engine.add_outcome_rule(rule)
    return rule.to_json()


def _arm(engine: Engine, request: ApiRequest, _: dict[str, str]) -> Any:
    return {"id": engine.arm_fault(FaultPlan.from_json(_object(request, engine)))}


def _clear_faults(engine: Engine, _request: ApiRequest, _: dict[str, str]) -> Any:
    engine.clear_faults()
    return {"faults": []}


ROUTES: tuple[tuple[str, str, AdminHandler], ...] = (
    ("POST", "/reset", _reset),
    (
        "GET",
        "/clock",
        lambda e, r, p: {"now": e.clock.now(), "virtual": bool(getattr(e.clock, "virtual", False))},
    ),
    ("POST", "/clock/advance", _advance_clock),
    ("GET", "/journal", _journal),
    ("GET", "/journal.jsonl", _journal_jsonl),
    ("GET", "/warnings", _warnings),
    ("GET", "/tasks", lambda e, r, p: {"tasks": [t.to_json() for t in e.tasks()]}),
    ("GET", "/tasks/{task_id}", lambda e, r, p: e.task(p["task_id"]).to_json()),
    ("POST", "/tasks/{task_id}/advance", lambda e, r, p: e.advance(p["task_id"]).to_json()),
    ("POST", "/tasks/{task_id}/progression", _set_progression),
    ("POST", "/tasks/{task_id}/outcome", _set_outcome),
    ("GET", "/policies", lambda e, r, p: e.policies()),
    ("POST", "/progression", _set_progression),
    ("POST", "/outcome", _set_outcome),
    ("POST", "/outcome/rules", _add_rule),
    ("GET", "/faults", lambda e, r, p: {"faults": e.faults()}),
    ("POST", "/faults", _arm),
    ("DELETE", "/faults", _clear_faults),
    ("GET", "/callbacks", lambda e, r, p: {"callbacks": [d.to_json() for d in e.deliveries()]}),
)

_COMPILED = tuple(
    (
        method,
        re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(PREFIX + path))),
        handler,
    )
    for method, path, handler in ROUTES
)


def dispatch(engine: Engine, request: ApiRequest, error: Callable[..., ApiResponse]) -> ApiResponse:
    """Run an admin call; ``error(key, detail=...)`` renders failures in the face's format."""
    allowed = []
    for method, pattern, handler in _COMPILED:
        found = pattern.fullmatch(request.path)
        if found is None:
            continue
        if request.method not in (method, "HEAD" if method == "GET" else method):
            allowed.append(method)
            continue
        try:
            result = handler(engine, request, found.groupdict())
            return result if isinstance(result, ApiResponse) else ApiResponse.json(200, result)
        except TaskNotFound as exc:
            return error("task_not_exist", param="task_id", task_id=repr(exc.task_id[:80]))
        except (AdminError, ValueError) as exc:
            return error("invalid_admin_request", detail=str(exc))
    if allowed:
        return error(
            "method_not_allowed",
            detail=f"{request.method} not allowed; allowed: {', '.join(allowed)}",
            headers=(("allow", ", ".join(allowed)),),
        )
    return error("not_found", detail=f"{request.method} {request.path[:200]}")
