"""contracts/official/index.json ``reader``: the pointers the kit's generic layers read Kling's
answers through find the task id, status, result URL, failure and error in what the fake answers."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from mockserver import Engine, Outcome, Service, VirtualClock
from mockserver.contract import load_contract

CONTRACT = load_contract("official")
READER = CONTRACT.reader
PAIR = CONTRACT.index["auth"]["default_keys"][0]
BODY = {"model_name": "kling-v2-6", "prompt": "a fox in the snow"}


def _service() -> Service:
    return Service(Engine(clock=VirtualClock()), faces=["official"])


def _headers(service: Service) -> list[tuple[str, str]]:
    now = service.engine.clock.now()
    token = jwt.encode({"iss": PAIR["access_key"], "exp": now + 1800, "nbf": now - 5}, PAIR["secret_key"])
    return [("authorization", f"Bearer {token}")]


def _created(service: Service) -> Any:
    answer = service.handle_simple("POST", "/v1/videos/text2video", json=BODY, headers=_headers(service))
    assert answer.status == 200, answer.payload
    return answer.payload


def _polled(service: Service, task_id: str) -> Any:
    return service.handle_simple("GET", f"/v1/videos/text2video/{task_id}", headers=_headers(service)).payload


def test_the_reader_names_every_slot_but_the_error_param_the_wire_has_not() -> None:
    assert set(READER.pointers) == {"task_id", "status", "result_url", "failure", "error_code", "error_message"}


def test_a_create_answer_is_read_for_its_task_id_and_status() -> None:
    created = _created(_service())
    assert READER.get("task_id", created) == created["data"]["task_id"]
    assert READER.get("task_id", created).isdigit()
    assert READER.get("status", created) == CONTRACT.status_projection["submitted"]
    assert READER.get("result_url", created) is None


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        pytest.param(Outcome.succeed(), "succeed", id="succeed"),
        pytest.param(Outcome.fail("timeout"), "failed", id="fail"),
    ],
)
def test_a_finished_task_is_read_for_its_status_link_and_failure(outcome: Outcome, status: str) -> None:
    service = _service()
    service.engine.set_outcome(outcome)
    task_id = READER.get("task_id", _created(service))
    _polled(service, task_id)
    answer = _polled(service, task_id)
    assert READER.get("status", answer) == status
    url = READER.get("result_url", answer)
    assert (url is not None and url.endswith(".mp4")) == (status == "succeed")
    assert bool(READER.get("failure", answer)) == (status == "failed")


def test_an_error_is_read_for_its_code_and_message_and_has_no_param_slot() -> None:
    service = _service()
    answer = service.handle_simple("GET", "/v1/videos/text2video/123", headers=_headers(service)).payload
    assert READER.get("error_code", answer) == CONTRACT.errors["task_not_exist"].code
    assert "123" in READER.get("error_message", answer)
    assert READER.get("error_param", answer) is None
