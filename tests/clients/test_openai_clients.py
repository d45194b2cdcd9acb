"""The OpenAI Python SDK's ``client.videos`` (3.x, on httpx2) works against the fake unchanged,
only its base URL and key changed: against ``kling-testkit serve`` over HTTP, and in-process
through patched mode and an injected ``http_client``, sync and async, text- and image-to-video.
The downloaded bytes are a playable MP4 of the requested seconds and size; a failed task ends
``create_and_poll`` with ``status == "failed"``; an injected 429 reaches the SDK's retries."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from typing import Any

import av
import httpx2
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from sample_payloads import image_bytes
from served import serve

from kling_testkit import KlingMock, assert_retry_after_honoured, retry_after_waits

# The SDK marks client.videos deprecated (OpenAI's own video model is being retired); the route
# it speaks is what gateways serve for Kling, so the warning says nothing about this fake.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

IN_PROCESS = "https://api.modelstream.ai/v1"
KEY = "sk-test"
FRAME = ("frame.png", image_bytes(640, 360), "image/png")

CASES = [
    pytest.param({"seconds": "5", "size": "1280x720"}, 5, (1280, 720), id="t2v-5s-720p"),
    pytest.param({"seconds": "10", "size": "1080x1920"}, 10, (1080, 1920), id="t2v-10s-1080p-portrait"),
    pytest.param({"input_reference": FRAME, "size": "720x720"}, 5, (720, 720), id="i2v-input-reference"),
]


def _probe(data: bytes) -> tuple[int, int, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None
        assert stream.time_base is not None
        frames = sum(1 for _ in container.decode(stream))  # playable: every frame decodes
        assert frames > 0
        return round(float(stream.duration * stream.time_base)), stream.codec_context.width, stream.codec_context.height


def _complete(client: OpenAI, fields: dict[str, Any]) -> tuple[Any, bytes]:
    video = client.videos.create_and_poll(model="kling-v2-6", prompt="a red fox in snow", **fields)
    assert video.status == "completed", video
    assert client.videos.retrieve(video.id).status == "completed"
    return video, client.videos.download_content(video.id).read()


def _acomplete(make: Callable[[], AsyncOpenAI], fields: dict[str, Any]) -> tuple[Any, bytes]:
    """Run the async client in its own event loop (closed with it)."""

    async def run() -> tuple[Any, bytes]:
        async with make() as client:
            video = await client.videos.create_and_poll(model="kling-v2-6", prompt="a red fox in snow", **fields)
            assert video.status == "completed", video
            assert (await client.videos.retrieve(video.id)).status == "completed"
            return video, (await client.videos.download_content(video.id)).read()

    return asyncio.run(run())


def _check(video: Any, data: bytes, seconds: int, size: tuple[int, int]) -> None:
    assert (video.seconds, video.size) == (str(seconds), f"{size[0]}x{size[1]}")
    assert _probe(data) == (seconds, *size)


# -- in-process --------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "seconds", "size"), CASES)
def test_the_sdk_completes_in_process_patched_sync_and_async(
    fields: dict[str, Any], seconds: int, size: tuple[int, int]
) -> None:
    with KlingMock(virtual_time=True) as api:  # the SDK's poll sleeps move the fake's clock
        with OpenAI(base_url=IN_PROCESS, api_key=KEY) as client:
            video, data = _complete(client, fields)
        _check(video, data, seconds, size)
        video, data = _acomplete(lambda: AsyncOpenAI(base_url=IN_PROCESS, api_key=KEY), fields)
        _check(video, data, seconds, size)
    assert {e.face for e in api.entries()} == {"openai"}


@pytest.mark.parametrize(("fields", "seconds", "size"), CASES)
def test_the_sdk_completes_with_an_injected_http_client_sync_and_async(
    fields: dict[str, Any], seconds: int, size: tuple[int, int]
) -> None:
    api = KlingMock()
    http = httpx2.Client(transport=api.httpx2_transport())
    with OpenAI(base_url=IN_PROCESS, api_key=KEY, http_client=http) as client:
        video, data = _complete(client, {**fields, "poll_interval_ms": 0})
    _check(video, data, seconds, size)

    def make() -> AsyncOpenAI:
        http = httpx2.AsyncClient(transport=api.httpx2_transport())
        return AsyncOpenAI(base_url=IN_PROCESS, api_key=KEY, http_client=http)

    video, data = _acomplete(make, {**fields, "poll_interval_ms": 0})
    _check(video, data, seconds, size)


def test_create_and_poll_waits_as_the_poll_hint_says() -> None:
    with KlingMock(virtual_time=True) as api, OpenAI(base_url=IN_PROCESS, api_key=KEY) as client:
        start = api.clock.now()
        client.videos.create_and_poll(model="kling-v2-6", prompt="a fox")
    polls = [e for e in api.entries() if e.operation == "videos.get"]
    assert [e.status for e in polls] == [200, 200]
    assert ("openai-poll-after-ms", "1000") in polls[0].response_headers
    assert api.clock.now() - start == 1.0  # one wait, of the hinted second, on the fake's clock


def test_a_failed_task_ends_create_and_poll_with_the_reason_in_error() -> None:
    with (
        KlingMock(virtual_time=True, outcome="failed:content_policy"),
        OpenAI(base_url=IN_PROCESS, api_key=KEY) as client,
    ):
        video = client.videos.create_and_poll(model="kling-v2-6", prompt="a fox")
        assert video.status == "failed"
        assert video.error is not None
        assert (video.error.code, video.error.message) == (
            "content_policy_violation",
            "Failure to pass the risk control system",
        )
        with pytest.raises(openai.BadRequestError, match="not completed"):
            client.videos.download_content(video.id)


def test_an_injected_429_reaches_the_sdks_retries_on_the_fakes_clock() -> None:
    with KlingMock(virtual_time=True) as api, OpenAI(base_url=IN_PROCESS, api_key=KEY) as client:
        api.arm_fault(operation="task.create", error="rate_limited", retry_after=5, times=1)
        video = client.videos.create(model="kling-v2-6", prompt="a fox")
        assert video.status == "queued"
        assert [w.waited for w in retry_after_waits(api.engine)] == [5.0]  # honoured, in virtual time
        assert_retry_after_honoured(api.engine)
        api.arm_fault(operation="task.create", error="rate_limited", retry_after=5, times=1)
        with pytest.raises(openai.RateLimitError) as refused:
            client.with_options(max_retries=0).videos.create(model="kling-v2-6", prompt="a fox")
    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        pytest.param({"seconds": "4"}, "seconds", id="openai-seconds"),
        pytest.param({"size": "1792x1024"}, "size", id="openai-size"),
        pytest.param(
            {"input_reference": ("a.png", b"not an image", "image/png")}, "input_reference", id="not-an-image"
        ),
        pytest.param({"model": "sora-2"}, "model", id="unknown-model"),
    ],
)
def test_a_refusal_reaches_the_sdk_naming_its_field(fields: dict[str, Any], param: str) -> None:
    api = KlingMock()
    client = OpenAI(
        base_url=IN_PROCESS, api_key=KEY, max_retries=0, http_client=httpx2.Client(transport=api.httpx2_transport())
    )
    with client, pytest.raises(openai.APIStatusError) as refused:
        client.videos.create(**{"model": "kling-v2-6", "prompt": "a fox", **fields})
    assert refused.value.param == param


def test_list_pages_through_the_users_videos() -> None:
    api = KlingMock()
    client = OpenAI(base_url=IN_PROCESS, api_key=KEY, http_client=httpx2.Client(transport=api.httpx2_transport()))
    with client:
        ids = [client.videos.create(model="kling-v2-6", prompt=f"fox {i}").id for i in range(3)]
        assert [v.id for v in client.videos.list(limit=2)] == ids[::-1]  # the SDK follows the cursor


# -- out of process ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with serve() as (base_url, lines):
        assert any("face openai at /" in line for line in lines), lines
        yield base_url


@pytest.mark.parametrize(("fields", "seconds", "size"), CASES)
def test_the_sdk_completes_against_serve_sync_and_async(
    served: str, fields: dict[str, Any], seconds: int, size: tuple[int, int]
) -> None:
    with OpenAI(base_url=served + "/v1", api_key=KEY) as client:
        video, data = _complete(client, fields)
    _check(video, data, seconds, size)
    video, data = _acomplete(lambda: AsyncOpenAI(base_url=served + "/v1", api_key=KEY), fields)
    _check(video, data, seconds, size)


@pytest.mark.kling(virtual_time=True)
def test_the_kling_mock_fixture_serves_the_sdk_as_it_patches(kling_mock: KlingMock) -> None:
    with OpenAI(base_url=IN_PROCESS, api_key=KEY) as client:
        video = client.videos.create_and_poll(model="kling-v2-6", prompt="a fox", input_reference=FRAME)
        assert (video.status, video.size) == ("completed", "720x1280")
    assert [e.operation for e in kling_mock.entries()] == ["videos.create", "videos.get", "videos.get"]
