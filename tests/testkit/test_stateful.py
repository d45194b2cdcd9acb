"""kling_testkit.stateful: the lifecycle state machine passes on a correct client, for every
face, and catches clients that misreport what the wire said."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx
import jsonschema
import jwt
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from kling_testkit import stateful
from kling_testkit.stateful import Reply, TaskLifecycleMachine
from kling_testkit.strategies import CreateRequest
from kling_testkit.transports import transport
from mockserver.contract import load_contract

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


class OfficialDefault(TaskLifecycleMachine):
    """The default client on Kling's own API, creating both kinds of task."""

    face = "official"
    request_kinds = None


TestOfficialDefaultClient = OfficialDefault.TestCase
TestOfficialDefaultClient.settings = RUNS


class OpenAIDefault(TaskLifecycleMachine):
    """The default client on the gateway's OpenAI-compatible route, creating both kinds (forms
    and JSON, an image-to-video frame as an uploaded file)."""

    face = "openai"
    request_kinds = None


TestOpenAIDefaultClient = OpenAIDefault.TestCase
TestOpenAIDefaultClient.settings = RUNS


class VideoClient:
    """A stand-in for a user's own gateway client: it owns an httpx.Client and speaks the API."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def create(self, body: Mapping[str, Any]) -> httpx.Response:
        return self.http.post("/v1/video/generations", json=dict(body), headers={"Authorization": "Bearer sk-test"})

    def status(self, task_id: str) -> httpx.Response:
        return self.http.get(f"/v1/video/generations/{task_id}", headers={"Authorization": "Bearer sk-test"})


class KlingClient:
    """A stand-in for a client of Kling's own API, written the way public ones are: a JWT
    signed per request with an access/secret pair, one path per kind of task."""

    def __init__(self, http: httpx.Client, access_key: str, secret_key: str, now: Any) -> None:
        self.http, self.access_key, self.secret_key, self.now = http, access_key, secret_key, now

    def _headers(self) -> dict[str, str]:
        now = self.now()
        token = jwt.encode({"iss": self.access_key, "exp": now + 1800, "nbf": now - 5}, self.secret_key)
        return {"Authorization": f"Bearer {token}"}

    def create(self, kind: str, body: Mapping[str, Any]) -> httpx.Response:
        return self.http.post(f"/v1/videos/{kind}", json=dict(body), headers=self._headers())

    def status(self, kind: str, task_id: str) -> httpx.Response:
        return self.http.get(f"/v1/videos/{kind}/{task_id}", headers=self._headers())


class UserClientMachine(TaskLifecycleMachine):
    """How a user plugs their gateway client in: build it on the fake's transport, override two hooks."""

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


class OfficialUserClientMachine(TaskLifecycleMachine):
    """The same for a client of Kling's own API: the kind of each request (its path) is in
    ``self.creating`` while a create is sent, and each task's in ``self.kinds``."""

    face = "official"
    request_kinds = None

    def __init__(self) -> None:
        super().__init__()
        pair = load_contract("official").index["auth"]["default_keys"][0]
        http = httpx.Client(transport=transport(self.mock), base_url="https://api-singapore.klingai.com")
        self.client = KlingClient(http, pair["access_key"], pair["secret_key"], self.mock.clock.now)

    def send_create(self, body: Mapping[str, Any]) -> Reply:
        assert self.creating is not None
        answer = self.client.create(self.creating.kind, body)
        return Reply(answer.status_code, answer.json())

    def send_poll(self, task_id: str) -> Reply:
        answer = self.client.status(self.kinds[task_id], task_id)
        return Reply(answer.status_code, answer.json())

    def teardown(self) -> None:
        self.client.http.close()


class OpenAIClient:
    """A stand-in for a client of the OpenAI-compatible route written with httpx: a form as the
    OpenAI SDK sends it (multipart, with or without a file: httpx's ``data=`` alone would send
    a form without files URL-encoded, which the route refuses), or JSON."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.headers = {"Authorization": "Bearer sk-test"}

    def create(self, create: CreateRequest) -> httpx.Response:
        if create.content_type == "application/json":
            return self.http.post("/v1/videos", json=dict(create.body), headers=self.headers)
        form = create.encoded()
        return self.http.post(
            "/v1/videos", content=form.data, headers={**self.headers, "Content-Type": form.content_type}
        )

    def status(self, task_id: str) -> httpx.Response:
        return self.http.get(f"/v1/videos/{task_id}", headers=self.headers)


class OpenAIUserClientMachine(TaskLifecycleMachine):
    """The same for the OpenAI-compatible route: ``self.creating`` says how the create goes
    (``content_type``) and holds its file parts (``files``)."""

    face = "openai"
    request_kinds = None

    def __init__(self) -> None:
        super().__init__()
        self.client = OpenAIClient(httpx.Client(transport=transport(self.mock), base_url=self.mock.base_url))

    def send_create(self, body: Mapping[str, Any]) -> Reply:
        assert self.creating is not None
        answer = self.client.create(dataclasses.replace(self.creating, body=dict(body)))
        return Reply(answer.status_code, answer.json())

    def send_poll(self, task_id: str) -> Reply:
        answer = self.client.status(task_id)
        return Reply(answer.status_code, answer.json())

    def teardown(self) -> None:
        self.client.http.close()


@pytest.mark.parametrize(
    "machine",
    [UserClientMachine, OfficialUserClientMachine, OpenAIUserClientMachine],
    ids=["gateway", "official", "openai"],
)
def test_a_users_client_passes_the_lifecycle_machine(machine: type[TaskLifecycleMachine]) -> None:
    run_state_machine_as_test(machine, settings=RUNS)


def test_the_openai_machine_creates_both_kinds_as_forms_and_as_json() -> None:
    accepted: set[tuple[str, str]] = set()

    class Recording(OpenAIUserClientMachine):
        def send_create(self, body: Mapping[str, Any]) -> Reply:
            reply = super().send_create(body)
            if reply.status == 200:
                assert self.creating is not None
                accepted.add((self.creating.kind, self.creating.content_type))
            return reply

    run_state_machine_as_test(Recording, settings=settings(RUNS, max_examples=30))
    kinds = ("text2video", "image2video")
    assert accepted == {(k, t) for k in kinds for t in ("multipart/form-data", "application/json")}


def test_the_official_machine_creates_both_kinds_through_their_own_paths() -> None:
    kinds: set[str] = set()

    class Recording(OfficialUserClientMachine):
        def send_create(self, body: Mapping[str, Any]) -> Reply:
            reply = super().send_create(body)
            if reply.status == 200:
                assert self.creating is not None
                kinds.add(self.creating.kind)
            return reply

    run_state_machine_as_test(Recording, settings=settings(RUNS, max_examples=30))
    assert kinds == {"text2video", "image2video"}


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


class OpenAISwapsStatuses(OpenAIUserClientMachine):
    """On the OpenAI-compatible route: queued and in_progress swapped."""

    def send_poll(self, task_id: str) -> Reply:
        reply = super().send_poll(task_id)
        if reply.status == 200:
            swap = {"queued": "in_progress", "in_progress": "queued"}
            reply = Reply(200, {**reply.body, "status": swap.get(reply.body["status"], reply.body["status"])})
        return reply


class OpenAIReportsFailedAsCompleted(OpenAIUserClientMachine):
    """On the OpenAI-compatible route: a failed video reported as completed (its error kept),
    which the video object's schema refuses."""

    def send_poll(self, task_id: str) -> Reply:
        reply = super().send_poll(task_id)
        if reply.status == 200 and reply.body["status"] == "failed":
            reply = Reply(200, {**reply.body, "status": "completed"})
        return reply


class OfficialSwapsStatuses(OfficialUserClientMachine):
    """On Kling's own API: submitted and processing swapped in ``data.task_status``."""

    def send_poll(self, task_id: str) -> Reply:
        reply = super().send_poll(task_id)
        if reply.status == 200:
            swap = {"submitted": "processing", "processing": "submitted"}
            data = reply.body["data"]
            data = {**data, "task_status": swap.get(data["task_status"], data["task_status"])}
            reply = Reply(200, {**reply.body, "data": data})
        return reply


class OfficialDropsTheVideos(OfficialUserClientMachine):
    """On Kling's own API: a finished task's ``task_result.videos`` lost."""

    def send_poll(self, task_id: str) -> Reply:
        reply = super().send_poll(task_id)
        if reply.status == 200 and reply.body["data"].get("task_result", {}).get("videos"):
            data = {**reply.body["data"], "task_result": {"videos": []}}
            reply = Reply(200, {**reply.body, "data": data})
        return reply


class OfficialRetriesSilently(OfficialUserClientMachine):
    """On Kling's own API: a refused create retried and only the retry reported."""

    def send_create(self, body: Mapping[str, Any]) -> Reply:
        reply = super().send_create(body)
        return super().send_create(body) if reply.status != 200 else reply


class OfficialReadsTheEnvelopeOnly(OfficialUserClientMachine):
    """On Kling's own API: a client that reports HTTP 200 for any answer with a code (public
    clients decide by ``code``): an injected error is misreported as a success."""

    def send_poll(self, task_id: str) -> Reply:
        reply = super().send_poll(task_id)
        return Reply(200, reply.body)


class SendsTheModelOnly(UserClientMachine):
    """A client that loses the prompt on the way (a mapping bug): the fake refuses each create."""

    def send_create(self, body: Mapping[str, Any]) -> Reply:
        return super().send_create({"model": body["model"]})


class OpenAISendsFormsUrlEncoded(OpenAIUserClientMachine):
    """On the OpenAI-compatible route: a file-less form sent with httpx's ``data=`` alone goes
    URL-encoded, which the route refuses as no JSON and no multipart."""

    def send_create(self, body: Mapping[str, Any]) -> Reply:
        assert self.creating is not None
        if self.creating.content_type == "application/json" or self.creating.files:
            return super().send_create(body)
        answer = self.client.http.post("/v1/videos", data=dict(body), headers=self.client.headers)
        return Reply(answer.status_code, answer.json())


@pytest.mark.parametrize("machine", [SendsTheModelOnly, OpenAISendsFormsUrlEncoded], ids=["gateway", "openai"])
def test_a_valid_create_refused_without_a_fault_fails_the_run(machine: type[TaskLifecycleMachine]) -> None:
    quick = settings(RUNS, max_examples=50, phases=[Phase.explicit, Phase.generate], print_blob=False)
    with pytest.raises(AssertionError, match="a valid create was refused"):
        run_state_machine_as_test(machine, settings=quick)


@pytest.mark.parametrize(
    ("machine", "error"),
    [
        pytest.param(SwapsStatuses, AssertionError, id="status-goes-backwards"),
        pytest.param(DropsTheUrl, jsonschema.ValidationError, id="completed-without-url"),
        pytest.param(RetriesSilently, AssertionError, id="fault-hidden-by-a-retry"),
        pytest.param(OfficialSwapsStatuses, AssertionError, id="official-status-goes-backwards"),
        pytest.param(OfficialDropsTheVideos, jsonschema.ValidationError, id="official-succeed-without-video"),
        pytest.param(OfficialRetriesSilently, AssertionError, id="official-fault-hidden-by-a-retry"),
        pytest.param(OfficialReadsTheEnvelopeOnly, AssertionError, id="official-error-reported-as-success"),
        pytest.param(OpenAISwapsStatuses, AssertionError, id="openai-status-goes-backwards"),
        pytest.param(
            OpenAIReportsFailedAsCompleted,
            (AssertionError, jsonschema.ValidationError),
            id="openai-failed-as-completed",
        ),
    ],
)
def test_the_machine_catches_a_client_that_misreports(
    machine: type[TaskLifecycleMachine], error: type[Exception] | tuple[type[Exception], ...]
) -> None:
    # finding the bug is the point here, not its minimal form: skip the (slow) shrink phase
    quick = settings(RUNS, max_examples=200, phases=[Phase.explicit, Phase.generate], print_blob=False)
    with pytest.raises(error):
        run_state_machine_as_test(machine, settings=quick)
