"""Bounded work per request: unknown fields cost linear work, and a body holds a bounded number
of values (``limits.max_json_values``), refused with each face's own error past it.

Work is counted, never timed: a tracer counts the Python lines a validation runs, so the tests
say what the algorithm does on any machine, however loaded.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reliability_helpers import AUTH as GATEWAY_AUTH
from reliability_helpers import CREATE as CREATE_PATH
from reliability_helpers import FACE_CASES, JSON, FaceCase, InProcessDoor, Live, create_and_poll_ok, encode
from sample_payloads import b64, image_bytes, t2v

from mockserver import Engine, OutcomeRule, Service, VirtualClock, load_contract
from mockserver.engine.core import MAX_STORED_REQUEST, compact_request
from mockserver.validation import parse_json_body, validate_create

FACES = sorted(FACE_CASES)


def lines_run(call: Callable[[], Any]) -> int:
    """How many Python line events ``call`` produces (a count of work, not a time)."""
    count = 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return tracer

    # Coverage measures the suite through this same hook: put its tracer back, or every test
    # that runs after this one goes unmeasured (CI once lost five points of coverage that way).
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(previous)
    return count


def with_unknown(face: FaceCase, n: int) -> dict[str, Any]:
    return {**face.body, **{f"x{i}": i for i in range(n)}}


@pytest.mark.parametrize("face_name", FACES)
def test_dropping_unknown_fields_is_linear_in_their_number(face_name: str) -> None:
    """Each unknown field used to cost a copy of the whole body: 2x the fields, 4x the work."""
    face = FACE_CASES[face_name]
    contract = face.contract
    kind = "text2video"

    def work(n: int) -> int:
        body = with_unknown(face, n)
        return lines_run(lambda: validate_create(contract, body, mode=kind if face_name == "official" else None))

    small, large = work(1000), work(2000)
    assert large < 2.3 * small, f"{small} lines for 1000 unknown fields, {large} for 2000: not linear"
    assert small < 40 * 1000, f"{small} lines for 1000 unknown fields"


@pytest.mark.parametrize("face_name", FACES)
def test_every_unknown_field_is_reported_once_and_dropped_in_body_order(face_name: str) -> None:
    face = FACE_CASES[face_name]
    body = {"zz": 1, **face.body, "aa": 2, "mm": 3}
    result = validate_create(face.contract, body, mode="text2video" if face_name == "official" else None)
    assert not hasattr(result, "rule"), result
    assert [w.param for w in result.warnings if w.rule == "unknown_field"] == ["zz", "aa", "mm"]
    assert not {"zz", "aa", "mm"} & set(result.body)


@pytest.mark.parametrize("face_name", FACES)
def test_a_body_with_more_values_than_the_limit_is_refused_after_bounded_work(face_name: str) -> None:
    face = FACE_CASES[face_name]
    contract = face.contract
    limit = contract.max_json_values
    raw = encode(with_unknown(face, 16_000))
    found: list[Any] = []
    lines = lines_run(lambda: found.append(parse_json_body(contract, "application/json", raw)))
    violation = found[0]
    assert (violation.error, violation.rule) == ("body_too_complex", "body.values")
    assert violation.detail == str(limit)
    assert lines < 200, f"{lines} Python lines to refuse 16,000 fields"


@pytest.mark.parametrize("face_name", FACES)
def test_a_body_at_the_limit_is_still_parsed(face_name: str) -> None:
    face = FACE_CASES[face_name]
    contract = face.contract
    room = contract.max_json_values - sum(1 for _ in _values(face.body))
    body = parse_json_body(contract, "application/json", encode(with_unknown(face, room)))
    assert isinstance(body, dict)
    over = parse_json_body(contract, "application/json", encode(with_unknown(face, room + 1)))
    assert getattr(over, "error", None) == "body_too_complex"


def _values(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for member in value.values():
            yield member
            yield from _values(member)
    elif isinstance(value, list):
        for item in value:
            yield item
            yield from _values(item)


@pytest.mark.parametrize("face_name", FACES)
def test_the_limit_is_answered_in_the_faces_format_in_process(face_name: str) -> None:
    face = FACE_CASES[face_name]
    door = InProcessDoor(Service(Engine(clock=VirtualClock(), seed=3)))
    reply = door.send("POST", face.create, [face.auth, JSON], encode(with_unknown(face, 16_000)))
    face.assert_error(reply, "body_too_complex")
    entry = door.service.engine.journal.entries()[-1]
    assert (entry.face, entry.rule) == (face_name, "body.values")


def test_admin_bodies_have_the_same_bound() -> None:
    door = InProcessDoor(Service(Engine(clock=VirtualClock())))
    reply = door.send("POST", "/__mock__/outcome/rules", [JSON], encode({f"k{i}": i for i in range(5000)}))
    assert reply.status == 400
    assert "more than 4096 values" in reply.json()["error"]["message"]


def _twelve_megabytes(face: FaceCase) -> bytes:
    fields = {f"unknown_field_{i:07d}": "v" * 64 for i in range(12 * 1024 * 1024 // 90)}
    return encode({**face.body, **fields})


@pytest.mark.parametrize("face_name", FACES)
def test_a_12_megabyte_body_of_unknown_fields_is_refused_while_others_are_served(live: Live, face_name: str) -> None:
    """The request that blocked the server for minutes: refused by the value limit, after a
    linear parse, while another client creates and polls on its own connections."""
    face = FACE_CASES[face_name]
    raw = _twelve_megabytes(face)
    assert len(raw) > 12_000_000
    served: list[BaseException | None] = []

    def other_client() -> None:
        try:
            for _ in range(5):
                create_and_poll_ok(live.door)
            served.append(None)
        except BaseException as exc:  # reported in the test thread
            served.append(exc)

    thread = threading.Thread(target=other_client)
    thread.start()
    reply = live.door.send("POST", face.create, [face.auth, JSON], raw)
    thread.join(60)
    face.assert_error(reply, "body_too_complex")
    assert served == [None]
    assert load_contract(face_name).max_json_values == 4096


# -- memory per task ---------------------------------------------------------------------------


def _retained(build: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return after - before


@pytest.mark.parametrize(
    "kind",
    ["image2video-two-images", "image-url"],
)
def test_a_task_keeps_digests_and_sizes_not_its_images(kind: str) -> None:
    """40 creates with a 25 MB image URL took the server from 56 MB to 1.08 GB: each task kept
    its whole request. A task now keeps its request compacted (strings as size and digest
    markers, at most MAX_STORED_REQUEST bytes)."""
    image = b64(image_bytes(2000, 1500))  # about 9 KB as PNG of one colour: big in chars, cheap to check
    if kind == "image-url":
        body = t2v(image="https://example.com/" + "a" * 2_000_000)
    else:
        body = t2v(image="data:image/png;base64," + image, image_tail=image, sound="off", mode="pro")
    raw = encode(body)
    tasks = 5
    service = Service(Engine(clock=VirtualClock(), seed=1, journal_limit=1))
    door = InProcessDoor(service)

    def create_all() -> list[str]:
        ids = []
        for _ in range(tasks):
            reply = door.send("POST", CREATE_PATH, [GATEWAY_AUTH, JSON], raw)
            assert reply.status == 200, reply.body[:300]
            ids.append(reply.json()["task_id"])
        return ids

    create_all()  # warm caches outside the measurement
    per_task = _retained(create_all) / tasks
    assert per_task < MAX_STORED_REQUEST + 2048, f"{per_task:,.0f} B retained per task for a {len(raw):,} B body"
    kept = service.engine.tasks()[-1].request
    assert kept["image"].startswith("<")
    assert "chars sha256:" in kept["image"]


def test_the_stored_request_is_capped_and_keeps_what_answers_read() -> None:
    masks = [{"mask": "m" * 900, "trajectories": [{"x": i, "y": i} for i in range(77)]} for _ in range(6)]
    request = {"mode": "pro", "watermark_info": {"enabled": True}, "dynamic_masks": masks, "prompt": "p" * 2000}
    stored = compact_request(request)
    assert len(stored) <= MAX_STORED_REQUEST
    kept = json.loads(stored)
    assert kept["mode"] == "pro"
    assert kept["watermark_info"] == {"enabled": True}
    assert kept["dynamic_masks"].startswith("<dropped ")
    assert kept["prompt"].startswith("<2000 chars sha256:")


def test_outcome_rules_still_match_the_whole_request_at_create_time() -> None:
    """The rule reads a string longer than what the task keeps: it matches before storing."""
    service = Service(Engine(clock=VirtualClock(), seed=1))
    service.engine.add_outcome_rule(
        OutcomeRule.from_json(
            {
                "when": {"properties": {"negative_prompt": {"pattern": "gore$"}}, "required": ["negative_prompt"]},
                "outcome": {"status": "failed", "reason": "content_policy"},
            }
        )
    )
    door = InProcessDoor(service)
    reply = door.send("POST", CREATE_PATH, [GATEWAY_AUTH, JSON], encode(t2v(negative_prompt="x" * 2400 + "gore")))
    task = service.engine.task(reply.json()["task_id"])
    assert task.outcome.reason == "content_policy"
    assert task.request["negative_prompt"].startswith("<2404 chars")


def test_long_external_ids_and_callback_urls_do_not_grow_a_task() -> None:
    """The per-task bound holds for what the engine keeps outside the request too."""
    face = FACE_CASES["official"]
    service = Service(Engine(clock=VirtualClock(), seed=1))
    door = InProcessDoor(service)
    long_id = "e" * 5000
    body = {**face.body, "external_task_id": long_id, "callback_url": "http://127.0.0.1/" + "c" * 5000}
    created = door.send("POST", face.create, [face.auth, JSON], encode(body))
    assert created.status == 200, created.body[:300]
    task = service.engine.tasks()[-1]
    assert task.external_id is not None
    assert task.external_id.startswith("<5000 chars sha256:")
    assert task.callback_url is None
    warned = [w.param for _, w in service.engine.journal.warnings()]
    assert "callback_url" in warned
    polled = door.send("GET", face.poll.replace("{task_id}", long_id), [face.auth])
    assert polled.status == 200, polled.body[:300]
    again = door.send("POST", face.create, [face.auth, JSON], encode(body))
    assert again.status == 400  # still unique per account
