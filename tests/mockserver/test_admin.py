"""The admin API: every verb works over HTTP and has the same-named engine method."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mock_bodies import AUTH, CREATE, t2v

from mockserver import Engine, FaultPlan, Service, VirtualClock
from mockserver.admin import ROUTES


def admin(service: Service, method: str, path: str, json: Any = None, headers: tuple[tuple[str, str], ...] = ()) -> Any:
    return service.handle_simple(method, "/__mock__" + path, json, headers)


def _task(service: Service) -> str:
    task_id: str = service.handle_simple("POST", CREATE, t2v(), AUTH).payload["task_id"]
    return task_id


def test_every_admin_route_is_documented_in_the_readme_and_the_module() -> None:
    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text(encoding="utf-8")
    import mockserver.admin as module

    for method, path, _ in ROUTES:
        documented = re.sub(r"\{\w+\}", "{id}", path)
        assert f"/__mock__{documented}" in readme.replace("{task_id}", "{id}"), (method, path)
        assert f"/__mock__{path.replace('{task_id}', '{id}')}" in (module.__doc__ or ""), (method, path)


# A row of the admin table whose engine column starts with a method: ``name(`` or ``attr.name(``.
ENGINE_METHOD = re.compile(r"^[A-Z]+\s+/__mock__\S*(?: \{\w+\})?\s+``(\w+)[(.]", re.MULTILINE)


def test_every_admin_verb_names_an_engine_method_that_exists() -> None:
    import mockserver.admin as module

    named = {m.group(1) for m in ENGINE_METHOD.finditer(module.__doc__ or "")}
    assert named <= {*dir(Engine), "clock", "journal"}
    assert len(named) >= 12


def test_clock_advance_moves_virtual_time(service: Service) -> None:
    start = admin(service, "GET", "/clock").payload
    moved = admin(service, "POST", "/clock/advance", {"seconds": 90}).payload
    assert start["virtual"] is True
    assert moved["now"] == start["now"] + 90 == service.engine.clock.now()


@pytest.mark.parametrize("body", [{}, {"seconds": "ten"}, {"seconds": -1}, {"seconds": True}, [1]])
def test_bad_admin_calls_get_400_naming_the_problem(body: Any, service: Service) -> None:
    response = admin(service, "POST", "/clock/advance", body)
    assert (response.status, response.payload["error"]["code"]) == (400, "invalid_request")


def test_tasks_progression_outcome_and_advance(service: Service) -> None:
    task_id = _task(service)
    assert [t["id"] for t in admin(service, "GET", "/tasks").payload["tasks"]] == [task_id]
    assert admin(service, "POST", f"/tasks/{task_id}/progression", {"mode": "manual"}).status == 200
    assert (
        admin(service, "POST", f"/tasks/{task_id}/outcome", {"status": "failed", "reason": "content_policy"}).status
        == 200
    )
    assert admin(service, "POST", f"/tasks/{task_id}/advance").payload["status"] == "processing"
    assert admin(service, "POST", f"/tasks/{task_id}/advance").payload["status"] == "failed"
    again = admin(service, "POST", f"/tasks/{task_id}/advance")
    assert again.status == 400
    assert "terminal states are final" in again.payload["error"]["message"]
    assert admin(service, "GET", f"/tasks/{task_id}").payload["history"][-1]["status"] == "failed"
    assert admin(service, "GET", "/tasks/task_nope").payload["error"]["code"] == "task_not_exist"


def test_default_policies_and_outcome_rules(service: Service) -> None:
    admin(service, "POST", "/progression", {"mode": "immediate"})
    admin(
        service,
        "POST",
        "/outcome/rules",
        {
            "when": {"properties": {"negative_prompt": {"pattern": "gore"}}, "required": ["negative_prompt"]},
            "outcome": {"status": "failed", "reason": "content_policy"},
        },
    )
    policies = admin(service, "GET", "/policies").payload
    assert policies["progression"]["mode"] == "immediate"
    assert len(policies["outcome_rules"]) == 1
    bad = service.handle_simple("POST", CREATE, t2v(negative_prompt="no gore"), AUTH).payload["task_id"]
    good = _task(service)
    assert service.engine.task(bad).status.value == "failed"
    assert service.engine.task(good).status.value == "succeeded"
    admin(service, "POST", "/outcome", {"status": "failed"})
    assert service.engine.task(_task(service)).outcome.reason == "generation_failed"


def test_faults_arm_list_and_clear(service: Service) -> None:
    armed = admin(
        service, "POST", "/faults", {"operation": "video_generations.create", "error": "rate_limited", "times": 1}
    )
    assert armed.payload == {"id": 1}
    assert service.handle_simple("POST", CREATE, t2v(), AUTH).status == 429
    listed = admin(service, "GET", "/faults").payload["faults"]
    assert (listed[0]["fired"], listed[0]["exhausted"]) == (1, True)
    assert admin(service, "DELETE", "/faults").payload == {"faults": []}
    assert admin(service, "POST", "/faults", {"operation": "nope", "error": "rate_limited"}).status == 400


def test_journal_and_warnings_filter_by_operation_and_task(service: Service) -> None:
    task_id = service.handle_simple("POST", CREATE, t2v(camera="pan"), AUTH).payload["task_id"]
    service.handle_simple("GET", f"{CREATE}/{task_id}", None, AUTH)
    gets = admin(service, "GET", "/journal?operation=video_generations.get").payload
    assert [e["operation"] for e in gets["entries"]] == ["video_generations.get"]
    assert len(admin(service, "GET", f"/journal?task_id={task_id}").payload["entries"]) == 2
    assert [w["param"] for w in admin(service, "GET", "/warnings").payload["warnings"]] == ["camera"]
    assert "/__mock__" not in repr(gets), "admin calls are not journaled as client traffic"


def test_reset_forgets_tasks_and_the_journal(service: Service) -> None:
    _task(service)
    assert admin(service, "POST", "/reset").payload == {"reset": True}
    assert admin(service, "GET", "/tasks").payload == {"tasks": []}
    assert admin(service, "GET", "/journal").payload["entries"] == []


def test_admin_token_is_required_when_set() -> None:
    service = Service(Engine(clock=VirtualClock()), admin_token="s3cret")
    assert admin(service, "GET", "/tasks").status == 403
    assert admin(service, "GET", "/tasks", headers=(("x-mock-admin-token", "wrong"),)).status == 403
    assert admin(service, "GET", "/tasks", headers=(("x-mock-admin-token", "s3cret"),)).status == 200


def test_admin_can_be_switched_off() -> None:
    service = Service(admin=False)
    assert admin(service, "POST", "/reset").status == 404


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/reset", 405), ("POST", "/nothing", 404)])
def test_unknown_admin_routes_and_methods(method: str, path: str, status: int, service: Service) -> None:
    assert admin(service, method, path).status == status


# Any JSON, and objects with each admin body's own keys holding any JSON: past the unknown-key
# check, so each field's validation meets values of every type.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_KEYS = ["mode", "polls", "seconds", "status", "reason", "message", "when", "outcome", *FaultPlan.__dataclass_fields__]
_BODIES = _JSON | st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=4)
_POSTS = sorted(path for method, path, _ in ROUTES if method == "POST" and path != "/reset")


@pytest.mark.parametrize("path", _POSTS)
@settings(max_examples=60)
@given(body=_BODIES)
def test_any_json_body_gets_an_answer_or_a_400_never_an_exception(path: str, body: Any) -> None:
    # Every refusal is a ValueError or AdminError rendered as 400; a TypeError would now escape
    # as the bug it is (the admin API no longer turns every TypeError into a 400).
    service = Service(Engine(clock=VirtualClock()))
    task_id = _task(service)
    response = admin(service, "POST", path.replace("{task_id}", task_id), body)
    assert response.status in (200, 400), response.payload
    if response.status == 400:
        assert response.payload["error"]["code"] == "invalid_request", response.payload


def test_a_bug_in_an_admin_handler_is_not_reported_as_a_bad_request(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise TypeError("a bug in the engine")

    monkeypatch.setattr(service.engine, "policies", broken)
    with pytest.raises(TypeError, match="a bug in the engine"):
        admin(service, "GET", "/policies")
