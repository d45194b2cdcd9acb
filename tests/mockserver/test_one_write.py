"""The live door writes each answer to its socket in one call (``mockserver/door.py``).

uvicorn writes a response's head when the app starts it and its body when the app sends it: two
sends per answer. The door's protocol gives each request's cycle a transport that holds the head
and writes it with the bytes after it. These tests drive the door's protocol the way asyncio
drives any protocol (``connection_made``, ``data_received``) with a transport that records each
write, so they see what reaches the socket and in which pieces, and they fail naming the module
should a uvicorn release stop writing through the cycle's ``transport`` or calling
``on_response_complete``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from mockserver import Engine, Service, VirtualClock, create_app
from mockserver.door import _OneWrite, uvicorn_options

BROKEN = "uvicorn {version} changed what mockserver/door.py's one-write transport relies on: {what}"


class Recorder:
    """An asyncio transport that keeps each write as one piece."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        pass


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


@pytest.mark.parametrize(
    ("steps", "written"),
    [
        pytest.param([("write", HEAD), ("write", b"ok"), ("complete", b"")], [HEAD + b"ok"], id="head-and-body-in-one"),
        pytest.param([("write", HEAD), ("complete", b"")], [HEAD], id="a-head-alone-goes-when-the-response-ends"),
        pytest.param(
            [("write", b"HTTP/1.1 100 Continue\r\n\r\n"), ("write", HEAD), ("write", b"ok"), ("complete", b"")],
            [b"HTTP/1.1 100 Continue\r\n\r\n", HEAD + b"ok"],
            id="an-interim-answer-goes-at-once",
        ),
        pytest.param(
            [("write", HEAD), ("write", b"a"), ("write", b"b"), ("complete", b"")],
            [HEAD + b"a", b"b"],
            id="a-streamed-body-after-its-first-piece",
        ),
        pytest.param(
            [("write", HEAD), ("write", b"ok"), ("complete", b""), ("write", HEAD), ("write", b"ok")],
            [HEAD + b"ok", HEAD + b"ok"],
            id="the-next-response-is-held-again",
        ),
        pytest.param([("write", HEAD), ("close", b"")], [HEAD], id="a-held-head-goes-before-the-close"),
        pytest.param(
            [("write", HEAD), ("write", b"ok"), ("complete", b""), ("write", b"HTTP/1.1 2xx-looking body")],
            [HEAD + b"ok"],
            id="whatever-a-response-opens-with-is-held-until-what-follows",
        ),
    ],
)  # fmt: skip
def test_the_one_write_transport_keeps_the_order_and_joins_a_head_to_what_follows(
    steps: list[tuple[str, bytes]], written: list[bytes]
) -> None:
    recorder = Recorder()
    writer = _OneWrite(recorder)
    for step, data in steps:
        if step == "write":
            writer.write(data)
        elif step == "complete":
            writer.response_complete()
        else:
            writer.close()
    assert recorder.writes == written


def _served(*chunks: bytes) -> Recorder:
    """What the door's protocol writes for the requests in ``chunks`` (each received on its own),
    once every answer is out."""

    async def run() -> Recorder:
        service = Service(Engine(clock=VirtualClock()))
        config = uvicorn.Config(create_app(service), lifespan="off", log_level="warning", **uvicorn_options(service))
        config.load()
        protocol: Any = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
        recorder = Recorder()
        protocol.connection_made(recorder)
        for chunk in chunks:
            protocol.data_received(chunk)
            for _ in range(50):  # each answer takes a few loop turns; nothing here waits on time
                await asyncio.sleep(0)
        protocol.connection_lost(None)
        return recorder

    return asyncio.run(run())


def _request(method: str, path: str, *, headers: tuple[str, ...] = (), body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1:8000", "authorization: Bearer sk-test", *headers]
    if body:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _answers(recorder: Recorder) -> list[bytes]:
    return [piece for piece in recorder.writes if not piece.startswith(b"HTTP/1.1 100 ")]


CREATE = json.dumps({"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}).encode()


def test_each_answer_reaches_the_socket_in_one_write() -> None:
    recorder = _served(_request("GET", "/v1/video/generations/task_x") + _request("GET", "/openapi.json"))
    answers = _answers(recorder)
    assert len(answers) == 2, BROKEN.format(version=uvicorn.__version__, what=f"{len(answers)} writes for 2 answers")
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        assert len(body) == length  # the whole answer, head and body, in the one write
    assert b'"task_id"' in answers[0]  # pipelined answers keep their order: the poll's refusal first
    assert b'"openapi"' in answers[1]


def test_a_head_answer_is_written_when_the_response_ends() -> None:
    recorder = _served(_request("HEAD", "/v1/video/generations/task_x"))
    [answer] = _answers(recorder)
    assert answer.startswith(b"HTTP/1.1 ")
    assert answer.endswith(b"\r\n\r\n"), BROKEN.format(
        version=uvicorn.__version__, what="on_response_complete is not called when a HEAD response ends"
    )


def test_100_continue_is_sent_before_the_body_arrives() -> None:
    head = _request("POST", "/v1/video/generations", headers=("content-type: application/json", "expect: 100-continue",
                                                                f"content-length: {len(CREATE)}"))  # fmt: skip
    recorder = _served(head, CREATE)
    assert recorder.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    [answer] = _answers(recorder)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b'"task_id"' in answer
