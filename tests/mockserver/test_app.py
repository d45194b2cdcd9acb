"""The Starlette door, driven without a socket through httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
