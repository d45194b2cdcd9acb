"""Kling's own API: a callback_url that the schema's pattern lets through but that is no URL
(``http://[``, a port that is no number) is accepted without a callback, as any host the fake
will not call is, instead of crashing the create or, in-process, the delivery (found by
kling_testkit.strategies' valid requests and the lifecycle state machine)."""

from __future__ import annotations

import jwt
import pytest

from mockserver import Engine, Service, VirtualClock
from mockserver.contract import load_contract

PAIR = load_contract("official").index["auth"]["default_keys"][0]


@pytest.mark.parametrize("callback", ["http://[", "http://0[", "https://[::1", "https://a:b", "http://[::1]x"])
def test_a_callback_url_that_is_no_url_gets_a_warning_not_a_crash(callback: str) -> None:
    service = Service(Engine(clock=VirtualClock()), faces=["official"], callback_hosts=["*"])
    now = service.engine.clock.now()
    token = jwt.encode({"iss": PAIR["access_key"], "exp": now + 1800, "nbf": now - 5}, PAIR["secret_key"])
    body = {"model_name": "kling-v2-6", "prompt": "a fox", "callback_url": callback}
    answer = service.handle_simple(
        "POST", "/v1/videos/text2video", json=body, headers=[("authorization", f"Bearer {token}")]
    )
    assert answer.status == 200, answer.payload
    (entry,) = service.engine.journal.entries()
    assert [w.rule for w in entry.warnings] == ["callback.allowed_host"]
    assert service.engine.tasks()[0].callback_url is None
