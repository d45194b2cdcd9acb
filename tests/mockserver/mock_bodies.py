"""Request bodies and images for the mockserver tests (imported as ``mock_bodies``)."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

from PIL import Image

AUTH = (("authorization", "Bearer sk-test"),)
CREATE = "/v1/video/generations"


def image_bytes(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but carries almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def t2v(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a red fox in snow", "duration": 5}]}
    body.update(changes)
    return body


def i2v(**changes: Any) -> dict[str, Any]:
    changes.setdefault("image", b64(image_bytes(640, 360)))
    return t2v(**changes)
