"""Image content checks for ``image``/``image_tail``: encoding, size, format, pixels, decoding.

One :func:`inspect_image` call per field walks the checks in the contract's order and stops at
the first failure, so a 10 MB payload is base64-decoded once and decoded by Pillow once (at
reduced scale for JPEG via ``draft``), and a decompression bomb is refused from its header
before any pixel is decoded. URLs are never fetched: the fake does not reach out on a caller's
behalf, so a URL passes with a contract warning that its content went unchecked.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

#: RFC 2397: the scheme, the media type and ``base64`` are case-insensitive (``DATA:IMAGE/PNG;BASE64,``)
_DATA_URI = re.compile(
    r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[\w.+-]+)*);base64,", re.ASCII | re.IGNORECASE
)
_MIME_FORMAT = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/png": "PNG",
}


@dataclass(frozen=True, slots=True)
class ImageProblem:
    """The first content check an image fails, with values for the rule's message."""

    check: str
    detail: str = ""
    actual: object = None
    expected: object = None


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What an accepted image turned out to be (``url`` set when it was not inspected)."""

    format: str | None
    width: int | None
    height: int | None
    size: int
    url: str | None = None


@dataclass(frozen=True, slots=True)
class _Payload:
    raw: bytes
    declared: str | None


def _decode_payload(value: str, limits: Mapping[str, Any]) -> _Payload | ImageInfo | ImageProblem:
    """Bytes to inspect, an :class:`ImageInfo` for a URL, or the encoding problem."""
    lowered = value[:8].lower()
    for scheme in limits["url_schemes"]:
        if lowered.startswith(f"{scheme}://"):
            if len(value) <= len(scheme) + 3:
                return ImageProblem("encoding", detail="the URL has no host")
            return ImageInfo(format=None, width=None, height=None, size=0, url=value)
    declared = None
    payload = value
    if value[:5].lower() == "data:":
        if not limits.get("data_uri", True):
            return ImageProblem("encoding", detail="send raw base64 without a data: prefix")
        match = _DATA_URI.match(value)
        if match is None:
            return ImageProblem("encoding", detail="a data URI must look like data:image/png;base64,<data>")
        mime = (match.group("mime") or "").lower()
        declared = _MIME_FORMAT.get(mime)
        if declared is None:
            return ImageProblem("format", detail=f"the data URI declares {mime or 'no media type'}")
        payload = value[match.end() :]
    elif "://" in value[:16]:
        allowed = ", ".join(limits["url_schemes"])
        return ImageProblem("encoding", detail=f"URL scheme not allowed (allowed: {allowed})")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        return ImageProblem("encoding", detail=f"invalid base64: {exc}")
    if not raw:
        return ImageProblem("encoding", detail="the base64 payload is empty")
    return _Payload(raw, declared)


def _formats(limits: Mapping[str, Any]) -> str:
    return " or ".join(limits["formats"])


def inspect_image(value: str, limits: Mapping[str, Any]) -> ImageInfo | ImageProblem:
    """Run the contract's image checks on one field value; the first failure wins.

    >>> inspect_image("https://example.com/a.png", {"url_schemes": ["http", "https"]}).url
    'https://example.com/a.png'
    >>> inspect_image("bm90IGFuIGltYWdl", {"url_schemes": ["https"], "max_bytes": 100,
    ...     "formats": ["PNG"], "max_pixels": 10, "min_side": 1, "min_aspect": 0, "max_aspect": 9}).check
    'format'
    """
    payload = _decode_payload(value, limits)
    if not isinstance(payload, _Payload):
        return payload
    raw, declared = payload.raw, payload.declared
    if len(raw) > limits["max_bytes"]:
        return ImageProblem("max_bytes", actual=len(raw), expected=limits["max_bytes"])
    try:
        # Pillow reads only the header here; pixels are decoded by load() below.
        image = Image.open(io.BytesIO(raw))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return ImageProblem("max_pixels", actual="more than Pillow's limit", expected=limits["max_pixels"])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        # Which Pillow exception refused the bytes is no help to the client: what it sent is.
        return ImageProblem("format", detail=f"the bytes are not a {_formats(limits)} image")
    with image:
        fmt = image.format or "unknown"
        if fmt not in limits["formats"]:
            return ImageProblem("format", detail=f"the bytes are {fmt}, not {_formats(limits)}")
        if declared is not None and declared != fmt:
            return ImageProblem("format", detail=f"the data URI declares {declared} but the bytes are {fmt}")
        width, height = image.size
        if width * height > limits["max_pixels"]:
            return ImageProblem("max_pixels", actual=width * height, expected=limits["max_pixels"])
        try:
            if fmt == "JPEG":
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            return ImageProblem("decodable", detail=str(exc) or type(exc).__name__)
    if min(width, height) < limits["min_side"]:
        return ImageProblem("min_side", actual=f"{width}x{height}", expected=limits["min_side"])
    ratio = width / height
    if not limits["min_aspect"] <= ratio <= limits["max_aspect"]:
        return ImageProblem("aspect_ratio", actual=f"{width}:{height} ({ratio:.2f})")
    return ImageInfo(format=fmt, width=width, height=height, size=len(raw))
