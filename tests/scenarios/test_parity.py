"""One set of scenarios, four doors, the same answers and the same journal.

Each scenario is an async function over a :class:`Door`; it asserts the behaviour the contract
promises, and the parity test then asserts that every door produced the same transcript
(status, headers, bodies) and the same journal, apart from host and port. Time is virtual in
every door: nothing sleeps, ``Retry-After`` and link expiry are crossed with ``advance_clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from scenario_doors import AUTH, CREATE, DOORS, Door, open_door

from kling_testkit import LiveServer, assert_contract_clean, assert_retry_after_honoured, retry_after_waits
from kling_testkit.assertions import ContractNotClean, polls_before_end
from mockserver import load_contract

CONTRACT = load_contract()
ERRORS = CONTRACT.errors
STATUS = CONTRACT.status_projection
BODY = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a red fox in snow", "duration": 5}]}

Scenario = Callable[[Door], Awaitable[None]]


async def _create(door: Door, body: Any = BODY) -> Any:
    return await door.request("POST", CREATE, json=body, headers=AUTH)


async def _poll(door: Door, task_id: str) -> Any:
    return await door.request("GET", f"{CREATE}/{task_id}", headers=AUTH)


async def create_poll_complete_download(door: Door) -> None:
    created = await _create(door)
    assert created.status_code == 200
    task_id = created.json()["task_id"]
    assert created.json()["status"] == STATUS["submitted"]
    first, second = await _poll(door, task_id), await _poll(door, task_id)
    assert [first.json()["status"], second.json()["status"]] == [STATUS["processing"], STATUS["succeeded"]]
    url = second.json()["url"]
    assert url.startswith(door.base_url + "/")
    video = await door.request("GET", url)
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"  # an ISO BMFF file, not a placeholder
    part = await door.request("GET", url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == video.content[:100]
    assert polls_before_end(door.engine, task_id) == 1


async def failed_task(door: Door) -> None:
    door.controls.set_outcome("failed:content_policy")
    task_id = (await _create(door)).json()["task_id"]
    await _poll(door, task_id)
    ended = (await _poll(door, task_id)).json()
    assert ended["status"] == STATUS["failed"]
    assert ended["url"] is None
    assert ended["error"]["code"] == CONTRACT.task_failures["content_policy"]["code"]


async def rate_limited_then_retry(door: Door) -> None:
    door.controls.arm_fault(operation="video_generations.create", error="rate_limited", retry_after=5)
    limited = await _create(door)
    assert limited.status_code == ERRORS["rate_limited"].http_status == 429
    assert limited.headers["retry-after"] == "5"
    assert limited.json()["error"]["code"] == ERRORS["rate_limited"].code
    door.controls.advance_clock(float(limited.headers["retry-after"]))
    retried = await _create(door)
    assert retried.status_code == 200
    assert [w.waited for w in retry_after_waits(door.engine)] == [5.0]
    assert_retry_after_honoured(door.engine)


async def invalid_request(door: Door) -> None:
    refused = await _create(door, {**BODY, "sound": "on"})  # sound=on needs mode=pro
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "sound"
    assert error["message"].endswith("(rule sound.requires_pro)")
    with pytest.raises(ContractNotClean, match=r"\$\.sound \(rule sound\.requires_pro\)"):
        assert_contract_clean(door.engine)


async def unknown_task(door: Door) -> None:
    missing = await _poll(door, "task_doesnotexist")
    assert missing.status_code == ERRORS["task_not_exist"].http_status
    assert missing.json()["error"]["code"] == ERRORS["task_not_exist"].code
    assert missing.json()["error"]["param"] == "task_id"


async def expired_link(door: Door) -> None:
    door.controls.set_progression("immediate")
    task_id = (await _create(door)).json()["task_id"]
    url = (await _poll(door, task_id)).json()["url"]
    assert (await door.request("HEAD", url)).status_code == 200
    door.controls.advance_clock(float(CONTRACT.index["media"]["ttl_seconds"]) + 1)
    expired = await door.request("GET", url)
    assert expired.status_code == ERRORS["link_expired"].http_status
    assert expired.json()["error"]["code"] == ERRORS["link_expired"].code


SCENARIOS = [
    pytest.param(create_poll_complete_download, id="create-poll-complete-download"),
    pytest.param(failed_task, id="failed-task"),
    pytest.param(rate_limited_then_retry, id="429-then-retry-after"),
    pytest.param(invalid_request, id="invalid-request"),
    pytest.param(unknown_task, id="unknown-task"),
    pytest.param(expired_link, id="expired-link"),
]


async def _run(scenario: Scenario, name: str, live: LiveServer) -> tuple[list[Any], list[Any]]:
    if name == "live":
        live.reset()
    door = await open_door(name, live)
    try:
        await scenario(door)
    finally:
        closed = door.close()
        if asyncio.iscoroutine(closed):
            await closed
    return door.transcript, door.journal()


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_behaves_as_the_contract_says(scenario: Scenario, door: str, kling_server: LiveServer) -> None:
    transcript, journal = asyncio.run(_run(scenario, door, kling_server))
    assert transcript, "the scenario made no request"
    assert len(journal) == len(transcript)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_door_gives_the_same_answers_and_journal(scenario: Scenario, kling_server: LiveServer) -> None:
    runs = {name: asyncio.run(_run(scenario, name, kling_server)) for name in DOORS}
    reference_transcript, reference_journal = runs["sync"]
    for name, (transcript, journal) in runs.items():
        assert transcript == reference_transcript, f"{name} answered differently from the in-process sync door"
        assert journal == reference_journal, f"{name} journaled differently from the in-process sync door"
