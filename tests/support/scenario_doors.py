"""The four doors into the fake, behind one async interface the scenarios are written against.

- ``sync``: the in-process fake (respx side effect -> ``Service.handle``), ``httpx.Client``;
- ``async``: the same, ``httpx.AsyncClient`` (latency awaited on the clock);
- ``asgi``: ``httpx.ASGITransport`` into ``mockserver.create_app`` (async only);
- ``live``: the session's live uvicorn server over a real loopback socket, driven by the admin
  API over HTTP (``AdminClient``), as an out-of-process suite would;
- ``httpx2-sync``, ``httpx2-async``: the in-process fake injected into ``httpx2`` clients (the
  OpenAI SDK 3.x's HTTP client), and ``httpx2-patched``: an ``httpx2.Client`` of its own while
  the fake patches.

Every door records what it saw as a transcript with the base URL and host replaced, so the
parity test can compare doors byte for byte apart from host and port.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from kling_testkit import AdminClient, KlingMock, LiveServer, transport
from kling_testkit._mock import EngineControls
from mockserver import Engine, JournalEntry, Service, VirtualClock, create_app
from mockserver.engine.clock import DEFAULT_EPOCH

AUTH = {"Authorization": "Bearer sk-test"}
CREATE = "/v1/video/generations"
IN_PROCESS_BASE = "https://api.modelstream.ai"
SEED = 0  # the plugin's default seed: every door's engine makes the same task ids


class Controls(Protocol):
    def advance_clock(self, seconds: float) -> float: ...
    def set_outcome(self, outcome: Any, task_id: str | None = None) -> None: ...
    def set_progression(self, progression: Any, task_id: str | None = None) -> None: ...
    def arm_fault(self, plan: Any = None, /, **fields: Any) -> int: ...


class _EngineControls(EngineControls):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine


@dataclass
class Door:
    """One way in: ``send`` an HTTP request, ``controls`` for the fake, the engine's journal."""

    name: str
    base_url: str
    controls: Controls
    engine: Engine
    send: Callable[..., Any]  # async (method, url, **kwargs) -> httpx.Response
    close: Callable[[], Any]
    transcript: list[Any] = field(default_factory=list)

    async def request(self, method: str, path_or_url: str, **kwargs: Any) -> httpx.Response:
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        if "json" in kwargs:
            # httpx before 0.28 writes json= with spaces after separators, httpx2 without: the
            # doors send the same bytes, so their journals compare on the lowest versions too.
            body = kwargs.pop("json")
            kwargs["content"] = orjson.dumps(body)
            kwargs["headers"] = {**kwargs.get("headers", {}), "content-type": "application/json"}
        response: httpx.Response = await self.send(method, url, **kwargs)
        self.transcript.append(self._normalise(self._record(method, url, response)))
        return response

    def _record(self, method: str, url: str, response: httpx.Response) -> dict[str, Any]:
        content_type = response.headers.get("content-type", "")
        body: Any
        headers = [list(h) for h in response.headers.multi_items()]
        if content_type.startswith("application/json"):
            body = response.json()
            headers = _json_length(headers, len(response.content))
        else:
            body = {"bytes": len(response.content), "sha256": hashlib.sha256(response.content).hexdigest()}
        return {"request": [method, url], "status": response.status_code, "headers": headers, "body": body}

    def _normalise(self, value: Any) -> Any:
        host = httpx.URL(self.base_url).netloc.decode()
        text = orjson.dumps(value).decode().replace(self.base_url, "{base}").replace(host, "{host}")
        return orjson.loads(text)

    def journal(self) -> list[Any]:
        entries: list[JournalEntry] = self.engine.journal.entries()
        records = []
        for entry in entries:
            record = entry.to_json()
            if isinstance(entry.response_body, (dict, list)):
                length = len(orjson.dumps(entry.response_body))
                record["response"]["headers"] = _json_length(record["response"]["headers"], length)
            records.append(self._normalise(record))
        return records


def _json_length(headers: list[list[str]], length: int) -> list[list[str]]:
    """A JSON body holds the base URL, so its length differs by door: check it, then blank it."""
    out = []
    for name, value in headers:
        if name == "content-length":
            assert int(value) == length, f"content-length {value} for a {length}-byte body"
            value = "{json length}"
        out.append([name, value])
    return out


async def open_door(name: str, live: LiveServer | None = None) -> Door:
    """Build the door ``name`` (``live`` needs the session's reset live server)."""
    if name in ("sync", "async"):
        api = KlingMock(seed=SEED, clock=VirtualClock(start=DEFAULT_EPOCH))
        if name == "sync":
            client = httpx.Client(transport=transport(api))

            async def send_sync(method: str, url: str, **kwargs: Any) -> httpx.Response:
                return client.request(method, url, **kwargs)

            return Door(name, api.base_url, api, api.engine, send_sync, client.close)
        aclient = httpx.AsyncClient(transport=transport(api))
        return Door(name, api.base_url, api, api.engine, aclient.request, aclient.aclose)
    if name.startswith("httpx2-"):
        return _httpx2_door(name)
    if name == "asgi":
        engine = Engine(clock=VirtualClock(start=DEFAULT_EPOCH), seed=SEED)
        aclient = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(Service(engine))))
        return Door(name, IN_PROCESS_BASE, _EngineControls(engine), engine, aclient.request, aclient.aclose)
    assert name == "live", name
    assert live is not None
    client = httpx.Client()
    admin = AdminClient(live.base_url)

    async def send_live(method: str, url: str, **kwargs: Any) -> httpx.Response:
        return client.request(method, url, **kwargs)

    def close() -> None:
        client.close()
        admin.close()

    return Door(name, live.base_url, admin, live.engine, send_live, close)


def _httpx2_door(name: str) -> Door:
    import httpx2

    api = KlingMock(seed=SEED, clock=VirtualClock(start=DEFAULT_EPOCH))
    # the journal keeps the request headers: send httpx's User-Agent, the one difference
    headers = {"user-agent": f"python-httpx/{httpx.__version__}"}
    if name == "httpx2-async":
        aclient = httpx2.AsyncClient(transport=api.httpx2_transport(), headers=headers)
        return Door(name, api.base_url, api, api.engine, aclient.request, aclient.aclose)
    if name == "httpx2-sync":
        client = httpx2.Client(transport=api.httpx2_transport(), headers=headers)
        close: Callable[[], Any] = client.close
    else:
        assert name == "httpx2-patched", name
        api.start()
        client = httpx2.Client(headers=headers)  # its own transport: the patch answers before it

        def close() -> None:
            client.close()
            api.stop()

    async def send(method: str, url: str, **kwargs: Any) -> Any:
        return client.request(method, url, **kwargs)

    return Door(name, api.base_url, api, api.engine, send, close)


DOORS = ("sync", "async", "asgi", "live", "httpx2-sync", "httpx2-async", "httpx2-patched")
