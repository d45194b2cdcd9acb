"""httpx2 clients (the OpenAI SDK 3.x is built on httpx2, not httpx) reach the in-process fake
through the same doors as httpx clients: an injected transport and patched mode, sync and async,
with the mock's routes, side effects, refusals and pass-through applied unchanged."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import httpx2
import pytest

from kling_testkit import KlingMock, UnmatchedRequest
from kling_testkit.transports import httpx2_transport

AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}


def test_an_injected_httpx2_transport_serves_a_sync_client() -> None:
    api = KlingMock(progression="immediate")
    with httpx2.Client(transport=httpx2_transport(api), base_url=api.base_url) as client:
        created = client.post("/v1/video/generations", json=BODY, headers=AUTH)
        task = client.get(f"/v1/video/generations/{created.json()['task_id']}", headers=AUTH).json()
        video = client.get(task["url"], headers={"Range": "bytes=0-7"})
    assert isinstance(created, httpx2.Response)
    assert task["status"] == "completed"
    assert (video.status_code, video.headers["content-type"], video.content[4:8]) == (206, "video/mp4", b"ftyp")
    assert api.video_generations.create.call_count == 1


def test_an_injected_httpx2_transport_serves_an_async_client_with_latency_on_the_clock() -> None:
    api = KlingMock()
    api.arm_fault(operation="task.get", latency=30)

    async def run() -> int:
        async with httpx2.AsyncClient(transport=api.httpx2_transport(), base_url=api.base_url) as client:
            created = await client.post("/v1/video/generations", json=BODY, headers=AUTH)
            polled = await client.get(f"/v1/video/generations/{created.json()['task_id']}", headers=AUTH)
            return int(polled.status_code)

    before = api.clock.now()
    assert asyncio.run(run()) == 200
    assert api.clock.now() - before == 30  # awaited on the virtual clock, not slept


def test_an_injected_httpx2_transport_refuses_other_hosts_with_an_httpx2_error() -> None:
    api = KlingMock()
    with (
        httpx2.Client(transport=api.httpx2_transport()) as client,
        pytest.raises(httpx2.ConnectError, match="not served"),
    ):
        client.get("https://example.org/")


def test_route_side_effects_reach_httpx2_clients_as_httpx2_objects() -> None:
    api = KlingMock()
    api.video_generations.create.side_effect = [httpx.ConnectTimeout, httpx.Response(503, json={"x": 1})]
    with httpx2.Client(transport=api.httpx2_transport(), base_url=api.base_url) as client:
        with pytest.raises(httpx2.ConnectTimeout):
            client.post("/v1/video/generations", json=BODY, headers=AUTH)
        answered = client.post("/v1/video/generations", json=BODY, headers=AUTH)
    assert (answered.status_code, answered.json()) == (503, {"x": 1})
    assert api.video_generations.create.call_count == 2


def test_patched_mode_serves_httpx2_clients_sync_and_async() -> None:
    async def poll(url: str) -> int:
        async with httpx2.AsyncClient() as client:
            return int((await client.get(url, headers=AUTH)).status_code)

    with KlingMock(progression="immediate") as api:
        created = httpx2.post(api.base_url + "/v1/video/generations", json=BODY, headers=AUTH).json()
        status = asyncio.run(poll(f"{api.base_url}/v1/video/generations/{created['task_id']}"))
    assert (created["status"], status) == ("completed", 200)
    assert [e.operation for e in api.entries()] == ["video_generations.create", "video_generations.get"]


def test_patched_mode_refuses_other_hosts_for_httpx2_and_lets_listed_ones_through() -> None:
    with KlingMock() as api, pytest.raises(UnmatchedRequest, match=r"example\.org"):
        httpx2.get("https://example.org/")
    assert api.unmatched == ["GET https://example.org/"]
    served = httpx2.Client(transport=httpx2.MockTransport(lambda request: httpx2.Response(204)))
    with KlingMock(pass_through=["example.org"]):
        # passed through to the client's own transport (here a mock: nothing leaves the machine)
        assert served.get("https://example.org/").status_code == 204


def test_patching_stops_with_the_mock() -> None:
    plain = httpx2.Client._transport_for_url
    with KlingMock():
        assert httpx2.Client._transport_for_url is not plain
    assert httpx2.Client._transport_for_url is plain


def test_the_kit_imports_httpx2_only_when_a_client_of_it_is_used() -> None:
    code = (
        "import sys\n"
        "import kling_testkit, kling_testkit.plugin\n"
        "api = kling_testkit.mock()\n"
        "with api:\n"
        "    print('httpx2' in sys.modules)\n"
        "    import httpx2\n"  # an SDK imported inside the patched block is patched at import
        "    print(httpx2.get('https://api.modelstream.ai/openapi.json').status_code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "200"]
