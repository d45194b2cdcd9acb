"""The in-process fake: injection and patching, sync and async, routes and side effects, options."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

import kling_testkit
from kling_testkit import DEFAULT, KlingMock, polls_before_end, transport
from kling_testkit._mock import as_outcome, as_progression
from mockserver import FaultPlan, Outcome, Progression, load_contract

CONTRACT = load_contract()
AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a red fox in snow", "duration": 5}]}
CREATE = "/v1/video/generations"
BASE = CONTRACT.index["base_urls"][0]


def _teapot(request: httpx.Request) -> httpx.Response:
    return httpx.Response(418)


def test_the_default_base_url_is_the_contracts() -> None:
    assert KlingMock().base_url == BASE == "https://api.modelstream.ai"


def test_a_sync_client_creates_polls_and_downloads_through_injection() -> None:
    api = KlingMock()
    with httpx.Client(transport=transport(api), base_url=api.base_url, headers=AUTH) as client:
        task_id = client.post(CREATE, json=BODY).json()["task_id"]
        statuses = [client.get(f"{CREATE}/{task_id}").json()["status"] for _ in range(2)]
        url = client.get(f"{CREATE}/{task_id}").json()["url"]
        video = client.get(url)
    assert statuses == ["in_progress", "completed"]
    assert video.status_code == 200
    assert video.content[4:8] == b"ftyp"
    assert [e.operation for e in api.journal.entries()][-1] == "media.get"


def test_an_async_client_gets_the_same_fake() -> None:
    api = KlingMock(progression="immediate")

    async def run() -> tuple[str, int]:
        async with api.async_client(headers=AUTH) as client:
            created = (await client.post(CREATE, json=BODY)).json()
            video = await client.get(created_url(api, created["task_id"]))
            return created["status"], video.status_code

    assert asyncio.run(run()) == ("completed", 200)


def created_url(api: KlingMock, task_id: str) -> str:
    return f"{api.base_url}/__media__/{task_id}.mp4"


def test_patching_serves_clients_the_code_under_test_builds_itself() -> None:
    with kling_testkit.mock(pass_through=["other.test"]) as api:
        # A client with its own transport still reaches the fake on the gateway's URL...
        with httpx.Client(transport=httpx.MockTransport(_teapot)) as client:
            assert client.get(f"{BASE}{CREATE}/task_x").status_code == 401
            # ...while a host passed through explicitly reaches that transport.
            assert client.get("http://other.test/").status_code == 418
        assert httpx.post(f"{BASE}{CREATE}", json=BODY, headers=AUTH).status_code == 200
    assert api.video_generations.create.call_count == 1
    with httpx.Client(transport=httpx.MockTransport(_teapot)) as client:
        assert client.get(f"{BASE}{CREATE}/task_x").status_code == 418  # unpatched after the block


def test_patching_serves_async_clients_too() -> None:
    async def run() -> int:
        async with httpx.AsyncClient() as client:
            return (await client.post(f"{BASE}{CREATE}", json=BODY, headers=AUTH)).status_code

    with kling_testkit.mock():
        assert asyncio.run(run()) == 200


class _Recording(httpx.MockTransport):
    """The network stand-in: answers 418 and remembers every request that reached it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(str(request.url))
        return httpx.Response(418)


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        pytest.param("https://other.test/v1/video/generations", "", id="another-host"),
        pytest.param(
            f"http://api.modelstream.ai{CREATE}", "the host of https://api.modelstream.ai", id="http-not-https"
        ),
        pytest.param(f"https://api.modelstream.ai:8443{CREATE}", "check the scheme, port", id="another-port"),
    ],
)
def test_patching_refuses_every_other_url_by_default_naming_it_and_the_served_hosts(url: str, hint: str) -> None:
    network = _Recording()
    with (
        kling_testkit.mock() as api,
        httpx.Client(transport=network) as client,
        pytest.raises(kling_testkit.UnmatchedRequest) as refused,
    ):
        client.post(url, json=BODY, headers=AUTH)
    assert network.seen == []  # nothing left the machine
    message = str(refused.value)
    assert f"refused POST {url}" in message
    assert "it serves https://api.modelstream.ai" in message
    assert "pass_through=" in message
    assert "--kling-pass-through" in message
    assert hint in message
    assert api.unmatched == [f"POST {url}"]
    assert isinstance(refused.value, respx.models.AllMockedAssertionError)  # respx's family: an AssertionError


def test_patching_refuses_other_hosts_for_async_clients_too() -> None:
    network = _Recording()

    async def run() -> None:
        async with httpx.AsyncClient(transport=network) as client:
            await client.get("https://other.test/")

    with kling_testkit.mock(), pytest.raises(kling_testkit.UnmatchedRequest, match=r"refused GET https://other\.test/"):
        asyncio.run(run())
    assert network.seen == []


@pytest.mark.parametrize(
    ("pass_through", "reaches"),
    [
        pytest.param(
            ["other.test"],
            ["http://other.test/", "https://other.test/", "http://other.test:8080/"],
            id="a-host-any-port",
        ),
        pytest.param("other.test:8080", ["http://other.test:8080/"], id="host-and-port"),
        pytest.param(["http://other.test"], ["http://other.test/"], id="a-url-means-its-port"),
        pytest.param(
            True,
            ["http://other.test/", "https://other.test/", "http://other.test:8080/", "https://third.test/"],
            id="every-host",
        ),
    ],
)
def test_pass_through_lets_exactly_the_named_hosts_reach_the_network(pass_through: Any, reaches: list[str]) -> None:
    candidates = ["http://other.test/", "https://other.test/", "http://other.test:8080/", "https://third.test/"]
    network = _Recording()
    refused = []
    with kling_testkit.mock(pass_through=pass_through), httpx.Client(transport=network) as client:
        for url in candidates:
            try:
                client.get(url)
            except kling_testkit.UnmatchedRequest:
                refused.append(url)
    assert network.seen == reaches
    assert refused == [url for url in candidates if url not in reaches]


@pytest.mark.parametrize("bad", ["", "http://", 3, ["ok.test", None]])
def test_a_bad_pass_through_entry_is_refused_up_front(bad: Any) -> None:
    with pytest.raises(ValueError, match="pass_through"):
        kling_testkit.mock(pass_through=bad)


def test_the_old_assert_all_mocked_option_still_works_and_warns() -> None:
    network = _Recording()
    with pytest.warns(DeprecationWarning, match="assert_all_mocked"):
        api = kling_testkit.mock(assert_all_mocked=False)
    with api, httpx.Client(transport=network) as client:
        assert client.get("https://other.test/").status_code == 418


def test_a_fake_inside_another_serves_its_own_base_url() -> None:
    # respx tries each started router: the outer fake's refusal lets the inner one answer.
    with kling_testkit.mock(), kling_testkit.mock(base_urls="https://inner.test") as inner:
        assert httpx.get("https://inner.test/openapi.json").status_code == 200
        assert httpx.get(f"{BASE}/openapi.json").status_code == 200
        with pytest.raises(kling_testkit.UnmatchedRequest):
            httpx.get("https://third.test/")
    assert inner.routes["*"].call_count == 1


def test_an_injected_transport_refuses_urls_outside_its_base_urls() -> None:
    api = KlingMock()
    with (
        httpx.Client(transport=transport(api)) as client,
        pytest.raises(httpx.ConnectError, match="not served by the Kling fake"),
    ):
        client.get("https://elsewhere.test/v1/video/generations")


@pytest.mark.parametrize(
    "base",
    [
        pytest.param("https://gw.example", id="other-host"),
        pytest.param("http://127.0.0.1:9999", id="host-and-port"),
        pytest.param("https://gw.example/kling/", id="path-prefix"),
    ],
)
def test_any_base_url_serves_the_api_and_its_media(base: str) -> None:
    api = KlingMock(base_urls=["https://api.modelstream.ai", base], progression="immediate")
    root = base.rstrip("/")
    with api.client(headers=AUTH) as client:
        task_id = client.post(f"{root}{CREATE}", json=BODY).json()["task_id"]
        url = client.get(f"{root}{CREATE}/{task_id}").json()["url"]
        assert url == f"{root}/__media__/{task_id}.mp4"
        assert client.get(url).status_code == 200
    assert api.journal.entries()[0].url == f"{root}{CREATE}"


@pytest.mark.parametrize(
    "base", ["ftp://x.test", "https://x.test/?q=1", "not a url", "https://"], ids=["scheme", "query", "text", "no-host"]
)
def test_a_bad_base_url_is_refused_with_its_value(base: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        KlingMock(base_urls=[base])


def test_latency_is_spent_on_the_virtual_clock_by_sync_and_async_clients() -> None:
    api = KlingMock()
    api.arm_fault(operation="*", latency=7, times=None)
    start = api.clock.now()
    with api.client(headers=AUTH) as client:
        client.get(f"{CREATE}/task_x")
    assert api.clock.now() - start == 7

    async def run() -> None:
        async with api.async_client(headers=AUTH) as client:
            await client.get(f"{CREATE}/task_x")

    asyncio.run(run())
    assert api.clock.now() - start == 14


# -- routes and side effects ------------------------------------------------------------------


def _create(api: KlingMock) -> httpx.Response:
    with api.client(headers=AUTH) as client:
        return client.post(CREATE, json=BODY)


def test_repr_counts_tasks_without_refreshing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    api = KlingMock()
    _create(api)

    def refreshing() -> None:
        raise AssertionError("repr() called engine.tasks(), which refreshes every task under the lock")

    monkeypatch.setattr(api.engine, "tasks", refreshing)
    assert repr(api).endswith(" tasks=1>")


def test_default_is_a_named_sentinel_not_none() -> None:
    assert DEFAULT is not None
    assert repr(DEFAULT) == "kling_testkit.DEFAULT"
    assert type(DEFAULT)() is DEFAULT


@pytest.mark.parametrize(
    ("side_effect", "expected"),
    [
        pytest.param([httpx.Response(503), DEFAULT], [503, 200], id="list-then-default"),
        pytest.param(lambda request: httpx.Response(202), [202, 202], id="callable-response"),
        pytest.param(lambda request: DEFAULT, [200, 200], id="callable-default"),
        pytest.param(httpx.Response(204), [204, 204], id="response-reused"),
        pytest.param(DEFAULT, [200, 200], id="default"),
    ],
)
def test_side_effects_answer_or_fall_through_to_the_fake(side_effect: Any, expected: list[int]) -> None:
    api = KlingMock()
    api.video_generations.create.side_effect = side_effect
    assert [_create(api).status_code for _ in expected] == expected
    assert api.video_generations.create.call_count == len(expected)
    fake_answers = expected.count(200)
    assert len(api.journal.entries()) == fake_answers  # answers that bypass the fake are not journaled


@pytest.mark.parametrize(
    "side_effect",
    [
        pytest.param(httpx.ConnectError, id="exception-class"),
        pytest.param(httpx.ReadTimeout("slow"), id="exception-instance"),
        pytest.param([httpx.ConnectError], id="exception-in-list"),
    ],
)
def test_exceptions_reach_the_client_and_are_recorded_without_response(side_effect: Any) -> None:
    api = KlingMock()
    api.video_generations.create.side_effect = side_effect
    with pytest.raises(httpx.TransportError):
        _create(api)
    call = api.video_generations.create.calls.last
    assert call.request.url == f"{BASE}{CREATE}"
    assert not call.has_response


def test_a_callable_side_effect_gets_the_path_parameters() -> None:
    api = KlingMock()
    seen: list[str] = []

    def effect(request: httpx.Request, task_id: str) -> Any:
        seen.append(task_id)
        return DEFAULT

    api.video_generations.get.side_effect = effect
    with api.client(headers=AUTH) as client:
        assert client.get(f"{CREATE}/task_abc").status_code == 400  # the fake: no such task
    assert seen == ["task_abc"]


def test_returning_none_is_refused_with_a_hint() -> None:
    api = KlingMock()
    api.video_generations.create.side_effect = lambda request: None
    with pytest.raises(TypeError, match=r"return kling_testkit\.DEFAULT"):
        _create(api)


def test_an_exhausted_side_effect_list_says_so() -> None:
    api = KlingMock()
    api.video_generations.create.side_effect = [DEFAULT]
    _create(api)
    with pytest.raises(AssertionError, match="exhausted"):
        _create(api)


def test_an_async_side_effect_serves_async_clients() -> None:
    api = KlingMock()

    async def effect(request: httpx.Request) -> Any:
        await asyncio.sleep(0)
        return DEFAULT if request.headers.get("x-real") else httpx.Response(299)

    api.video_generations.create.side_effect = effect

    async def run() -> list[int]:
        async with api.async_client(headers=AUTH) as client:
            first = await client.post(CREATE, json=BODY)
            second = await client.post(CREATE, json=BODY, headers={"x-real": "1"})
            return [first.status_code, second.status_code]

    assert asyncio.run(run()) == [299, 200]


def test_return_value_answers_every_call() -> None:
    api = KlingMock()
    api.video_generations.create.return_value = httpx.Response(201, json={"ok": True})
    assert [_create(api).json() for _ in range(2)] == [{"ok": True}] * 2


def test_routes_record_calls_respx_style_and_namespaces_name_them() -> None:
    api = KlingMock()
    assert api.video_generations.create is api.routes["video_generations.create"]
    assert api.media.get is api.routes["media.get"]
    with api.client(headers=AUTH) as client:
        client.get("/openapi.json")
        client.get(f"{CREATE}/task_x")
    assert api.routes["*"].call_count == 1
    assert api.video_generations.get.called
    assert api.video_generations.get.calls.last.response.status_code == 400
    with pytest.raises(AttributeError):
        _ = api.video_generations.delete
    with pytest.raises(AttributeError):
        _ = api.nothing


def test_reset_forgets_tasks_calls_and_side_effects() -> None:
    api = KlingMock()
    api.video_generations.create.side_effect = [DEFAULT, httpx.Response(503)]
    _create(api)
    api.reset()
    assert api.tasks() == []
    assert api.video_generations.create.call_count == 0
    assert _create(api).status_code == 200


# -- options and controls ---------------------------------------------------------------------


def test_the_same_seed_gives_the_same_task_ids() -> None:
    first, second, other = KlingMock(seed=3), KlingMock(seed=3), KlingMock(seed=4)
    ids = [_create(api).json()["task_id"] for api in (first, second, other)]
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize(
    ("options", "status"),
    [
        pytest.param({"keys": ["sk-mine"]}, 401, id="other-key"),
        pytest.param({"keys": ["*"]}, 200, id="any-key"),
        pytest.param({"strict": True}, 400, id="strict-unknown-field"),
        pytest.param({}, 200, id="default-drops-unknown-field"),
    ],
)
def test_keys_and_strict_options(options: dict[str, Any], status: int) -> None:
    api = KlingMock(**options)
    with api.client(headers=AUTH) as client:
        assert client.post(CREATE, json={**BODY, "negative_promt": "x"}).status_code == status


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        pytest.param("succeeded", "completed", id="succeeded"),
        pytest.param("failed:content_policy", "failed", id="failed-reason"),
        pytest.param(Outcome.fail(), "failed", id="outcome-value"),
    ],
)
def test_outcome_option(outcome: Any, status: str) -> None:
    api = KlingMock(progression="immediate", outcome=outcome)
    assert _create(api).json()["status"] == status


def test_controls_carry_the_admin_api_names() -> None:
    api = KlingMock(progression=Progression.manual())
    task_id = _create(api).json()["task_id"]
    api.set_outcome("failed", task_id=task_id)
    api.advance(task_id)
    assert api.task(task_id).status.value == "processing"
    api.set_progression("immediate", task_id=task_id)
    assert api.task(task_id).status.value == "failed"
    assert api.arm_fault(FaultPlan(operation="video_generations.get", error="upstream_error")) == 1
    assert api.faults()[0]["error"] == "upstream_error"
    api.clear_faults()
    api.add_outcome_rule({"when": {"required": ["sound"]}, "outcome": {"status": "failed"}})
    assert api.policies()["outcome_rules"][0]["when"] == {"required": ["sound"]}
    assert api.advance_clock(10) == api.clock.now()
    with pytest.raises(TypeError, match="not both"):
        api.arm_fault(FaultPlan(operation="*", latency=1), latency=2)


@pytest.mark.parametrize("text", ["sometimes", "failed:nope", "succeeded:x"])
def test_bad_spellings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"bad|must be one of"):
        as_outcome(text) if text.startswith(("failed", "succeeded")) else as_progression(text)


@given(polls=st.integers(min_value=1, max_value=4), duration=st.sampled_from([5, 10]))
def test_inside_given_a_fresh_mock_per_example_counts_polls(polls: int, duration: int) -> None:
    # Hypothesis refuses function-scoped fixtures in @given: the context manager is the way.
    with kling_testkit.mock(progression=f"polls:{polls}") as api:
        body = {
            "model": "kling-v2-6",
            "duration": duration,
            "multi_prompt": [{"prompt": "a fox", "duration": duration}],
        }
        task_id = httpx.post(f"{BASE}{CREATE}", json=body, headers=AUTH).json()["task_id"]
        statuses = [httpx.get(f"{BASE}{CREATE}/{task_id}", headers=AUTH).json()["status"] for _ in range(2 * polls)]
    assert statuses[-1] == "completed"
    assert "completed" not in statuses[:-1]
    assert polls_before_end(api, task_id) == 2 * polls - 1
    assert api.task(task_id).video.duration == duration


def test_an_injected_async_transport_refuses_urls_outside_its_base_urls() -> None:
    api = KlingMock()

    async def fetch() -> None:
        async with httpx.AsyncClient(transport=transport(api)) as client:
            await client.get("https://elsewhere.test/v1/videos")

    with pytest.raises(httpx.ConnectError, match=f"not served by the Kling fake \\(base URLs: {BASE}"):
        asyncio.run(fetch())


def test_the_in_process_door_reads_header_names_in_lower_case_and_shares_repeated_lines() -> None:
    api = KlingMock()
    headers = {"Authorization": "Bearer sk-test", "X-Trace": "Abc"}
    first = api._api_request(httpx.Request("GET", f"{BASE}{CREATE}/task_x", headers=headers))
    again = api._api_request(httpx.Request("GET", f"{BASE}{CREATE}/task_y", headers=headers))
    assert ("authorization", "Bearer sk-test") in first.headers
    assert ("x-trace", "Abc") in first.headers
    assert first.headers == again.headers
    assert all(a is b for a, b in zip(first.headers, again.headers, strict=True))
