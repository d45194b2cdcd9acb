"""One set of scenarios, four doors, every face: the same answers and the same journal.

Each scenario is an async function over a :class:`Door`; it asserts the behaviour the contract
promises, and the parity test then asserts that every door produced the same transcript
(status, headers, bodies) and the same journal, apart from host and port. Time is virtual in
every door: nothing sleeps, ``Retry-After`` and link expiry are crossed with ``advance_clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from face_clients import FACES, FaceClient
from scenario_doors import DOORS, SEED, Door, open_door

from kling_testkit import LiveServer, assert_contract_clean, assert_retry_after_honoured, retry_after_waits
from kling_testkit.assertions import ContractNotClean, polls_before_end
from mockserver import VirtualClock
from mockserver.engine.clock import DEFAULT_EPOCH

Scenario = Callable[[Door, FaceClient], Awaitable[None]]


@pytest.fixture(scope="module")
def parity_server() -> Iterator[LiveServer]:
    """The live door, on the same fixed epoch as the in-process doors (timestamps must match)."""
    with LiveServer(seed=SEED, clock=VirtualClock(start=DEFAULT_EPOCH)) as server:
        yield server


async def _create(door: Door, face: FaceClient, body: Any = None) -> Any:
    return await door.request("POST", face.create_path, json=face.body if body is None else body, headers=face.auth)


async def _poll(door: Door, face: FaceClient, task_id: str) -> Any:
    return await door.request("GET", face.poll_path(task_id), headers=face.auth)


async def create_poll_complete_download(door: Door, face: FaceClient) -> None:
    created = await _create(door, face)
    assert created.status_code == 200
    task_id = face.read("task_id", created.json())
    assert face.read("status", created.json()) == face.status("submitted")
    first, second = await _poll(door, face, task_id), await _poll(door, face, task_id)
    statuses = [face.read("status", first.json()), face.read("status", second.json())]
    assert statuses == [face.status("processing"), face.status("succeeded")]
    url = face.result_url(second.json(), door.base_url)
    assert url is not None
    assert url.startswith(door.base_url + "/")
    video = await door.request("GET", url, headers=face.auth)  # a face's media may need the key
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"  # an ISO BMFF file, not a placeholder
    part = await door.request("GET", url, headers={**face.auth, "Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == video.content[:100]
    assert polls_before_end(door.engine, task_id) == 1


async def failed_task(door: Door, face: FaceClient) -> None:
    door.controls.set_outcome("failed:content_policy")
    task_id = face.read("task_id", (await _create(door, face)).json())
    await _poll(door, face, task_id)
    ended = (await _poll(door, face, task_id)).json()
    assert face.read("status", ended) == face.status("failed")
    assert face.result_url(ended, door.base_url) is None
    assert face.read("failure", ended) == "Failure to pass the risk control system"


async def rate_limited_then_retry(door: Door, face: FaceClient) -> None:
    # A face-neutral plan: the verb every face's create carries, the neutral fault name.
    door.controls.arm_fault(operation="task.create", error="rate_limited", retry_after=5)
    limited = await _create(door, face)
    spec = face.contract.errors[face.contract.faults["rate_limited"]]
    assert limited.status_code == spec.http_status == 429
    assert limited.headers["retry-after"] == "5"
    assert face.read("error_code", limited.json()) == spec.code
    door.controls.advance_clock(float(limited.headers["retry-after"]))
    retried = await _create(door, face)
    assert retried.status_code == 200
    assert [w.waited for w in retry_after_waits(door.engine)] == [5.0]
    assert_retry_after_honoured(door.engine)


async def invalid_request(door: Door, face: FaceClient) -> None:
    refused = await _create(door, face, {**face.body, "sound": "on"})  # sound=on needs mode=pro
    assert refused.status_code == 400
    assert face.read("error_message", refused.json()).endswith("(rule sound.requires_pro)")
    [entry] = door.engine.journal.entries()
    assert (entry.rule, entry.param) == ("sound.requires_pro", "sound")
    with pytest.raises(ContractNotClean, match=r"\$\.sound \(rule sound\.requires_pro\)"):
        assert_contract_clean(door.engine)


async def unknown_task(door: Door, face: FaceClient) -> None:
    missing = await _poll(door, face, "9" * 18)
    spec = face.contract.errors["task_not_exist"]
    assert missing.status_code == spec.http_status
    assert face.read("error_code", missing.json()) == spec.code
    [entry] = door.engine.journal.entries()
    assert (entry.rule, entry.param) == ("task.exists", "task_id")


async def expired_link(door: Door, face: FaceClient) -> None:
    door.controls.set_progression("immediate")
    task_id = face.read("task_id", (await _create(door, face)).json())
    url = face.result_url((await _poll(door, face, task_id)).json(), door.base_url)
    assert url is not None
    assert (await door.request("HEAD", url, headers=face.auth)).status_code == 200
    door.controls.advance_clock(face.contract.media_ttl + 1)
    expired = await door.request("GET", url, headers=face.auth)
    spec = face.contract.errors["link_expired"]
    assert expired.status_code == spec.http_status
    assert face.read("error_code", expired.json()) == spec.code


SCENARIOS = [
    pytest.param(create_poll_complete_download, id="create-poll-complete-download"),
    pytest.param(failed_task, id="failed-task"),
    pytest.param(rate_limited_then_retry, id="429-then-retry-after"),
    pytest.param(invalid_request, id="invalid-request"),
    pytest.param(unknown_task, id="unknown-task"),
    pytest.param(expired_link, id="expired-link"),
]


async def _run(scenario: Scenario, name: str, face: str, live: LiveServer) -> tuple[list[Any], list[Any]]:
    if name == "live":
        live.reset()
    door = await open_door(name, live)
    try:
        await scenario(door, FACES[face])
    finally:
        closed = door.close()
        if asyncio.iscoroutine(closed):
            await closed
    return door.transcript, door.journal()


@pytest.mark.parametrize("face", sorted(FACES))
@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_behaves_as_the_contract_says(
    scenario: Scenario, door: str, face: str, parity_server: LiveServer
) -> None:
    transcript, journal = asyncio.run(_run(scenario, door, face, parity_server))
    assert transcript, "the scenario made no request"
    assert len(journal) == len(transcript)


@pytest.mark.parametrize("face", sorted(FACES))
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_door_gives_the_same_answers_and_journal(
    scenario: Scenario, face: str, parity_server: LiveServer
) -> None:
    runs = {name: asyncio.run(_run(scenario, name, face, parity_server)) for name in DOORS}
    reference_transcript, reference_journal = runs["sync"]
    for name, (transcript, journal) in runs.items():
        assert transcript == reference_transcript, f"{name} answered differently from the in-process sync door"
        assert journal == reference_journal, f"{name} journaled differently from the in-process sync door"
