"""The one place the kit leans on httpx beyond its documented API.

An in-process answer is bytes already in memory, but ``httpx.Response.read()`` walks them
through two generators, three context managers, a content decoder and two chunkers: ~9 µs a
response, a sixth of an in-process create. :func:`read_response` leaves a response in exactly
the state ``read()`` leaves it (``content`` held, stream consumed and closed, bytes counted)
by setting what ``read()`` sets: httpx's private ``_content`` and ``_num_bytes_downloaded``
beside the public ``is_stream_consumed`` and ``is_closed``.

A body with a ``Content-Encoding`` still goes through ``read()`` (it decodes), as does any
response when httpx no longer reads into those attributes: ``tests/testkit/test_httpx_adapter.py``
compares the two on generated answers and fails naming this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

__all__ = ["read_response"]


def read_response(
    status: int, headers: Sequence[tuple[str, str]], body: bytes, request: httpx.Request
) -> httpx.Response:
    """A response to ``request``, already read, as ``httpx.Response(...).read()`` leaves it.

    >>> response = read_response(200, [("content-type", "application/json")], b'{"a": 1}', httpx.Request("GET", "http://x"))
    >>> response.json(), response.is_closed, response.num_bytes_downloaded
    ({'a': 1}, True, 8)
    """
    response = httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request)
    for name, _ in headers:
        if name.lower() == "content-encoding":  # the body must be decoded: httpx's own read does
            response.read()
            return response
    response._content = body
    response._num_bytes_downloaded = len(body)
    response.is_stream_consumed = True
    response.is_closed = True
    return response
