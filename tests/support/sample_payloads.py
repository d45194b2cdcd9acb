"""Request bodies and image payloads shared by the test suites (on pytest's ``pythonpath``)."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

from PIL import Image


def image_bytes(width: int, height: int, fmt: str = "PNG") -> bytes:
    """A real, decodable image of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png_claiming(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose header declares ``width`` x ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def t2v(**changes: Any) -> dict[str, Any]:
    """A valid text-to-video create body, with ``changes`` applied."""
    body: dict[str, Any] = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a red fox in snow", "duration": 5}]}
    body.update(changes)
    return body


def i2v(**changes: Any) -> dict[str, Any]:
    """A valid image-to-video create body (a 640x360 PNG first frame), with ``changes`` applied."""
    changes.setdefault("image", b64(image_bytes(640, 360)))
    return t2v(**changes)
