"""The Starlette door, driven without a socket through httpx.ASGITransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from mock_bodies import t2v

from mockserver import Engine, Service, VirtualClock, create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = create_app(Service(Engine(clock=VirtualClock(), seed=1)))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://fake.test", headers={"authorization": "Bearer sk-test"}
    )


async def test_create_poll_download_through_asgi(client: httpx.AsyncClient) -> None:
    async with client:
        created = (await client.post("/v1/video/generations", json=t2v())).json()
        statuses = [(await client.get(f"/v1/video/generations/{created['task_id']}")).json() for _ in range(2)]
        assert [s["status"] for s in statuses] == ["in_progress", "completed"]
        assert statuses[-1]["url"].startswith("http://fake.test/__media__/")
        media = await client.get(statuses[-1]["url"], headers={"range": "bytes=0-7"})
        assert (media.status_code, media.content[4:8]) == (206, b"ftyp")


async def test_a_declared_oversized_body_is_refused_before_reading(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.post(
            "/v1/video/generations",
            content=b"{}",
            headers={"content-type": "application/json", "content-length": str(10**9)},
        )
    assert response.status_code == 413


async def test_a_streamed_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    chunk = b" " * (1 << 20)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield chunk

    async with client:
        response = await client.post(
            "/v1/video/generations", content=body(), headers={"content-type": "application/json"}
        )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_body_too_large")


async def test_query_strings_and_encoded_paths_reach_the_service(client: httpx.AsyncClient) -> None:
    async with client:
        response = await client.get("/__mock__/journal?operation=video_generations.create")
        encoded = await client.get("/__media__/..%2F..%2Fetc%2Fpasswd")
    assert response.status_code == 200
    assert encoded.status_code == 404


async def _call_app(
    http_version: str, method: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes, int]:
    """One request straight through the ASGI app: (status, body, how often it called receive)."""
    service = Service(Engine(clock=VirtualClock(), seed=1))
    app = create_app(service)
    received = 0
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": http_version,
        "method": method,
        "scheme": "http",
        "path": "/v1/video/generations",
        "raw_path": b"/v1/video/generations",
        "query_string": b"",
        "headers": [(b"host", b"fake.test"), (b"authorization", b"Bearer sk-test"), *headers],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    status = sent[0]["status"]
    assert isinstance(status, int)
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), received  # type: ignore[misc]


@pytest.mark.parametrize(
    ("http_version", "headers", "waits"),
    [
        ("1.1", [], False),  # HTTP/1: no Content-Length, no Transfer-Encoding: no body to wait for
        ("1.0", [], False),
        ("1.1", [(b"content-length", b"0")], True),
        ("1.1", [(b"transfer-encoding", b"chunked")], True),
        ("2", [], True),  # HTTP/2 frames a body without either header: it is read
    ],
)
async def test_the_door_waits_for_a_body_only_where_http_says_one_may_follow(
    http_version: str, headers: list[tuple[bytes, bytes]], waits: bool
) -> None:
    _, _, received = await _call_app(http_version, "GET", headers, b"")
    assert received == (1 if waits else 0)


async def test_an_http2_create_without_content_length_is_read() -> None:
    body = json.dumps(t2v()).encode()
    status, answer, received = await _call_app("2", "POST", [(b"content-type", b"application/json")], body)
    assert (status, received) == (200, 1), answer


async def test_without_routes_or_middleware_the_stack_is_the_adapter() -> None:
    from mockserver.app import ServiceAdapter

    app = create_app(Service(Engine(clock=VirtualClock(), seed=1)))
    assert isinstance(app.build_middleware_stack(), ServiceAdapter)


def _no_op(app: Any) -> Any:
    return app


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda app: app.add_middleware(_no_op), id="a user's middleware"),
        pytest.param(lambda app: app.add_exception_handler(500, lambda request, exc: None), id="a 500 handler"),
        pytest.param(lambda app: setattr(app, "debug", True), id="debug"),
    ],
)
async def test_error_handling_a_user_asks_for_brings_the_error_middleware_back(change: Any) -> None:
    from starlette.middleware.errors import ServerErrorMiddleware

    from mockserver.app import ServiceAdapter

    app = create_app(Service(Engine(clock=VirtualClock(), seed=1)))
    change(app)
    stack = app.build_middleware_stack()
    assert isinstance(stack, ServerErrorMiddleware)
    inner: Any = stack.app
    while not isinstance(inner, ServiceAdapter):  # through the user's middleware, if any
        inner = inner.app
    assert stack.debug is app.debug


class _Broken(Service):
    def handle(self, request: object) -> object:  # type: ignore[override]  # noqa: ARG002
        raise RuntimeError("a bug")


async def test_a_bug_in_the_service_is_still_answered_500() -> None:
    app = create_app(_Broken(Engine(clock=VirtualClock(), seed=1)))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as client:
        assert (await client.get("/v1/video/generations/task_x")).status_code == 500


def test_a_bug_in_the_service_is_answered_500_by_the_live_door_and_logged() -> None:
    import logging
    import threading

    import uvicorn

    from mockserver._uvicorn import ThreadServer
    from mockserver.serve import bind

    logged: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record)

    # On uvicorn's own logger, enabled: another test's logging setup may have stopped it from
    # propagating, or (dictConfig's default) disabled it.
    logger, keep = logging.getLogger("uvicorn.error"), Keep(logging.ERROR)
    was_disabled, logger.disabled = logger.disabled, False
    sock = bind("127.0.0.1", 0)
    app = create_app(_Broken(Engine(clock=VirtualClock(), seed=1)))
    config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False)
    server = ThreadServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    logger.addHandler(keep)
    thread.start()
    try:
        server.ready.wait()
        answer = httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/v1/video/generations/task_x")
    finally:
        server.request_exit()
        thread.join()  # the server has stopped: whatever it logs is logged
        logger.removeHandler(keep)
        logger.disabled = was_disabled
    assert answer.status_code == 500
    assert any("a bug" in repr(record.exc_info) for record in logged)


async def test_a_route_a_user_adds_is_served_beside_the_fake() -> None:
    from starlette.responses import PlainTextResponse

    app = create_app(Service(Engine(clock=VirtualClock(), seed=1)))
    app.add_route("/healthz", lambda request: PlainTextResponse("ok"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake.test") as client:
        assert (await client.get("/healthz")).text == "ok"
        refused = await client.get("/v1/video/generations/task_x")  # every other path: the service
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_api_key")


async def test_middleware_a_user_adds_sees_every_request() -> None:
    from starlette.types import ASGIApp, Receive, Scope, Send

    seen: list[str] = []

    class Spy:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            seen.append(scope["path"])
            await self.app(scope, receive, send)

    app = create_app(Service(Engine(clock=VirtualClock(), seed=1)))
    app.add_middleware(Spy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake.test") as client:
        assert (await client.get("/openapi.json")).status_code == 200
    assert seen == ["/openapi.json"]


async def test_lifespan_events_reach_the_router() -> None:
    from starlette.types import Message

    app = create_app(Service(Engine(clock=VirtualClock(), seed=1)))
    incoming: Iterator[Message] = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> Message:
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def _scope(headers: list[Any]) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/video/generations/task_x",
        "raw_path": b"/v1/video/generations/task_x",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
    }


def _adapter() -> Any:
    from mockserver.app import ServiceAdapter

    return ServiceAdapter(Service(Engine(clock=VirtualClock(), seed=1)))


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(tuple, id="tuples, as uvicorn and httpx send them"),
        pytest.param(list, id="lists, as the ASGI spec allows"),
    ],
)
def test_header_lines_are_read_in_order_whatever_shape_the_server_sends(shape: Any) -> None:
    raw = [(b"host", b"fake.test"), (b"Authorization", b"Bearer sk-\xe9"), (b"x-empty", b"")]
    request = _adapter()._request(_scope([shape(line) for line in raw]), b"", oversize=False)
    assert request.headers == (("host", "fake.test"), ("Authorization", "Bearer sk-\xe9"), ("x-empty", ""))
    assert request.host == "fake.test"


def test_a_line_every_request_sends_is_decoded_once_and_shared() -> None:
    adapter = _adapter()
    line, long_line = (b"user-agent", b"OpenAI/Python 2.8.1"), (b"cookie", b"c" * 600)
    first = adapter._request(_scope([line, long_line]), b"", oversize=False)
    again = adapter._request(_scope([(bytes(line[0]), bytes(line[1])), long_line]), b"", oversize=False)
    assert first.headers == again.headers
    assert first.headers[0] is again.headers[0]  # a new request's bytes, the same strings
    assert first.headers[1] is not again.headers[1]  # a line over the bound is decoded each time


def test_the_decoded_lines_kept_are_bounded() -> None:
    from mockserver import http

    adapter = _adapter()
    for n in range(http._MAX_HEADER_LINES + 10):
        adapter._request(_scope([(b"x-request-id", str(n).encode())]), b"", oversize=False)
        assert len(http._HEADER_LINES[False]) <= http._MAX_HEADER_LINES
