"""kling_testkit.stateful: the lifecycle state machine passes on a correct client and catches
clients that misreport what the wire said."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from kling_testkit import stateful
from kling_testkit.stateful import Reply, TaskLifecycleMachine
from kling_testkit.transports import transport

#: a run is ~20 steps of in-process HTTP; a quarter of the profile's examples keeps this file
#: near 10 s in CI while the ``long`` profile still runs hundreds of sequences
RUNS = settings(
    max_examples=max(10, settings().max_examples // 4),
    stateful_step_count=20,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_public_names_are_locked() -> None:
    assert stateful.__all__ == ["Reply", "TaskLifecycleMachine"]


TestDefaultClient = TaskLifecycleMachine.TestCase
TestDefaultClient.settings = RUNS


class VideoClient:
    """A stand-in for a user's own client: it owns an httpx.Client and speaks the API."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def create(self, body: Mapping[str, Any]) -> httpx.Response:
        return self.http.post("/v1/video/generations", json=dict(body), headers={"Authorization": "Bearer sk-test"})

    def status(self, task_id: str) -> httpx.Response:
        return self.http.get(f"/v1/video/generations/{task_id}", headers={"Authorization": "Bearer sk-test"})


class UserClientMachine(TaskLifecycleMachine):
    """How a user plugs their client in: build it on the fake's transport, override two hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.client = VideoClient(httpx.Client(transport=transport(self.mock), base_url=self.mock.base_url))

    def send_create(self, body: Mapping[str, Any]) -> Reply:
        answer = self.client.create(body)
        return Reply(answer.status_code, answer.json())

    def send_poll(self, task_id: str) -> Reply:
        answer = self.client.status(task_id)
        return Reply(answer.status_code, answer.json())

    def teardown(self) -> None:
        self.client.http.close()


def test_a_users_client_passes_the_lifecycle_machine() -> None:
    run_state_machine_as_test(UserClientMachine, settings=RUNS)


class SwapsStatuses(UserClientMachine):
    """A client whose status mapping is wrong: it reports queued and in_progress swapped."""

    def send_poll(self, task_id: str) -> Reply:
        reply = super().send_poll(task_id)
        if reply.status == 200:
            swap = {"queued": "in_progress", "in_progress": "queued"}
            reply = Reply(200, {**reply.body, "status": swap.get(reply.body["status"], reply.body["status"])})
        return reply


class DropsTheUrl(UserClientMachine):
    """A client that loses the result link of a completed task."""

    def send_poll(self, task_id: str) -> Reply:
        reply = super().send_poll(task_id)
        if reply.status == 200 and reply.body["url"]:
            reply = Reply(200, {**reply.body, "url": None})
        return reply


class RetriesSilently(UserClientMachine):
    """A client that retries a refused create and reports only the retry: the injected fault
    the test asked for is hidden from it."""

    def send_create(self, body: Mapping[str, Any]) -> Reply:
        reply = super().send_create(body)
        return super().send_create(body) if reply.status != 200 else reply


@pytest.mark.parametrize(
    ("machine", "error"),
    [
        pytest.param(SwapsStatuses, AssertionError, id="status-goes-backwards"),
        pytest.param(DropsTheUrl, jsonschema.ValidationError, id="completed-without-url"),
        pytest.param(RetriesSilently, AssertionError, id="fault-hidden-by-a-retry"),
    ],
)
def test_the_machine_catches_a_client_that_misreports(
    machine: type[TaskLifecycleMachine], error: type[Exception]
) -> None:
    # finding the bug is the point here, not its minimal form: skip the (slow) shrink phase
    quick = settings(RUNS, max_examples=200, phases=[Phase.explicit, Phase.generate], print_blob=False)
    with pytest.raises(error):
        run_state_machine_as_test(machine, settings=quick)
