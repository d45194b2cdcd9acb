"""A face mounted under a prefix with another face's keys answers refused keys in its own words."""

from __future__ import annotations

import pytest

from mockserver import Engine, Service, VirtualClock


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param((), 1001, id="missing-header-is-1001"),
        pytest.param((("authorization", "Bearer sk-wrong"),), 1002, id="refused-key-is-1002"),
        pytest.param((("authorization", "Basic abc"),), 1002, id="wrong-scheme-is-1002"),
    ],
)
def test_kling_routes_under_a_gateways_mount_refuse_keys_with_klings_auth_codes(
    headers: tuple[tuple[str, str], ...], code: int
) -> None:
    service = Service(Engine(clock=VirtualClock()))
    answer = service.handle_simple("GET", "/kling/v1/videos/text2video/1", headers=headers)
    assert answer.status == 401
    assert answer.payload["code"] == code
    assert answer.payload["data"] is None
    accepted = service.handle_simple(
        "GET", "/kling/v1/videos/text2video/1", headers=(("authorization", "Bearer sk-test"),)
    )
    assert (accepted.status, accepted.payload["code"]) == (404, 1203)  # past auth: an unknown task
