"""Smaller defects of issue 13: the case of a data URI, and a request target that is no path."""

from __future__ import annotations

import pytest
from reliability_helpers import AUTH, CREATE, FACE_CASES, JSON, Door, Live, encode
from sample_payloads import b64, image_bytes, t2v

from mockserver import load_contract

PNG = b64(image_bytes(640, 360))


@pytest.mark.parametrize(
    "prefix",
    ["data:image/png;base64,", "DATA:IMAGE/PNG;BASE64,", "Data:Image/Png;Base64,", "data:image/PNG;base64,"],
)
def test_the_gateway_reads_a_data_uri_whatever_its_case(door: Door, prefix: str) -> None:
    """RFC 2397 and RFC 2045: the scheme, the media type and ``base64`` are case-insensitive."""
    reply = door.send("POST", CREATE, [AUTH, JSON], encode(t2v(image=prefix + PNG)))
    assert reply.status == 200, reply.body[:300]


@pytest.mark.parametrize("prefix", ["data:image/png;base64,", "DATA:IMAGE/PNG;BASE64,"])
def test_the_official_face_refuses_any_data_uri_by_contract(door: Door, prefix: str) -> None:
    face = FACE_CASES["official"]
    limits = load_contract("official").models["kling-v2-6"].image_limits
    assert limits["data_uri"] is False
    body = {**face.body, "image": prefix + PNG}
    path = next(op.path for op in face.contract.operations.values() if op.kind == "image2video" and op.method == "POST")
    reply = door.send("POST", path, [face.auth, JSON], encode(body))
    assert (reply.status, reply.json()["code"]) == (400, 1201), reply.body[:300]
    assert "without a data: prefix" in reply.json()["message"]


@pytest.mark.parametrize("method", ["OPTIONS", "GET", "POST"])
def test_an_asterisk_target_gets_the_faces_error_not_a_text_404(live: Live, method: str) -> None:
    reply = live.door.send(method, "*", [AUTH])
    FACE_CASES["gateway"].assert_error(reply, "not_found")


@pytest.mark.parametrize("callback", ["http://0[", "http://[::1", "https://a]b/"])
def test_a_callback_url_urllib_cannot_split_is_warned_about_not_a_500(door: Door, callback: str) -> None:
    """Found by Schemathesis once the document stated the cross-field rules: ``http://0[``
    raised ValueError inside the official face's create."""
    face = FACE_CASES["official"]
    reply = door.send("POST", face.create, [face.auth, JSON], encode({**face.body, "callback_url": callback}))
    assert reply.status == 200, reply.body[:300]
