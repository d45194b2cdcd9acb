"""Journal assertions: polls, poll intervals, Retry-After, and the request contract."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
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
from kling_testkit.assertions import (
    assert_tokens_renewed,
    assert_within_concurrency_slots,
    journal_entries,
    slot_refusals,
    token_refusals,
)
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
        pytest.param(BODY, {"content-type": "text/plain"}, "body.content_type", "$", id="content-type"),
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
        created = client.post(CREATE, json=BODY).json()
        client.get(f"{CREATE}/{created['task_id']}")
    assert contract_violations(api) == []
    assert_contract_clean(api)


@pytest.mark.parametrize(
    ("send", "rule", "json_path"),
    [
        pytest.param(lambda c: c.get(f"{CREATE}/task_unknown"), "task.exists", "$.task_id", id="unknown-task"),
        pytest.param(
            lambda c: c.post(CREATE, json=BODY, headers={"Authorization": "Bearer sk-wrong"}),
            "auth.api_key",
            "$",
            id="refused-key",
        ),
        pytest.param(
            lambda c: c.post(CREATE, json={**BODY, "model": "kling-v9"}), "model.known", "$.model", id="unknown-model"
        ),
    ],
)
def test_every_refusal_the_journal_records_is_a_violation(send: Any, rule: str, json_path: str) -> None:
    # One meaning for "contract clean": whatever the fake refused, with the rule id it recorded.
    api = KlingMock()
    with _client(api) as client:
        send(client)
    [violation] = contract_violations(api)
    assert (violation.rule, violation.json_path) == (rule, json_path)
    with pytest.raises(ContractNotClean, match=rule):
        assert_contract_clean(api)


def test_every_kind_of_source_gives_the_same_entries(kling_server: LiveServer) -> None:
    httpx.post(kling_server.base_url + CREATE, json=BODY, headers=AUTH)
    entries = kling_server.journal.entries()
    assert len(entries) == 1
    for source in (kling_server, kling_server.engine, kling_server.engine.journal, entries, iter(entries)):
        assert journal_entries(source) == entries


# -- Kling's own API: signed tokens, concurrency slots, polls ------------------------------------

OFFICIAL = "https://api-singapore.klingai.com"
T2V = "/v1/videos/text2video"
OFFICIAL_BODY = {"model_name": "kling-v2-6", "prompt": "a red fox in snow"}


def _token(api: KlingMock, *, lifetime: float = 1800, not_before: float = -5) -> str:
    """A JWT signed the way Kling's clients sign it, on the fake's clock."""
    now = api.clock.now()
    claims = {"iss": "ak-test", "exp": int(now + lifetime), "nbf": int(now + not_before)}
    return jwt.encode(claims, "sk-test-secret-key-for-kling-testkit", algorithm="HS256")


def _official(api: KlingMock) -> httpx.Client:
    return api.client(base_url=OFFICIAL)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("re_sign", "refused"),
    [pytest.param(True, 0, id="re-signs-before-every-call"), pytest.param(False, 1, id="keeps-its-first-token")],
)
def test_a_client_that_lets_its_token_expire_is_named(re_sign: bool, refused: int) -> None:
    api = KlingMock(progression="manual")
    with _official(api) as client:
        first = _token(api)
        task_id = client.post(T2V, json=OFFICIAL_BODY, headers=_bearer(first)).json()["data"]["task_id"]
        api.advance_clock(1800 + 60)  # past exp and the fake's clock skew
        answer = client.get(f"{T2V}/{task_id}", headers=_bearer(_token(api) if re_sign else first))
    assert answer.status_code == (401 if refused else 200)
    assert [(e.status, e.rule) for e in token_refusals(api)] == [(401, "auth.exp")] * refused
    if refused:
        with pytest.raises(
            AssertionError, match=r"#2 text2video.get -> 401 1004 \(rule auth.exp\): Authorization has expired"
        ):
            assert_tokens_renewed(api)
    else:
        assert_tokens_renewed(api)


def test_a_token_used_before_its_nbf_is_named_too() -> None:
    api = KlingMock()
    with _official(api) as client:
        client.get(f"{T2V}/1", headers=_bearer(_token(api, not_before=600)))
    [refused] = token_refusals(api)
    assert (refused.status, refused.rule) == (401, "auth.nbf")


def test_other_auth_refusals_and_gateway_keys_are_not_token_expiry() -> None:
    api = KlingMock()
    with _official(api) as client:
        client.get(f"{T2V}/1", headers=_bearer("not-a-token"))  # 401/1002: a wrong token, not an old one
    with _client(api) as client:
        client.post(CREATE, json=BODY, headers={"Authorization": "Bearer sk-wrong"})
    assert [e.status for e in journal_entries(api)] == [401, 401]
    assert token_refusals(api) == []
    assert_tokens_renewed(api)


@pytest.mark.parametrize(
    ("waits_for_a_slot", "refused"),
    [pytest.param(True, 0, id="waits-for-its-task-to-end"), pytest.param(False, 1, id="creates-past-its-slots")],
)
def test_a_client_that_creates_past_its_concurrency_slots_is_named(waits_for_a_slot: bool, refused: int) -> None:
    api = KlingMock(progression="manual", slots=1)
    with _official(api) as client:
        task_id = client.post(T2V, json=OFFICIAL_BODY, headers=_bearer(_token(api))).json()["data"]["task_id"]
        if waits_for_a_slot:
            api.advance(task_id)
            api.advance(task_id)  # succeeded: the slot is free again
        second = client.post(T2V, json=OFFICIAL_BODY, headers=_bearer(_token(api)))
    assert second.status_code == (429 if refused else 200)
    assert len(slot_refusals(api)) == refused
    if refused:
        with pytest.raises(
            AssertionError, match=r"(?s)1 create\(s\) .* #2 text2video.create -> 429 1303 \(rule concurrency.slots\)"
        ):
            assert_within_concurrency_slots(api)
    else:
        assert_within_concurrency_slots(api)


def test_an_injected_concurrency_fault_is_not_the_clients_doing() -> None:
    api = KlingMock()
    api.arm_fault(operation="task.create", error="concurrency_exceeded")
    with _official(api) as client:
        assert client.post(T2V, json=OFFICIAL_BODY, headers=_bearer(_token(api))).json()["code"] == 1303
    assert slot_refusals(api) == []
    assert_within_concurrency_slots(api)


def test_polls_and_refusals_read_the_official_envelope() -> None:
    api = KlingMock()
    with _official(api) as client:
        created = client.post(T2V, json={**OFFICIAL_BODY, "external_task_id": "mine"}, headers=_bearer(_token(api)))
        task_id = created.json()["data"]["task_id"]
        for path in (f"{T2V}/{task_id}", "/v1/videos/image2video/mine", f"{T2V}/{task_id}"):
            api.advance_clock(4)
            client.get(path, headers=_bearer(_token(api)))  # by id, or by external id on the other kind's path
        client.post(T2V, json={**OFFICIAL_BODY, "sound": "on"}, headers=_bearer(_token(api)))
    assert polls(api, task_id) == 3
    assert polls_before_end(api, task_id) == 1  # processing; then succeed, then a redundant poll
    assert min_poll_interval(api, task_id) == 4
    [violation] = contract_violations(api)
    assert (violation.rule, violation.json_path, violation.status) == ("sound.requires_pro", "$.sound", 400)
    assert "Invalid parameter 'sound'" in violation.message


def test_assert_contract_clean_and_check_flag_the_same_exchanges(tmp_path: Path) -> None:
    # One meaning for "contract clean": the assertion and `kling-testkit check` agree on every
    # exchange of a journal (refusals of every kind, warnings), and neither counts a fault.
    from kling_testkit import CHECKS, check_exchanges, read_recording, write_journal

    api = KlingMock()
    api.arm_fault(operation="video_generations.get", error="rate_limited")
    with _client(api) as client:
        client.post(CREATE, json={**BODY, "model": "kling-v9"})  # unknown model
        client.post(CREATE, json=BODY, headers={"Authorization": "Bearer sk-wrong"})  # refused key
        task_id = client.post(CREATE, json=BODY).json()["task_id"]
        client.get(f"{CREATE}/{task_id}")  # the injected 429: not the client's doing
        client.get(f"{CREATE}/task_unknown")  # unknown task
        client.post(CREATE, json={**BODY, "sound": "on"})  # a named rule
        client.post(CREATE, json={**BODY, "negativ": "x"})  # a dropped field (a warning)
    asserted = {int(str(v.where).removeprefix("journal#")) for v in contract_violations(api)}
    path = tmp_path / "run.jsonl"
    write_journal(api.entries(), path)
    client_checks = CHECKS.names(side="client")
    found = check_exchanges(read_recording(path), checks=client_checks)
    checked = {int(str(v.where).rsplit(":", 1)[1]) for v in found}
    assert asserted == checked == {1, 2, 5, 6, 7}
