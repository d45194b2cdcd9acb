"""``kling_testkit/_httpx.py`` leaves a response exactly as ``httpx.Response.read()`` does.

The adapter sets what ``read()`` sets instead of walking the body through httpx's stream
machinery. Were an httpx release to read into other attributes (or stop using these), answers
would differ from read ones in what a client sees; these tests compare the two whole and fail
naming the adapter first.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kling_testkit._httpx import read_response

ADAPTER = "kling_testkit/_httpx.py sets what httpx's read() sets; adapt it to this httpx release"
_HEADER_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)


def _read_as_httpx_does(
    status: int, headers: list[tuple[str, str]], body: bytes, request: httpx.Request
) -> httpx.Response:
    response = httpx.Response(status, headers=headers, stream=httpx.ByteStream(body), request=request)
    response.read()
    return response


def _state(response: httpx.Response) -> dict[str, Any]:
    # Every attribute read() may have set; the stream and headers objects compared by content.
    # ``_decoder`` is a lazily made cache that read() makes on its way (a held body is never
    # decoded again), so it is left out.
    skip = ("stream", "headers", "_request", "_decoder")
    state = {k: v for k, v in vars(response).items() if k not in skip}
    state["headers"] = response.headers.raw
    state["request"] = response.request
    return state


@given(
    status=st.sampled_from([200, 201, 204, 400, 404, 413, 429, 500]),
    headers=st.lists(st.tuples(_HEADER_TEXT.filter(lambda n: n != "content-encoding"), _HEADER_TEXT), max_size=4),
    body=st.binary(max_size=300),
)
def test_a_read_response_is_what_httpx_read_leaves(status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    request = httpx.Request("GET", "https://api.example/v1/x")
    fast, reference = read_response(status, headers, body, request), _read_as_httpx_does(status, headers, body, request)
    assert _state(fast) == _state(reference), ADAPTER
    assert fast.content == body
    assert list(fast.iter_bytes(chunk_size=7)) == list(reference.iter_bytes(chunk_size=7)), ADAPTER
    for response in (fast, reference):
        with pytest.raises(httpx.StreamConsumed):
            list(response.iter_raw())


def test_an_async_client_reads_it_as_it_reads_any_response() -> None:
    request = httpx.Request("GET", "https://api.example/v1/x")

    async def chunks() -> tuple[bytes, list[bytes]]:
        response = read_response(200, [("content-type", "application/json")], b'{"a":1}', request)
        return await response.aread(), [chunk async for chunk in response.aiter_bytes()]

    assert asyncio.run(chunks()) == (b'{"a":1}', [b'{"a":1}']), ADAPTER


def test_an_encoded_body_is_decoded_by_httpx_itself() -> None:
    request = httpx.Request("GET", "https://api.example/v1/x")
    headers = [("Content-Encoding", "gzip")]
    fast = read_response(200, headers, gzip.compress(b"hello"), request)
    assert fast.content == b"hello"
    assert _state(fast) == _state(_read_as_httpx_does(200, headers, gzip.compress(b"hello"), request))
