"""Transport-neutral request and response values: the seam between the engine and every door.

The Starlette adapter (``app.py``) and the respx adapter (``kling_testkit``) convert to and from
these, and nothing else; so the four doors (in-process sync, in-process async, ASGI, live
server) run the same code and give byte-identical answers.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from mockserver._frozen import fast_init


@fast_init
@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP request, fully read (or flagged ``oversize`` when the door stopped reading).

    Header names are lower-case (ASGI's and HTTP/2's convention; :meth:`build` lower-cases).

    >>> request = ApiRequest.build("GET", "https://api.modelstream.ai/v1/video/generations/t?x=1")
    >>> request.path, request.query, request.base_url
    ('/v1/video/generations/t', 'x=1', 'https://api.modelstream.ai')
    """

    method: str
    scheme: str
    host: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    oversize: bool = False
    #: the peer's address as the door saw it (None: in-process, no network between)
    client: str | None = None
    #: the host (address or name) the request arrived on, as the door knows it (ASGI ``server``)
    server: str | None = None
    #: the base URL the door vouches for (its configured or bound address, or the in-process
    #: base URL the request was routed by); result links use it, never the Host header
    public_base_url: str | None = None

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        body: bytes = b"",
        *,
        oversize: bool = False,
    ) -> ApiRequest:
        parts = urlsplit(url)
        items = headers.items() if isinstance(headers, Mapping) else headers
        pairs = tuple((name.lower(), value) for name, value in items)
        return cls(
            method=method.upper(),
            scheme=parts.scheme or "http",
            host=parts.netloc,
            path=parts.path or "/",
            query=parts.query,
            headers=pairs,
            body=body,
            oversize=oversize,
        )

    @property
    def base_url(self) -> str:
        """The base URL as the client named it (``Host``): for the journal, never for links."""
        return f"{self.scheme}://{self.host}"

    @property
    def link_base_url(self) -> str:
        """Where result links point: the door's public base URL (the Host header only when
        the caller built the request itself and named none)."""
        return self.public_base_url or self.base_url

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}" + (f"?{self.query}" if self.query else "")

    def header(self, name: str) -> str | None:
        """The first value of a header (``name`` in lower case), or None."""
        # A scan beats building a dict: requests carry a handful of headers, read once or twice.
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of a header (``name`` in lower case)."""
        return [value for key, value in self.headers if key == name]


#: header lines as the service reads them, by the bytes a door received: a client sends the same
#: lines on every request (host, user agent, key), so a request's headers are mostly strings
#: already made, not new ones the journal keeps alive for 10 000 exchanges. Bounded (cleared when
#: full); a line over _CACHED_LINE bytes is decoded every time. One table per name spelling.
_HEADER_LINES: tuple[dict[Any, tuple[str, str]], dict[Any, tuple[str, str]]] = ({}, {})
_MAX_HEADER_LINES = 1024
_CACHED_LINE = 512


def decode_headers(raw: Iterable[Any], *, lower: bool = False) -> tuple[tuple[str, str], ...]:
    """Raw header lines (``(name, value)`` bytes) as ``ApiRequest.headers`` (latin-1, names in
    lower case when ``lower``), in order; a line seen before comes back as the same pair.

    >>> decode_headers([(b"Host", b"a.test"), [b"X-Key", b"v"]], lower=True)
    (('host', 'a.test'), ('x-key', 'v'))
    """
    lines = _HEADER_LINES[lower]
    try:
        return tuple([lines.get(line) or _decoded(line, lines, lower) for line in raw])
    except TypeError:  # a line sent as a list (the ASGI spec allows it): not a key
        return tuple([_decoded(line, lines, lower) for line in raw])


def _decoded(line: Any, lines: dict[Any, tuple[str, str]], lower: bool) -> tuple[str, str]:
    name, value = line
    text = name.decode("latin-1")
    decoded = (text.lower() if lower else text, value.decode("latin-1"))
    if type(line) is tuple and len(name) + len(value) <= _CACHED_LINE:
        if len(lines) >= _MAX_HEADER_LINES:
            lines.clear()
        lines[line] = decoded
    return decoded


def find_header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of header ``name`` in ``(name, value)`` pairs, whatever their case.

    >>> find_header([("Content-Type", "text/plain"), ("retry-after", "5")], "Retry-After")
    '5'
    >>> find_header([], "retry-after") is None
    True
    """
    lowered = name.lower()
    return next((v for k, v in headers if k.lower() == lowered), None)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a host name, as a URL or a bind names it) is this machine
    only: 127.0.0.0/8, ::1 (also IPv4-mapped) or ``localhost``. Any other name is not, since
    only a resolver could say where it points.

    >>> [is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "LocalHost.")]
    [True, True, True, True, True]
    >>> [is_loopback(h) for h in ("0.0.0.0", "192.0.2.1", "::ffff:192.0.2.1", "", "example.com")]
    [False, False, False, False, False]
    """
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


_JSON_TYPE = ("content-type", "application/json")


def dump_json(value: Any) -> bytes:
    """The one JSON rendering of every door (compact UTF-8)."""
    return orjson.dumps(value)


def kept(data: bytes) -> bytes:
    """``data`` as an exactly sized copy, for bytes that are retained (the task store, the
    journal): orjson's output keeps its whole write buffer (4 KiB for a 40-byte document), so a
    rendering held for long costs 4 KiB unless it is copied once.

    >>> kept(orjson.dumps({"a": 1})) == b'{"a":1}'
    True
    """
    return bytes(memoryview(data))


class TooManyValues(ValueError):
    """A JSON body holds more object members and array items than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} values (object members and array items)")
        self.limit = limit


def load_json(body: bytes, max_depth: int | None = None, max_values: int | None = None) -> Any:
    """The one JSON parser of every door; raises ``orjson.JSONDecodeError`` (a ValueError),
    ValueError when the value nests deeper than ``max_depth`` arrays/objects, or
    :class:`TooManyValues` when it holds more than ``max_values`` members and items.

    Parsing is linear (orjson, in C); the checks after it walk at most ``max_values`` values,
    so the work per body is bounded whatever it holds.

    >>> load_json(b"[[1]]", max_depth=1)
    Traceback (most recent call last):
    ...
    ValueError: nested too deeply (more than 1 levels of arrays and objects)
    >>> load_json(b'{"a": 1, "b": [2, 3]}', max_values=3)
    Traceback (most recent call last):
    ...
    mockserver.http.TooManyValues: more than 3 values (object members and array items)
    """
    value = orjson.loads(body)
    # Counting bytes is C-speed: every value after the first in a container needs a comma, and
    # every container a bracket, so a body with fewer of both than a limit is within it and
    # ordinary requests (a handful of brackets and commas; base64 has none) skip the walks.
    brackets = body.count(b"[") + body.count(b"{")
    if max_values is not None and brackets + body.count(b",") > max_values and _too_many(value, max_values):
        raise TooManyValues(max_values)
    if max_depth is not None and brackets > max_depth and _too_deep(value, max_depth):
        raise ValueError(f"nested too deeply (more than {max_depth} levels of arrays and objects)")
    return value


def _too_many(value: Any, limit: int) -> bool:
    # Iterative, and stops as soon as the count passes the limit: at most ``limit`` values are
    # visited, however many the body holds (len() of a container is O(1)).
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            if count > limit:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            count += len(item)
            if count > limit:
                return True
            stack.extend(item)
    return False


def _too_deep(value: Any, limit: int) -> bool:
    # Iterative: a recursive walk is what deep values break.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


@functools.lru_cache(maxsize=4096)  # answers of one shape have a handful of lengths
def _json_head(length: int) -> tuple[tuple[str, str], ...]:
    """A JSON answer's headers for a body of ``length`` bytes: the same tuple for every answer
    of that length, which the journal then keeps once, not once per exchange."""
    return (_JSON_TYPE, ("content-length", str(length)))


@fast_init
@dataclass(frozen=True, slots=True)
class ApiResponse:
    """One HTTP response. ``payload`` is the JSON value ``body`` was rendered from (for the
    journal); ``delay`` is injected latency the door spends on the engine's clock."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    payload: Any = None
    delay: float = 0.0

    @classmethod
    def json(cls, status: int, value: Any, headers: Iterable[tuple[str, str]] = ()) -> ApiResponse:
        """``value`` rendered as the JSON answer, its ``body`` an exactly sized copy (:func:`kept`):
        the journal keeps it, and an in-process client's call records keep the response, so a
        rendering held for long costs its own size, not orjson's write buffer.

        >>> ApiResponse.json(201, {"a": 1}).headers
        (('content-type', 'application/json'), ('content-length', '7'))
        """
        body = kept(dump_json(value))
        head = _json_head(len(body))
        return cls(status, (*head, *headers) if headers else head, body, value)

    def header(self, name: str) -> str | None:
        return find_header(self.headers, name)

    def with_delay(self, delay: float) -> ApiResponse:
        return ApiResponse(self.status, self.headers, self.body, self.payload, delay)
