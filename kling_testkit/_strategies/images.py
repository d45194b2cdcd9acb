"""Image payloads for ``image`` / ``image_tail``: real PNG/JPEG bytes, and labelled broken ones.

Every limit (formats, byte size, smallest side, aspect ratio range, pixel limit, URL schemes)
comes from the model's ``image_limits`` in ``contracts/``; this module only knows *how* to make
an image that honours or breaks one of them. Images are solid colours from a small palette at
sizes near the lower limit, and encoded bytes are cached, so drawing one costs a dictionary
lookup after the first time. The one payload that must be big (over ``max_bytes``) is built
once per process: a small valid PNG followed by a private ancillary chunk, cheap to construct.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import struct
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import DrawFn, SearchStrategy
from PIL import Image, features

from kling_testkit._strategies.common import (
    BOOLEANS,
    as_strategy,
    choices,
    contract_for,
    draw_model,
    integers,
    resolve_model,
)

ENCODINGS: Final = ("base64", "data_uri", "url")

#: Each way an image can be wrong -> the contract's image check it breaks (``rules.json`` ``check``).
IMAGE_PROBLEMS: Final[Mapping[str, str]] = {
    "not_base64": "encoding",
    "bad_url_scheme": "encoding",
    "malformed_data_uri": "encoding",
    "empty_payload": "encoding",
    "too_large": "max_bytes",
    "wrong_format": "format",
    "not_an_image": "format",
    "lying_media_type": "format",
    "decompression_bomb": "max_pixels",
    "truncated": "decodable",
    "too_small": "min_side",
    "wrong_aspect": "aspect_ratio",
    "data_uri_prefix": "encoding",
}

_MIME: Final = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "BMP": "image/bmp", "WEBP": "image/webp"}
_EXTENSIONS: Final = {"PNG": "png", "JPEG": "jpg"}
_PALETTE: Final = ((200, 80, 40), (20, 120, 220), (250, 250, 250), (0, 0, 0), (90, 200, 90), (128, 128, 128))
_HOSTS: Final = ("example.com", "cdn.example.org", "127.0.0.1:8000", "images.example.net")


@dataclass(frozen=True, slots=True)
class ImagePayload:
    """One generated image field value and what it is.

    ``value`` goes into the request; ``problem`` is None for a valid image, otherwise a key of
    :data:`IMAGE_PROBLEMS` (``"too_small"``...), and ``check`` the contract's image check it
    breaks (``"min_side"``). ``format``/``width``/``height`` describe the bytes when there are
    any (None for URLs and for payloads that are not images).

    >>> ImagePayload("https://example.com/a.png", None, None, None, "url").problem is None
    True
    """

    value: str
    format: str | None
    width: int | None
    height: int | None
    encoding: str
    problem: str | None = None
    check: str | None = None


@functools.lru_cache(maxsize=2048)
def _encoded(fmt: str, width: int, height: int, colour: tuple[int, int, int], mode: str) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), colour)
    if mode != "RGB":
        image = image.convert(mode)
    # the fastest zlib level: a real PNG all the same, at a third of the default's cost
    image.save(buffer, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
    return buffer.getvalue()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` but carries one row of data: a decompression bomb
    by its header, refused before any pixel is decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0")) + _chunk(b"IEND", b"")


@functools.cache
def _oversized_png(max_bytes: int, side: int) -> bytes:
    """A valid PNG one byte over ``max_bytes``: a private ancillary chunk (skipped by decoders)
    after the pixel data pads it, so it costs a ``bytes`` allocation, not an encoder run."""
    small = _encoded("PNG", side, side, (200, 80, 40), "RGB")
    iend = small.rindex(b"IEND") - 4
    pad = max_bytes + 1 - len(small) - 12
    return small[:iend] + _chunk(b"kpAd", b"\0" * max(pad, 0)) + small[iend:]


@functools.cache
def _oversized_text(max_bytes: int, side: int, encoding: str) -> str:
    text = _b64(_oversized_png(max_bytes, side))
    return "data:image/png;base64," + text if encoding == "data_uri" else text


def _truncated(raw: bytes, fmt: str, fraction: float) -> bytes:
    """``raw`` cut inside its pixel data: the header still opens, decoding fails."""
    if fmt == "PNG":
        at = raw.index(b"IDAT")
        length = int.from_bytes(raw[at - 4 : at], "big")
        start, end = at + 5, at + 4 + length - 1
    else:
        sos = raw.index(b"\xff\xda")
        start, end = sos + 2 + int.from_bytes(raw[sos + 2 : sos + 4], "big") + 1, len(raw) - 2
    return raw[: start + int((max(end, start + 1) - start) * fraction)]


def _aspect_bound(short: int, limits: Mapping[str, Any], landscape: bool) -> int:
    """The longest side that keeps ``short`` within the contract's aspect range."""
    lo, hi = float(limits["min_aspect"]), float(limits["max_aspect"])
    if landscape:
        longest = math.floor(short * hi)
        while longest / short > hi:
            longest -= 1
    else:
        longest = math.floor(short / lo)
        while short / longest < lo:
            longest -= 1
    return max(longest, short)


def _draw_size(draw: DrawFn, limits: Mapping[str, Any], smallest: int, spread: int) -> tuple[int, int]:
    short = draw(integers(smallest, smallest + spread))
    landscape = draw(BOOLEANS)
    longest = draw(integers(short, min(_aspect_bound(short, limits, landscape), short + 3 * spread)))
    return (longest, short) if landscape else (short, longest)


def _check_size(size: Any, limits: Mapping[str, Any]) -> tuple[int, int]:
    if not (isinstance(size, tuple) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise InvalidArgument(f"sizes must give (width, height) tuples of ints, got {size!r}")
    width, height = size
    side = int(limits["min_side"])
    if min(width, height) < side or not float(limits["min_aspect"]) <= width / height <= float(limits["max_aspect"]):
        raise InvalidArgument(
            f"size {width}x{height} breaks the contract's image limits (sides >= {side}, aspect "
            f"{limits['min_aspect']}..{limits['max_aspect']}); use problems= to generate invalid images"
        )
    if width * height > int(limits["max_pixels"]):
        raise InvalidArgument(f"size {width}x{height} is over the contract's max_pixels {limits['max_pixels']}")
    return width, height


def _wrap(raw: bytes, encoding: str, mime: str) -> str:
    return f"data:{mime};base64,{_b64(raw)}" if encoding == "data_uri" else _b64(raw)


@functools.lru_cache(maxsize=2048)
def _valid_text(
    fmt: str, width: int, height: int, colour: tuple[int, int, int], mode: str, encoding: str, mime: str
) -> str:
    return _wrap(_encoded(fmt, width, height, colour, mode), encoding, mime)


def _pick_encoding(draw: DrawFn, wanted: Sequence[str], allowed: Sequence[str], problem: str) -> str:
    usable = [e for e in wanted if e in allowed]
    if not usable:
        raise InvalidArgument(f"image problem {problem!r} needs an encoding in {list(allowed)}, got {list(wanted)}")
    return draw(st.sampled_from(usable))


@dataclass(frozen=True, slots=True)
class _Ctx:
    limits: Mapping[str, Any]
    formats: Sequence[str]
    wanted: Sequence[str]


_Maker = Callable[[DrawFn, _Ctx], ImagePayload]


def _draw_valid(
    draw: DrawFn,
    limits: Mapping[str, Any],
    formats: Sequence[str],
    wanted: Sequence[str],
    sizes: SearchStrategy[Any] | None,
) -> ImagePayload:
    fmt = draw(choices(tuple(formats)))
    encoding = draw(choices(tuple(wanted)))
    if sizes is not None:
        width, height = _check_size(draw(sizes), limits)
    else:
        width, height = _draw_size(draw, limits, int(limits["min_side"]), 60)
    if encoding == "url":
        scheme = draw(st.sampled_from(list(limits["url_schemes"])))
        host = draw(st.sampled_from(_HOSTS))
        stem = draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=16))
        value = f"{scheme}://{host}/frames/{stem}.{_EXTENSIONS.get(fmt, fmt.lower())}"
        return ImagePayload(value, fmt, width, height, encoding)
    modes = ("RGB", "L", "RGBA", "P") if fmt == "PNG" else ("RGB", "L")
    mode = draw(choices(modes))
    colour = draw(choices(_PALETTE))
    mime = draw(choices(("image/jpeg", "image/jpg") if fmt == "JPEG" else (_MIME[fmt],)))
    return ImagePayload(_valid_text(fmt, width, height, colour, mode, encoding, mime), fmt, width, height, encoding)


def _bytes_problem(
    draw: DrawFn, wanted: Sequence[str], problem: str, raw: bytes, fmt: str | None, size: tuple[int, int] | None
) -> ImagePayload:
    encoding = _pick_encoding(draw, wanted, ("base64", "data_uri"), problem)
    mime = _MIME.get(fmt or "PNG", "image/png")
    width, height = size if size else (None, None)
    return ImagePayload(_wrap(raw, encoding, mime), fmt, width, height, encoding, problem, IMAGE_PROBLEMS[problem])


def _good_bytes(draw: DrawFn, limits: Mapping[str, Any], formats: Sequence[str]) -> tuple[bytes, str, int, int]:
    fmt = draw(st.sampled_from(list(formats)))
    width, height = _draw_size(draw, limits, int(limits["min_side"]), 40)
    return _encoded(fmt, width, height, draw(st.sampled_from(_PALETTE)), "RGB"), fmt, width, height


def _p_not_base64(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, formats, wanted = ctx.limits, ctx.formats, ctx.wanted
    raw, fmt, width, height = _good_bytes(draw, limits, formats)
    encoding = _pick_encoding(draw, wanted, ("base64", "data_uri"), "not_base64")
    text = _b64(raw)
    at = draw(st.integers(0, len(text) - 1))
    text = text[:at] + draw(st.sampled_from("!*#%~ \n\u00e9")) + text[at:]
    value = f"data:{_MIME[fmt]};base64,{text}" if encoding == "data_uri" else text
    return ImagePayload(value, fmt, width, height, encoding, "not_base64", "encoding")


def _p_bad_url_scheme(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, wanted = ctx.limits, ctx.wanted
    _pick_encoding(draw, wanted, ("url",), "bad_url_scheme")
    allowed = {s.lower() for s in limits["url_schemes"]}
    scheme = draw(st.sampled_from([s for s in ("ftp", "file", "s3", "gs", "ws") if s not in allowed]))
    value = f"{scheme}://{draw(st.sampled_from(_HOSTS))}/frames/first.png"
    return ImagePayload(value, None, None, None, "url", "bad_url_scheme", "encoding")


def _p_malformed_data_uri(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, formats, wanted = ctx.limits, ctx.formats, ctx.wanted
    raw, fmt, width, height = _good_bytes(draw, limits, formats)
    _pick_encoding(draw, wanted, ("data_uri",), "malformed_data_uri")
    templates = ["data:{mime},{data}", "data:{mime};base64{data}", "data:{mime};charset=utf-8,{data}"]
    template = draw(st.sampled_from(templates))
    value = template.format(mime=_MIME[fmt], data=_b64(raw))
    return ImagePayload(value, fmt, width, height, "data_uri", "malformed_data_uri", "encoding")


def _p_empty_payload(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    formats, wanted = ctx.formats, ctx.wanted
    _pick_encoding(draw, wanted, ("data_uri",), "empty_payload")
    value = f"data:{_MIME[draw(st.sampled_from(list(formats)))]};base64,"
    return ImagePayload(value, None, None, None, "data_uri", "empty_payload", "encoding")


def _p_too_large(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, wanted = ctx.limits, ctx.wanted
    encoding = _pick_encoding(draw, wanted, ("base64", "data_uri"), "too_large")
    side = int(limits["min_side"])
    value = _oversized_text(int(limits["max_bytes"]), side, encoding)
    return ImagePayload(value, "PNG", side, side, encoding, "too_large", "max_bytes")


def _p_wrong_format(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, wanted = ctx.limits, ctx.wanted
    allowed = set(limits["formats"])
    others = [f for f in ("GIF", "BMP", "WEBP", "TIFF") if f not in allowed and (f != "WEBP" or features.check("webp"))]
    fmt = draw(st.sampled_from(others))
    width, height = _draw_size(draw, limits, int(limits["min_side"]), 20)
    raw = _encoded(fmt, width, height, draw(st.sampled_from(_PALETTE)), "RGB")
    return _bytes_problem(draw, wanted, "wrong_format", raw, fmt, (width, height))


def _p_not_an_image(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    wanted = ctx.wanted
    raw = b"not an image: " + draw(st.binary(min_size=0, max_size=48))
    return _bytes_problem(draw, wanted, "not_an_image", raw, None, None)


def _p_lying_media_type(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, formats, wanted = ctx.limits, ctx.formats, ctx.wanted
    raw, fmt, width, height = _good_bytes(draw, limits, formats)
    _pick_encoding(draw, wanted, ("data_uri",), "lying_media_type")
    declared = draw(st.sampled_from([m for f, m in _MIME.items() if f != fmt]))
    value = f"data:{declared};base64,{_b64(raw)}"
    return ImagePayload(value, fmt, width, height, "data_uri", "lying_media_type", "format")


def _p_decompression_bomb(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, wanted = ctx.limits, ctx.wanted
    side = math.isqrt(int(limits["max_pixels"])) + 1
    width = draw(st.integers(side, side + 2000))
    raw = _png_header_only(width, width)
    return _bytes_problem(draw, wanted, "decompression_bomb", raw, "PNG", (width, width))


def _p_truncated(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, formats, wanted = ctx.limits, ctx.formats, ctx.wanted
    raw, fmt, width, height = _good_bytes(draw, limits, formats)
    cut = _truncated(raw, fmt, draw(st.floats(0, 0.99)))
    return _bytes_problem(draw, wanted, "truncated", cut, fmt, (width, height))


def _p_too_small(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, formats, wanted = ctx.limits, ctx.formats, ctx.wanted
    fmt = draw(st.sampled_from(list(formats)))
    side = int(limits["min_side"])
    short = draw(st.integers(1, side - 1))
    landscape = draw(st.booleans())
    longest = draw(st.integers(short, _aspect_bound(short, limits, landscape)))
    width, height = (longest, short) if landscape else (short, longest)
    raw = _encoded(fmt, width, height, draw(st.sampled_from(_PALETTE)), "RGB")
    return _bytes_problem(draw, wanted, "too_small", raw, fmt, (width, height))


def _p_wrong_aspect(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, formats, wanted = ctx.limits, ctx.formats, ctx.wanted
    fmt = draw(st.sampled_from(list(formats)))
    short = draw(st.integers(int(limits["min_side"]), int(limits["min_side"]) + 40))
    landscape = draw(st.booleans())
    bound = _aspect_bound(short, limits, landscape)
    longest = draw(st.integers(bound + 1, bound + 200))
    width, height = (longest, short) if landscape else (short, longest)
    raw = _encoded(fmt, width, height, draw(st.sampled_from(_PALETTE)), "RGB")
    return _bytes_problem(draw, wanted, "wrong_aspect", raw, fmt, (width, height))


def _p_data_uri_prefix(draw: DrawFn, ctx: _Ctx) -> ImagePayload:
    limits, formats = ctx.limits, ctx.formats
    _pick_encoding(draw, ctx.wanted, ("data_uri",), "data_uri_prefix")
    raw, fmt, width, height = _good_bytes(draw, limits, formats)
    value = f"data:{_MIME[fmt]};base64,{_b64(raw)}"
    return ImagePayload(value, fmt, width, height, "data_uri", "data_uri_prefix", "encoding")


_PROBLEM_MAKERS: Final[Mapping[str, _Maker]] = {
    "not_base64": _p_not_base64,
    "bad_url_scheme": _p_bad_url_scheme,
    "malformed_data_uri": _p_malformed_data_uri,
    "empty_payload": _p_empty_payload,
    "too_large": _p_too_large,
    "wrong_format": _p_wrong_format,
    "not_an_image": _p_not_an_image,
    "lying_media_type": _p_lying_media_type,
    "decompression_bomb": _p_decompression_bomb,
    "truncated": _p_truncated,
    "too_small": _p_too_small,
    "wrong_aspect": _p_wrong_aspect,
    "data_uri_prefix": _p_data_uri_prefix,
}
assert set(_PROBLEM_MAKERS) == set(IMAGE_PROBLEMS)

#: problems that are only problems where the contract refuses ``data:`` URIs (``data_uri: false``)
_ONLY_WITHOUT_DATA_URIS: Final = frozenset({"data_uri_prefix"})
#: problems that need a data URI to break a later check (refused as encoding without data URIs)
_ONLY_WITH_DATA_URIS: Final = frozenset({"lying_media_type"})
#: problems whose payload is always a ``data:`` URI (the others can be raw base64 or a URL)
DATA_URI_PROBLEMS: Final = frozenset({"malformed_data_uri", "empty_payload", "data_uri_prefix", "lying_media_type"})


def data_uris_allowed(limits: Mapping[str, Any]) -> bool:
    """Whether the model's ``image_limits`` accept ``data:`` URIs (the gateway's do, Kling's
    own API wants raw base64)."""
    return bool(limits.get("data_uri", True))


def available_problems(limits: Mapping[str, Any]) -> frozenset[str]:
    """The problem labels that break the check they name under these ``image_limits``."""
    if data_uris_allowed(limits):
        return frozenset(IMAGE_PROBLEMS) - _ONLY_WITHOUT_DATA_URIS
    return frozenset(IMAGE_PROBLEMS) - _ONLY_WITH_DATA_URIS


def encodings_for(limits: Mapping[str, Any]) -> tuple[str, ...]:
    """The encodings a valid image may use under these ``image_limits``."""
    return tuple(e for e in ENCODINGS if e != "data_uri" or data_uris_allowed(limits))


def image_problems(model: str | None = None, *, face: str | None = None) -> Mapping[str, str]:
    """The problems :func:`images` can generate for ``model`` on ``face`` (default: those every
    model of the face has), label -> the contract check each breaks; a sub-mapping of
    :data:`IMAGE_PROBLEMS`.

    >>> "data_uri_prefix" in image_problems(face="official"), "data_uri_prefix" in image_problems()
    (True, False)
    """
    contract = contract_for(face)
    names = [model] if model is not None else sorted(contract.models)
    found = frozenset(IMAGE_PROBLEMS)
    for name in names:
        found &= available_problems(resolve_model(name, face).image_limits)
    return {label: check for label, check in IMAGE_PROBLEMS.items() if label in found}


#: problems whose payload is deliberately huge; drawn only when asked for by name
EXPENSIVE_PROBLEMS: Final = frozenset({"too_large"})


def problems_for_check(check: str) -> tuple[str, ...]:
    """The problem labels that break the contract's image check ``check`` (empty if none)."""
    return tuple(label for label, found in IMAGE_PROBLEMS.items() if found == check)


@st.composite
def _images(
    draw: DrawFn,
    face: str | None,
    model: Any,
    formats: Any,
    sizes: Any,
    encodings: Any,
    problems: Any,
) -> ImagePayload:
    limits = draw_model(draw, model, face).image_limits
    wanted_formats: Sequence[str] = list(limits["formats"]) if formats is None else [draw(as_strategy(formats))]
    for fmt in wanted_formats:
        if fmt not in limits["formats"]:
            raise InvalidArgument(f"format {fmt!r} is not one the contract accepts ({limits['formats']})")
    wanted: Sequence[str] = list(ENCODINGS) if encodings is None else [draw(as_strategy(encodings))]
    for encoding in wanted:
        if encoding not in ENCODINGS:
            raise InvalidArgument(f"unknown image encoding {encoding!r}; use one of {list(ENCODINGS)}")
    problem = None if problems is None else draw(as_strategy(problems))
    if problem is None:
        usable = [e for e in wanted if e in encodings_for(limits)]
        if not usable:
            raise InvalidArgument(
                f"a valid image cannot be sent as {list(wanted)} here; the contract takes {list(encodings_for(limits))}"
            )
        return _draw_valid(draw, limits, wanted_formats, usable, None if sizes is None else as_strategy(sizes))
    if problem not in _PROBLEM_MAKERS:
        raise InvalidArgument(f"unknown image problem {problem!r}; use one of {sorted(IMAGE_PROBLEMS)}")
    if problem not in available_problems(limits):
        raise InvalidArgument(
            f"image problem {problem!r} breaks no check of its own under this contract "
            f"(data URIs {'accepted' if data_uris_allowed(limits) else 'refused'}); "
            f"use one of {sorted(available_problems(limits))}"
        )
    if IMAGE_PROBLEMS[problem] != "encoding":
        # any data: URI is an encoding problem where the contract refuses them
        wanted = [e for e in wanted if e in encodings_for(limits)]
    return _PROBLEM_MAKERS[problem](draw, _Ctx(limits, wanted_formats, wanted))


def images(
    model: str | SearchStrategy[str] | None = None,
    *,
    face: str | None = None,
    formats: str | SearchStrategy[str] | None = None,
    sizes: tuple[int, int] | SearchStrategy[tuple[int, int]] | None = None,
    encodings: str | SearchStrategy[str] | None = None,
    problems: str | SearchStrategy[str | None] | None = None,
) -> SearchStrategy[ImagePayload]:
    """Image field values (``image`` / ``image_tail``) for ``model``, as :class:`ImagePayload`.

    By default: valid images the contract of ``face`` (default: the first registered face)
    accepts -- real PNG or JPEG bytes (RGB, grey, RGBA or palette PNGs), both sides at least
    ``min_side`` and the aspect ratio inside the contract's range, as raw base64, a
    ``data:image/...;base64,`` URI (where the contract accepts one: not on Kling's own API) or
    an http(s) URL.
    ``formats``, ``sizes`` (``(width, height)``) and ``encodings`` (``"base64"``,
    ``"data_uri"``, ``"url"``) narrow that; each takes a fixed value or a strategy.

    ``problems`` asks for broken images instead: a label of :func:`image_problems` (or a
    strategy of labels, or None for a valid one), and each payload carries its label and the
    contract check it breaks (``data_uri_prefix``, a valid image sent as a data URI, is a
    problem only where data URIs are refused; ``lying_media_type`` only where they are not).
    Every broken image breaks that one check and passes the ones before it (a truncated PNG
    still has a valid header; a too-small image keeps a valid aspect ratio). ``"too_large"``
    is a real PNG one byte over the limit, built once and cached.

    Shrinks towards PNG, the smallest valid size, raw base64, and the first problem label.
    Impossible requests (a size outside the limits without ``problems``, an unknown label)
    raise ``InvalidArgument`` when drawn.

    >>> from hypothesis import given
    >>> @given(images(encodings="data_uri"))
    ... def test(payload): assert payload.value.startswith("data:image/")
    >>> test()
    >>> @given(images(face="official", problems="data_uri_prefix"))
    ... def test_official(payload): assert payload.check == "encoding"
    >>> test_official()
    """
    return _images(face, model, formats, sizes, encodings, problems)


__all__ = [
    "ENCODINGS",
    "EXPENSIVE_PROBLEMS",
    "IMAGE_PROBLEMS",
    "ImagePayload",
    "available_problems",
    "encodings_for",
    "image_problems",
    "images",
    "problems_for_check",
]
