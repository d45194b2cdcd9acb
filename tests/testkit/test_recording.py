"""Reading recordings (JSON Lines, HAR) and writing the fake's journal in the same format."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kling_testkit.recording import Exchange, RecordingError, read_recording, write_exchanges, write_journal
from mockserver import Engine, Service, VirtualClock

RECORDINGS = Path(__file__).resolve().parents[2] / "fixtures" / "recordings"
AUTH = (("authorization", "Bearer sk-test"),)


def _service() -> Service:
    return Service(Engine(clock=VirtualClock(), seed=1))


def test_clean_jsonl_reads_every_exchange_with_json_bodies() -> None:
    exchanges = read_recording(RECORDINGS / "clean.jsonl")
    assert len(exchanges) == 10
    first = exchanges[0]
    assert (first.method, first.path, first.status) == ("POST", "/v1/video/generations", 200)
    assert first.request_body["model"] == "kling-v2-6"
    assert first.response_body["status"] == "queued"
    assert first.source == "clean.jsonl:1"
    stamps = [e.timestamp for e in exchanges]
    assert None not in stamps
    assert stamps == sorted(t for t in stamps if t is not None)


def test_har_holds_the_same_exchanges_as_its_jsonl_twin() -> None:
    jsonl = read_recording(RECORDINGS / "clean.jsonl")
    har = read_recording(RECORDINGS / "clean.har")
    assert [(e.method, e.url, e.status, e.timestamp) for e in har] == [
        (e.method, e.url, e.status, e.timestamp) for e in jsonl
    ]
    for a, b in zip(har, jsonl, strict=True):
        assert a.request_body == b.request_body
        if not (isinstance(b.response_body, str) and b.response_body.startswith("<")):  # download: no text in HAR
            assert a.response_body == b.response_body


@pytest.mark.parametrize(
    ("name", "line", "fragment"),
    [
        pytest.param("truncated.jsonl", 4, "truncated JSON record", id="truncated-jsonl"),
        pytest.param("empty.jsonl", None, "empty file", id="empty-file"),
        pytest.param("binary_body.har", None, "HAR entry 2: response.content is binary", id="har-binary-body"),
    ],
)
def test_bad_recordings_are_refused_naming_file_and_line(name: str, line: int | None, fragment: str) -> None:
    with pytest.raises(RecordingError) as caught:
        read_recording(RECORDINGS / "bad" / name)
    assert caught.value.line == line
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(str(RECORDINGS / "bad" / name))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param(b'{"request": {}, "response": {"status": 200}}\n', "request.method", id="missing-method"),
        pytest.param(b"[1, 2]\n", "must be a JSON object", id="not-an-object"),
        pytest.param(b"not json at all\n", "not a JSON record", id="garbage-line"),
        pytest.param(b'\xff\xfe{"a": 1}\n', "not UTF-8", id="not-utf8"),
        pytest.param(b"\n\n  \n", "empty file", id="only-blank-lines"),
        pytest.param(
            b'{"request": {"method": "GET", "url": "http://h/x"}, "response": {"status": "200"}}\n',
            "response.status must be an integer",
            id="status-as-string",
        ),
    ],
)
def test_malformed_jsonl_lines_name_the_problem(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=fragment):
        read_recording(path)


def test_the_issue_format_is_accepted_headers_as_object_body_as_text_iso_timestamp(tmp_path: Path) -> None:
    record = {
        "timestamp": "2026-01-01T00:00:05Z",
        "request": {
            "method": "post",
            "url": "https://api.modelstream.ai/v1/video/generations",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"model": "kling-v2-6"}),
        },
        "response": {"status": 400, "headers": {"content-type": "application/json"}, "body": '{"error": {}}'},
    }
    path = tmp_path / "client-recording"  # no extension: detected by content
    path.write_text(json.dumps(record) + "\n")
    (exchange,) = read_recording(path)
    assert exchange.method == "POST"
    assert exchange.request_body == {"model": "kling-v2-6"}
    assert exchange.response_body == {"error": {}}
    assert exchange.timestamp == 1_767_225_605.0
    assert exchange.request_header("content-type") == "application/json"


def test_har_is_detected_by_content_without_extension(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes((RECORDINGS / "clean.har").read_bytes())
    assert len(read_recording(path)) == 10


def test_write_journal_round_trips_and_matches_the_admin_jsonl_route(tmp_path: Path) -> None:
    service = _service()
    created = service.handle_simple(
        "POST",
        "/v1/video/generations",
        json={"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}], "negative_promt": "x"},
        headers=AUTH,
    )
    service.handle_simple("GET", f"/v1/video/generations/{created.payload['task_id']}", headers=AUTH)
    entries = service.engine.journal.entries()
    target = tmp_path / "journal.jsonl"
    assert write_journal(entries, target) == 2
    served = service.handle_simple("GET", "/__mock__/journal.jsonl")
    assert served.status == 200
    assert served.header("content-type") == "application/x-ndjson"
    assert served.body == target.read_bytes()
    read = read_recording(target)
    assert [e.to_record() for e in read] == [
        Exchange.from_journal_entry(e).to_record() for e in entries
    ]  # same exchanges whichever way they travel
    assert "Bearer <redacted" in (read[0].request_header("authorization") or "")


def test_admin_jsonl_route_filters_like_the_json_route() -> None:
    service = _service()
    service.handle_simple("GET", "/v1/video/generations/task_x", headers=AUTH)
    service.handle_simple("POST", "/v1/video/generations", json={"model": "kling-v2-6"}, headers=AUTH)
    body = service.handle_simple("GET", "/__mock__/journal.jsonl?operation=video_generations.get").body
    lines = body.decode().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["operation"] == "video_generations.get"


def test_write_to_text_and_binary_streams() -> None:
    exchange = Exchange("GET", "http://h/x", 404, timestamp=1.0)
    text, binary = io.StringIO(), io.BytesIO()
    write_exchanges([exchange], text)
    write_exchanges([exchange], binary)
    assert text.getvalue().encode() == binary.getvalue()
    assert json.loads(text.getvalue())["response"]["status"] == 404


def test_the_journals_face_fault_and_refusal_survive_reading_and_writing(tmp_path: Path) -> None:
    exchanges = read_recording(RECORDINGS / "official" / "clean.jsonl")
    assert {e.face for e in exchanges} == {"official"}
    assert [(e.status, e.fault) for e in exchanges if e.fault] == [(503, "unavailable")]
    (refused,) = [e for e in read_recording(RECORDINGS / "official" / "defect_expired_token.jsonl") if e.rule]
    assert (refused.status, refused.rule, refused.param) == (401, "auth.exp", None)
    target = tmp_path / "again.jsonl"
    write_exchanges([*exchanges, refused], target)
    again = read_recording(target)
    assert [(e.face, e.fault, e.rule, e.param) for e in again] == [
        (e.face, e.fault, e.rule, e.param) for e in [*exchanges, refused]
    ]
    assert {e.face for e in read_recording(RECORDINGS / "official" / "clean.har")} == {None}  # HAR: found by URL


@pytest.mark.parametrize(
    "refusal", [pytest.param('"auth.exp"', id="not-an-object"), pytest.param('{"param": "x"}', id="no-rule")]
)
def test_a_malformed_refusal_is_named(tmp_path: Path, refusal: str) -> None:
    path = tmp_path / "run.jsonl"
    path.write_text(
        '{"request": {"method": "GET", "url": "http://h/x"}, "response": {"status": 401}, "refusal": ' + refusal + "}\n"
    )
    with pytest.raises(RecordingError, match="refusal must be null or an object"):
        read_recording(path)
