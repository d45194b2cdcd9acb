"""Journal assertions: polls, poll intervals, Retry-After, and the request contract."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from kling_testkit import (
    ContractNotClean,
    KlingMock,
    LiveServer,
    assert_contract_clean,
    assert_retry_after_honoured,
    contract_violations,
    min_poll_interval,
    polls,
    polls_before_end,
    retry_after_waits,
)
from kling_testkit.assertions import journal_entries
from kling_testkit.failures import Severity

AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a red fox in snow", "duration": 5}]}
CREATE = "/v1/video/generations"


def _client(api: KlingMock) -> httpx.Client:
    return api.client(headers=AUTH)


@pytest.mark.parametrize(
    ("progression", "poll_count", "before_end"),
    [
        pytest.param("polls:1", 2, 1, id="a-step-per-poll"),
        pytest.param("polls:3", 6, 5, id="three-polls-a-step"),
        pytest.param("polls:1", 5, 1, id="redundant-polls-after-the-end"),
        pytest.param("immediate", 1, 0, id="done-at-creation"),
    ],
)
def test_polls_and_polls_before_end(progression: str, poll_count: int, before_end: int) -> None:
    api = KlingMock(progression=progression)
    with _client(api) as client:
        task_id = client.post(CREATE, json=BODY).json()["task_id"]
        for _ in range(poll_count):
            client.get(f"{CREATE}/{task_id}")
    assert polls(api, task_id) == poll_count
    assert polls_before_end(api, task_id) == before_end


def test_min_poll_interval_is_the_smallest_gap_per_task() -> None:
    api = KlingMock(progression="manual")
    with _client(api) as client:
        first = client.post(CREATE, json=BODY).json()["task_id"]
        second = client.post(CREATE, json=BODY).json()["task_id"]
        for gap in (10, 4, 7):
            client.get(f"{CREATE}/{first}")
            api.advance_clock(1)
            client.get(f"{CREATE}/{second}")  # interleaved: gaps are counted per task
            api.advance_clock(gap)
    assert min_poll_interval(api, first) == 5
    assert min_poll_interval(api, second) == 5
    assert min_poll_interval(api) == 5
    assert min_poll_interval(api, "task_other") is None


@pytest.mark.parametrize(
    ("waits", "honoured"),
    [
        pytest.param([5], True, id="waited-exactly"),
        pytest.param([9], True, id="waited-longer"),
        pytest.param([2], False, id="too-early"),
        pytest.param([], True, id="never-retried"),
    ],
)
def test_retry_after_waits(waits: list[float], honoured: bool) -> None:
    api = KlingMock()
    api.arm_fault(operation="video_generations.create", error="rate_limited", retry_after=5)
    with _client(api) as client:
        client.post(CREATE, json=BODY)
        for wait in waits:
            api.advance_clock(wait)
            client.get(f"{CREATE}/task_other")  # another operation does not count as the retry
            client.post(CREATE, json=BODY)
    [found] = retry_after_waits(api)
    assert found.asked == 5
    assert found.waited == (waits[0] if waits else None)
    assert found.honoured is honoured
    if honoured:
        assert_retry_after_honoured(api)
    else:
        with pytest.raises(
            AssertionError, match=r"#1 video_generations.create -> 429 Retry-After 5 s: called again after 2 s"
        ):
            assert_retry_after_honoured(api)


def _create_with_retry(client: httpx.Client, sleep: Callable[[float], None]) -> httpx.Response:
    """A client's retry loop with its sleep function injected, as docs/pytest-plugin.md shows."""
    while (response := client.post(CREATE, json=BODY)).status_code == 429:
        sleep(float(response.headers["retry-after"]))
    return response


async def _acreate_with_retry(client: httpx.AsyncClient, sleep: Callable[[float], Awaitable[None]]) -> httpx.Response:
    while (response := await client.post(CREATE, json=BODY)).status_code == 429:
        await sleep(float(response.headers["retry-after"]))
    return response


@pytest.mark.parametrize(
    ("sleep", "honoured"),
    [
        pytest.param(lambda api: api.clock.sleep, True, id="sleeps-on-the-fakes-clock"),
        pytest.param(lambda api: lambda seconds: None, False, id="does-not-wait"),
    ],
)
def test_a_client_sleeping_on_the_fakes_clock_honours_retry_after(sleep: Any, honoured: bool) -> None:
    api = KlingMock()
    api.arm_fault(operation="video_generations.create", error="rate_limited", retry_after=5, times=2)
    with _client(api) as client:
        assert _create_with_retry(client, sleep(api)).status_code == 200
    assert [wait.waited for wait in retry_after_waits(api)] == ([5, 5] if honoured else [0, 0])
    if honoured:
        assert_retry_after_honoured(api)
    else:
        with pytest.raises(AssertionError, match="2 retry"):
            assert_retry_after_honoured(api)


def test_an_async_client_sleeping_on_the_fakes_clock_honours_retry_after() -> None:
    api = KlingMock()
    api.arm_fault(operation="video_generations.create", error="rate_limited", retry_after=5)

    async def run() -> int:
        async with api.async_client(headers=AUTH) as client:
            return (await _acreate_with_retry(client, api.clock.asleep)).status_code

    assert asyncio.run(run()) == 200
    assert_retry_after_honoured(api)


@pytest.mark.parametrize(
    ("body", "headers", "rule", "json_path"),
    [
        pytest.param({**BODY, "sound": "on"}, {}, "sound.requires_pro", "$.sound", id="named-rule"),
        pytest.param(
            {**BODY, "multi_prompt": [{"prompt": "x" * 5000, "duration": 5}]},
            {},
            "schema:properties/multi_prompt/items/properties/prompt/maxLength",
            "$.multi_prompt[0].prompt",
            id="schema-rule",
        ),
        pytest.param({"multi_prompt": BODY["multi_prompt"]}, {}, "schema:required", "$.model", id="missing-field"),
        pytest.param(BODY, {"content-type": "text/plain"}, "unsupported_content_type", "$", id="content-type"),
    ],
)
def test_refused_requests_are_violations_with_rule_and_path(
    body: Any, headers: dict[str, str], rule: str, json_path: str
) -> None:
    api = KlingMock()
    with _client(api) as client:
        if headers:
            response = client.post(CREATE, content=httpx.Request("POST", "/", json=body).content, headers=headers)
        else:
            response = client.post(CREATE, json=body)
    assert response.status_code == 400
    [violation] = contract_violations(api)
    assert (violation.rule, violation.json_path, violation.severity) == (rule, json_path, Severity.ERROR)
    with pytest.raises(ContractNotClean) as raised:
        assert_contract_clean(api)
    assert f"at {json_path} (rule {rule})" in str(raised.value)
    assert [(v.rule, v.json_path) for v in raised.value.violations] == [(rule, json_path)]


def test_warnings_count_unless_ignored_and_rules_can_be_allowed() -> None:
    api = KlingMock()
    with _client(api) as client:
        assert client.post(CREATE, json={**BODY, "negative_promt": "blur"}).status_code == 200
    [warning] = contract_violations(api)
    assert (warning.rule, warning.json_path, warning.severity) == (
        "unknown_field",
        "$.negative_promt",
        Severity.WARNING,
    )
    with pytest.raises(ContractNotClean, match="1 request"):
        assert_contract_clean(api)
    assert_contract_clean(api, warnings=False)
    assert_contract_clean(api, allow=["unknown_field"])


def test_clean_traffic_and_injected_faults_are_not_violations() -> None:
    api = KlingMock()
    api.arm_fault(operation="video_generations.create", error="rate_limited")
    with _client(api) as client:
        client.post(CREATE, json=BODY)
        client.post(CREATE, json=BODY)
        client.get(f"{CREATE}/task_unknown")
        client.post(CREATE, json=BODY, headers={"Authorization": "Bearer sk-wrong"})
    assert contract_violations(api) == []
    assert_contract_clean(api)


def test_every_kind_of_source_gives_the_same_entries(kling_server: LiveServer) -> None:
    httpx.post(kling_server.base_url + CREATE, json=BODY, headers=AUTH)
    entries = kling_server.journal.entries()
    assert len(entries) == 1
    for source in (kling_server, kling_server.engine, kling_server.engine.journal, entries, iter(entries)):
        assert journal_entries(source) == entries
