"""Regenerate the MP4 result files the fake server hands out as "generated" videos.

Writes one H.264/yuv420p MP4 per (duration, frame size) to ``mockserver/assets/videos/``
as ``{width}x{height}_{duration}s.mp4``, and the same with an AAC audio track (a quiet 440 Hz
tone, what ``sound=on`` tasks serve) as ``{width}x{height}_{duration}s_audio.mp4``. The picture
is a dark background with a bright bar sweeping across and a progress strip along the bottom:
trivially compressible, yet visibly a moving video when a client opens it. Run from anywhere:
``python scripts/make_media.py`` (``--audio-only`` writes only the files with sound).

Requires PyAV (``av``, a dev dependency); the runtime server never imports it.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import Final

import av

FPS: Final = 24
DURATIONS: Final = (5, 10)
SIZES: Final = ((1280, 720), (720, 1280), (720, 720), (1920, 1080), (1080, 1920), (1080, 1080))
OUT_DIR: Final = Path(__file__).resolve().parent.parent / "mockserver" / "assets" / "videos"
#: The audio track of sound=on results: mono AAC, a 440 Hz tone at a tenth of full scale.
AUDIO_RATE: Final = 24_000
AUDIO_TONE_HZ: Final = 440.0
_AUDIO_FRAME: Final = 1024  # samples per AAC frame

# Luma/chroma of the drawing, in limited-range BT.601 YUV (what yuv420p players assume).
_BG_Y: Final = 30
_BAR_Y: Final = 200
_NEUTRAL_UV: Final = 128
# A tinted bar (orange-ish) makes it obvious the chroma planes decode too.
_BAR_U: Final = 80
_BAR_V: Final = 180


def _frame_planes(index: int, total: int, width: int, height: int) -> tuple[bytes, bytes, bytes]:
    """Build the Y, U and V planes for frame ``index`` of ``total``.

    Planes are built row by row from bytes rather than with numpy so the script needs nothing
    beyond PyAV; the images are simple enough that this stays fast.
    """
    bar_w = max(16, width // 16) & ~1
    # Sweep once over the clip so a viewer can tell the position (and thus duration) at a glance.
    x0 = ((width - bar_w) * index // max(1, total - 1)) & ~1
    bar_top, bar_bottom = (height * 3 // 8) & ~1, (height * 5 // 8) & ~1
    strip_h = max(8, height // 40) & ~1
    strip_w = (width * (index + 1) // total) & ~1

    bg_row = bytes([_BG_Y]) * width
    bar_row = bytes([_BG_Y]) * x0 + bytes([_BAR_Y]) * bar_w + bytes([_BG_Y]) * (width - x0 - bar_w)
    strip_row = bytes([_BAR_Y]) * strip_w + bytes([_BG_Y]) * (width - strip_w)
    rows = []
    for y in range(height):
        if bar_top <= y < bar_bottom:
            rows.append(bar_row)
        elif y >= height - strip_h:
            rows.append(strip_row)
        else:
            rows.append(bg_row)
    y_plane = b"".join(rows)

    cw, ch = width // 2, height // 2
    cx0, cbw = x0 // 2, bar_w // 2
    c_rows_u: list[bytes] = []
    c_rows_v: list[bytes] = []
    neutral = bytes([_NEUTRAL_UV]) * cw
    u_bar = bytes([_NEUTRAL_UV]) * cx0 + bytes([_BAR_U]) * cbw + bytes([_NEUTRAL_UV]) * (cw - cx0 - cbw)
    v_bar = bytes([_NEUTRAL_UV]) * cx0 + bytes([_BAR_V]) * cbw + bytes([_NEUTRAL_UV]) * (cw - cx0 - cbw)
    for cy in range(ch):
        inside = bar_top // 2 <= cy < bar_bottom // 2
        c_rows_u.append(u_bar if inside else neutral)
        c_rows_v.append(v_bar if inside else neutral)
    return y_plane, b"".join(c_rows_u), b"".join(c_rows_v)


def _tone(start: int, count: int) -> bytes:
    """``count`` signed 16-bit samples of the tone from sample ``start`` on (little-endian)."""
    samples = (round(3276 * math.sin(2 * math.pi * AUDIO_TONE_HZ * (start + i) / AUDIO_RATE)) for i in range(count))
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


def _add_audio(out: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    stream = out.add_stream("aac", rate=AUDIO_RATE)
    stream.layout = "mono"
    stream.bit_rate = 16_000  # a tone needs little; keeps each file a few kilobytes over the silent one
    stream.time_base = Fraction(1, AUDIO_RATE)
    return stream


def _write_audio(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, duration: int) -> None:
    total = duration * AUDIO_RATE
    for start in range(0, total, _AUDIO_FRAME):
        count = min(_AUDIO_FRAME, total - start)
        frame = av.AudioFrame(format="s16", layout="mono", samples=count)
        frame.planes[0].update(_tone(start, count))
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def write_video(path: Path, *, duration: int, width: int, height: int, audio: bool = False) -> None:
    """Encode one clip of exactly ``duration * FPS`` frames to ``path``, with the audio track if asked."""
    total = duration * FPS
    path.parent.mkdir(parents=True, exist_ok=True)
    # movflags=+faststart puts the moov atom first so range-fetching players can start at once.
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        # Every stream is added before the first packet is muxed (the header is written then).
        sound = _add_audio(out) if audio else None
        stream = out.add_stream("libx264", rate=FPS)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, FPS)
        # High CRF and one GOP per clip: the picture is flat, so this keeps files tiny.
        stream.options = {
            "crf": "40",
            "preset": "veryslow",
            "g": str(total),
            "keyint_min": str(total),
            "bf": "3",
            "tune": "stillimage",
        }
        for index in range(total):
            frame = av.VideoFrame(width, height, "yuv420p")
            planes = _frame_planes(index, total, width, height)
            for plane_index, (plane, data) in enumerate(zip(frame.planes, planes, strict=True)):
                _fill_plane(plane, data, plane_width=width if plane_index == 0 else width // 2)
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            _write_audio(out, sound, duration)


def _fill_plane(plane: av.video.plane.VideoPlane, data: bytes, *, plane_width: int) -> None:
    """Copy tightly packed rows into a plane whose line size may include padding."""
    stride = plane.line_size
    if stride == plane_width:
        plane.update(data)
        return
    rows = len(data) // plane_width
    padded = bytearray(stride * rows)
    for r in range(rows):
        padded[r * stride : r * stride + plane_width] = data[r * plane_width : (r + 1) * plane_width]
    plane.update(bytes(padded))


def main(argv: list[str]) -> None:
    """Regenerate every asset (``--audio-only``: the ones with sound) and print its size."""
    total_bytes = 0
    for audio in (False, True):
        if "--audio-only" in argv and not audio:
            continue
        for duration in DURATIONS:
            for width, height in SIZES:
                path = OUT_DIR / f"{width}x{height}_{duration}s{'_audio' if audio else ''}.mp4"
                write_video(path, duration=duration, width=width, height=height, audio=audio)
                size = path.stat().st_size
                total_bytes += size
                print(f"{path.relative_to(OUT_DIR.parent.parent.parent)}: {size} bytes")
    print(f"total: {total_bytes} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
