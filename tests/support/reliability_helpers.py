"""Doors, a raw HTTP/1.1 client and hostile payloads for the reliability suite.

Imported as ``reliability_helpers`` (``tests/support`` is on pytest's ``pythonpath``). The raw socket
client exists because httpx normalises what the battery must send verbatim: ``..`` segments,
duplicated headers, undecodable bytes, bodies that announce more than they carry.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jwt
from sample_payloads import t2v

from mockserver import ApiRequest, Service, load_contract
from mockserver.contract import Contract
from mockserver.http import find_header

CREATE = load_contract().operations["video_generations.create"].path
AUTH = ("authorization", "Bearer sk-test")
JSON = ("content-type", "application/json")
Headers = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Reply:
    """What a door answered: status, headers (names lower-cased) and the raw body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return find_header(self.headers, name)

    def json(self) -> Any:
        return json.loads(self.body)


class Door(Protocol):
    """One way into the fake. ``target`` is sent verbatim (path and query)."""

    name: str

    def send(self, method: str, target: str, headers: Headers = (), body: bytes = b"") -> Reply: ...


class InProcessDoor:
    """Straight into :meth:`Service.handle`, no HTTP at all."""

    name = "in_process"

    def __init__(self, service: Service) -> None:
        self.service = service

    def send(self, method: str, target: str, headers: Headers = (), body: bytes = b"") -> Reply:
        path, _, query = target.partition("?")
        request = ApiRequest(
            method=method,
            scheme="http",
            host="127.0.0.1",
            path=path,
            query=query,
            headers=tuple((k.lower(), v) for k, v in headers),
            body=body,
        )
        answer = self.service.handle(request)
        return Reply(answer.status, tuple((k.lower(), v) for k, v in answer.headers), answer.body)


def _read_reply(sock: socket.socket) -> Reply:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response head: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = tuple((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
    length = int(next((v for k, v in headers if k == "content-length"), "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Reply(status, headers, rest[:length])


def request_head(method: str, target: str, host: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class LiveDoor:
    """A raw HTTP/1.1 exchange over loopback, one connection per request."""

    name = "live"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def connect(self, timeout: float = 15.0) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def send(self, method: str, target: str, headers: Headers = (), body: bytes = b"") -> Reply:
        pairs = [*headers, ("content-length", str(len(body))), ("connection", "close")]
        with self.connect() as sock:
            sock.sendall(request_head(method, target, f"{self.host}:{self.port}", pairs) + body)
            return _read_reply(sock)

    def read_reply(self, sock: socket.socket) -> Reply:
        return _read_reply(sock)


# -- faces -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceCase:
    """How the battery speaks one face: its create path, credentials, a valid body, and how an
    error answer names its catalogue entry (the gateway's ``error.code``, Kling's ``code``)."""

    name: str
    create: str
    poll: str
    auth: tuple[str, str]
    body: dict[str, Any]

    @property
    def contract(self) -> Contract:
        return load_contract(self.name)

    def code(self, reply: Reply) -> Any:
        payload = reply.json()
        return payload["error"]["code"] if self.name == "gateway" else payload["code"]

    def assert_error(self, reply: Reply, key: str) -> None:
        """``reply`` is the face's catalogued error ``key`` (status, code, JSON envelope)."""
        __tracebackhide__ = True
        spec = self.contract.errors[key]
        assert (reply.header("content-type") or "").startswith("application/json"), (reply.status, reply.body[:200])
        assert (reply.status, self.code(reply)) == (spec.http_status, spec.code), reply.body[:300]
        assert not sorted(self.contract.error_validator().iter_errors(reply.json()), key=str), reply.body[:300]


def official_token(*, lifetime: float = 20 * 365 * 86_400) -> str:
    """A JWT signed with the official face's default pair, valid on any clock of this decade."""
    pair = load_contract("official").index["auth"]["default_keys"][0]
    return jwt.encode({"iss": pair["access_key"], "exp": int(time.time() + lifetime)}, pair["secret_key"])


def _op_path(face: str, verb: str) -> str:
    ops = [op for op in load_contract(face).operations.values() if op.verb == verb]
    return next(op.path for op in ops if op.kind in (None, "text2video"))


FACE_CASES = {
    "gateway": FaceCase("gateway", _op_path("gateway", "task.create"), _op_path("gateway", "task.get"), AUTH, t2v()),
    "official": FaceCase(
        "official",
        _op_path("official", "task.create"),
        _op_path("official", "task.get"),
        ("authorization", f"Bearer {official_token()}"),
        {"model_name": "kling-v2-6", "prompt": "a red fox in snow", "duration": "5", "mode": "std"},
    ),
}


# -- payloads --------------------------------------------------------------------------------


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def create_and_poll_ok(door: Door) -> None:
    """The fake still serves: a normal create succeeds and its task can be polled."""
    created = door.send("POST", CREATE, [AUTH, JSON], encode(t2v()))
    assert created.status == 200, created.body[:300]
    task_id = created.json()["task_id"]
    polled = door.send("GET", f"{CREATE}/{task_id}", [AUTH])
    assert polled.status == 200, polled.body[:300]
    assert polled.json()["task_id"] == task_id


@dataclass
class Live:
    """A running fake: its service (shared with the server thread) and a raw-socket door."""

    service: Service
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def door(self) -> LiveDoor:
        return LiveDoor(self.host, self.port)
