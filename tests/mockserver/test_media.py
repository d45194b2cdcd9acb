"""The bundled MP4 results are real videos, and serve_bytes follows RFC 9110 byte ranges."""

from __future__ import annotations

import array
import io
from fractions import Fraction
from importlib import resources

import av
import pytest

from mockserver.media import (
    VIDEO_FPS,
    ByteRangeResult,
    mp4_bytes,
    serve_bytes,
    video_durations,
    video_sizes,
)

DATA = b"0123456789"
TOTAL = len(DATA)

ASSET_CASES = [
    pytest.param(duration, width, height, id=f"{width}x{height}_{duration}s")
    for duration in (5, 10)
    for width, height in (
        (1280, 720),
        (720, 1280),
        (720, 720),
        (1920, 1080),
        (1080, 1920),
        (1080, 1080),
    )
]


def _headers(result: ByteRangeResult) -> dict[str, str]:
    names = [name.lower() for name, _ in result.headers]
    assert len(names) == len(set(names)), f"duplicate header in {result.headers}"
    return {name.lower(): value for name, value in result.headers}


# --- assets -------------------------------------------------------------------------------------


def test_catalogue_lists_six_sizes_and_two_durations() -> None:
    assert VIDEO_FPS == 24
    assert video_durations() == (5, 10)
    assert set(video_sizes()) == {
        (1280, 720),
        (720, 1280),
        (720, 720),
        (1920, 1080),
        (1080, 1920),
        (1080, 1080),
    }
    assert len(video_sizes()) == 6


def test_asset_folder_holds_exactly_the_catalogue() -> None:
    folder = resources.files("mockserver") / "assets" / "videos"
    present = {entry.name for entry in folder.iterdir() if entry.name.endswith(".mp4")}
    expected = {
        f"{w}x{h}_{d}s{sound}.mp4" for d in video_durations() for w, h in video_sizes() for sound in ("", "_audio")
    }
    assert present == expected


@pytest.mark.parametrize(("duration", "width", "height"), ASSET_CASES)
def test_asset_is_a_playable_h264_mp4_of_the_nominal_size_and_duration(duration: int, width: int, height: int) -> None:
    data = mp4_bytes(duration, width, height)
    assert len(data) < 150_000
    # faststart: the moov box precedes mdat so players can start from the first range request.
    assert data[4:8] == b"ftyp"
    assert 0 <= data.find(b"moov") < data.find(b"mdat")
    with av.open(io.BytesIO(data), mode="r") as container:
        assert "mp4" in container.format.name.split(",")
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (width, height)
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == VIDEO_FPS
        assert stream.duration is not None
        assert stream.time_base is not None
        stream_seconds = stream.duration * stream.time_base
        assert abs(stream_seconds - duration) <= Fraction(1, VIDEO_FPS)
        # Decode every frame (proves the whole clip plays) but keep none: 1080p frames are large.
        decoded = 0
        for frame in container.decode(stream):
            assert (frame.width, frame.height) == (width, height)
            decoded += 1
    assert decoded == VIDEO_FPS * duration


def test_mp4_bytes_is_read_once() -> None:
    assert mp4_bytes(5, 720, 720) is mp4_bytes(5, 720, 720)


@pytest.mark.parametrize(
    ("duration", "width", "height"),
    [
        pytest.param(7, 1280, 720, id="unknown-duration"),
        pytest.param(5, 640, 480, id="unknown-size"),
        pytest.param(5, 720, 1920, id="mixed-size"),
        pytest.param(0, 0, 0, id="zeros"),
    ],
)
def test_mp4_bytes_rejects_missing_combinations(duration: int, width: int, height: int) -> None:
    with pytest.raises(ValueError, match="no video asset"):
        mp4_bytes(duration, width, height)


# --- serve_bytes truth table -------------------------------------------------------------------

RANGE_CASES = [
    pytest.param(None, 200, DATA, None, id="no-range"),
    pytest.param("bytes=0-3", 206, b"0123", "bytes 0-3/10", id="first-last"),
    pytest.param("bytes=2-2", 206, b"2", "bytes 2-2/10", id="single-byte"),
    pytest.param("bytes=0-9", 206, DATA, "bytes 0-9/10", id="whole-as-range"),
    pytest.param("bytes=4-", 206, b"456789", "bytes 4-9/10", id="open-ended"),
    pytest.param("bytes=9-", 206, b"9", "bytes 9-9/10", id="open-ended-last-byte"),
    pytest.param("bytes=-3", 206, b"789", "bytes 7-9/10", id="suffix"),
    pytest.param("bytes=-10", 206, DATA, "bytes 0-9/10", id="suffix-whole"),
    pytest.param("bytes=-99", 206, DATA, "bytes 0-9/10", id="suffix-longer-than-data"),
    pytest.param("bytes=5-99", 206, b"56789", "bytes 5-9/10", id="end-clamped"),
    pytest.param("Bytes=1-2", 206, b"12", "bytes 1-2/10", id="unit-case-insensitive"),
    pytest.param("bytes=10-", 416, b"", "bytes */10", id="start-at-end"),
    pytest.param("bytes=10-20", 416, b"", "bytes */10", id="entirely-beyond-end"),
    pytest.param("bytes=-0", 416, b"", "bytes */10", id="empty-suffix"),
    pytest.param("bytes=abc", 200, DATA, None, id="invalid-garbage"),
    pytest.param("bytes=5-2", 200, DATA, None, id="invalid-last-before-first"),
    pytest.param("bytes=", 200, DATA, None, id="invalid-empty-set"),
    pytest.param("bytes=-", 200, DATA, None, id="invalid-bare-dash"),
    pytest.param("bytes", 200, DATA, None, id="invalid-no-equals"),
    pytest.param("bytes=1_0-", 200, DATA, None, id="invalid-underscore-digit"),
    pytest.param("bytes=\u0663-", 200, DATA, None, id="invalid-non-ascii-digit"),
    pytest.param("bytes=0x1-", 200, DATA, None, id="invalid-hex"),
    pytest.param("items=0-3", 200, DATA, None, id="other-unit"),
    pytest.param("bytes=0-1,4-5", 200, DATA, None, id="multi-range"),
    pytest.param("bytes=0-1, 20-30", 200, DATA, None, id="multi-range-one-unsatisfiable"),
]


@pytest.mark.parametrize(("range_header", "status", "body", "content_range"), RANGE_CASES)
def test_serve_bytes_get(range_header: str | None, status: int, body: bytes, content_range: str | None) -> None:
    result = serve_bytes(DATA, method="GET", range_header=range_header)
    headers = _headers(result)
    assert result.status == status
    assert result.body == body
    assert headers.get("content-range") == content_range
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-length"] == str(len(body))
    if status == 416:
        assert "content-type" not in headers
    else:
        assert headers["content-type"] == "video/mp4"


@pytest.mark.parametrize(("range_header", "status", "body", "content_range"), RANGE_CASES)
def test_serve_bytes_head_matches_get_without_body(
    range_header: str | None, status: int, body: bytes, content_range: str | None
) -> None:
    get = serve_bytes(DATA, method="GET", range_header=range_header)
    head = serve_bytes(DATA, method="HEAD", range_header=range_header)
    assert head.status == get.status == status
    assert head.headers == get.headers
    assert head.body == b""
    assert _headers(head)["content-length"] == str(len(body))


@pytest.mark.parametrize(
    ("range_header", "status", "content_range"),
    [
        pytest.param(None, 200, None, id="no-range"),
        pytest.param("bytes=0-", 416, "bytes */0", id="open-ended"),
        pytest.param("bytes=-1", 416, "bytes */0", id="suffix"),
        pytest.param("bytes=0-0", 416, "bytes */0", id="first-last"),
    ],
)
def test_serve_bytes_empty_payload(range_header: str | None, status: int, content_range: str | None) -> None:
    result = serve_bytes(b"", method="GET", range_header=range_header)
    assert result.status == status
    assert result.body == b""
    assert _headers(result).get("content-range") == content_range
    assert _headers(result)["content-length"] == "0"


def test_serve_bytes_content_type_is_passed_through() -> None:
    result = serve_bytes(DATA, method="GET", range_header="bytes=0-0", content_type="image/png")
    assert _headers(result)["content-type"] == "image/png"


def test_etag_is_quoted_stable_and_content_derived() -> None:
    etags = {
        _headers(serve_bytes(DATA, method=method, range_header=rng))["etag"]
        for method in ("GET", "HEAD")
        for rng in (None, "bytes=0-1", "bytes=50-", "garbage")
    }
    # A copy with equal content must get the same tag: it names the representation, not the object.
    etags.add(_headers(serve_bytes(bytes(bytearray(DATA)), method="GET", range_header=None))["etag"])
    assert len(etags) == 1
    (etag,) = etags
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert len(etag) > 2
    other = _headers(serve_bytes(DATA + b"!", method="GET", range_header=None))["etag"]
    assert other != etag


def test_serving_a_real_asset_range_reassembles_the_file() -> None:
    data = mp4_bytes(5, 1280, 720)
    half = len(data) // 2
    first = serve_bytes(data, method="GET", range_header=f"bytes=0-{half - 1}")
    rest = serve_bytes(data, method="GET", range_header=f"bytes={half}-")
    assert (first.status, rest.status) == (206, 206)
    assert first.body + rest.body == data
    assert _headers(rest)["content-range"] == f"bytes {half}-{len(data) - 1}/{len(data)}"


@pytest.mark.parametrize("method", ["POST", "PUT", "get", "OPTIONS", ""])
def test_serve_bytes_rejects_other_methods(method: str) -> None:
    with pytest.raises(ValueError, match="GET and HEAD"):
        serve_bytes(DATA, method=method, range_header=None)


@pytest.mark.parametrize(("duration", "width", "height"), ASSET_CASES)
def test_the_sound_variant_has_one_aac_track_as_long_as_the_video_and_the_silent_one_none(
    duration: int, width: int, height: int
) -> None:
    with av.open(io.BytesIO(mp4_bytes(duration, width, height, audio=True))) as container:
        (audio,) = container.streams.audio
        (video,) = container.streams.video
        assert audio.codec_context.name == "aac"
        assert float(audio.duration * audio.time_base) == pytest.approx(duration, abs=0.05)
        assert (video.codec_context.width, video.codec_context.height) == (width, height)
        samples = array.array("f")
        for frame in container.decode(audio=0):
            samples.frombytes(bytes(frame.planes[0])[: frame.samples * 4])  # AAC decodes to float32 planes
    assert max(abs(s) for s in samples) > 0.05  # a tone, not silence
    with av.open(io.BytesIO(mp4_bytes(duration, width, height))) as container:
        assert len(container.streams.audio) == 0


@pytest.mark.parametrize(("sound", "tracks"), [("on", 1), ("off", 0), (None, 0)])
def test_a_task_serves_an_audio_track_exactly_when_it_asked_for_sound(sound: str | None, tracks: int) -> None:
    from mockserver import Engine, Progression, Service, VirtualClock

    service = Service(Engine(clock=VirtualClock(), progression=Progression.immediate()))
    body = {"model": "kling-v2-6", "mode": "pro", "multi_prompt": [{"prompt": "a fox", "duration": 5}]}
    if sound is not None:
        body["sound"] = sound
    auth = [("authorization", "Bearer sk-test")]
    task_id = service.handle_simple("POST", "/v1/video/generations", body, auth).payload["task_id"]
    done = service.handle_simple("GET", f"/v1/video/generations/{task_id}", None, auth).payload
    assert done["status"] == "completed", done
    served = service.handle_simple("GET", "/__media__/" + done["url"].rpartition("/__media__/")[2]).body
    with av.open(io.BytesIO(served)) as container:
        assert len(container.streams.audio) == tracks
        assert len(container.streams.video) == 1
