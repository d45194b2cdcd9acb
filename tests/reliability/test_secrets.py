"""Secrets redacted by one documented rule (issue 13): credential-like header names, query
names and body keys, and any value equal to a configured key, secret key or admin token (or any
JWT), in the journal, its JSON Lines export, the warnings, logs and error messages."""

from __future__ import annotations

import json
import logging

import jwt
import pytest
from reliability_helpers import CREATE, JSON, InProcessDoor, Live, encode
from sample_payloads import t2v

from mockserver import Engine, Service, VirtualClock, load_contract
from mockserver.engine.journal import is_credential_name

KEY = "sk-Hunter2-Secret"
SECRET = "kling-Secret-Key-Of-The-Pair-4242"
TOKEN = "adm-Token-Secret-7"
ACCESS = "ak-Pair-Access-1"
FACE_KEYS = {"gateway": KEY, "official": SECRET}


def _jwt(clock_now: float) -> str:
    return jwt.encode({"iss": ACCESS, "exp": int(clock_now + 3600)}, SECRET)


@pytest.fixture
def service() -> Service:
    return Service(Engine(clock=VirtualClock(), seed=2), keys=[KEY], key_pairs={ACCESS: SECRET}, admin_token=TOKEN)


def _leaks(text: str, *secrets: str) -> list[str]:
    return [s for s in secrets if s in text or s.removeprefix("sk-") in text]


@pytest.mark.parametrize(
    "header",
    ["Proxy-Authorization", "Api-Key", "X-Goog-Api-Key", "X-Auth-Token", "X-Api-Key", "Cookie", "X-Amz-Signature"],
)
def test_credential_headers_never_reach_the_journal_in_clear(service: Service, header: str) -> None:
    door = InProcessDoor(service)
    door.send("POST", CREATE, [(header, "carried-" + KEY), JSON], encode(t2v()))
    _assert_clean(door, KEY)


def test_query_parameters_and_body_fields_are_redacted_too(service: Service, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    door = InProcessDoor(service)
    token = _jwt(service.engine.clock.now())
    official = load_contract("official").operations["text2video.get"].path.replace("{task_id}", "123")
    replies = [
        door.send("POST", f"{CREATE}?api_key={KEY}", [("authorization", f"Bearer {KEY}"), JSON], encode(t2v())),
        door.send("POST", CREATE, [("authorization", f"Bearer {KEY}"), JSON], encode(t2v(api_key=KEY, note=KEY))),
        door.send("POST", CREATE, [("authorization", f"Bearer {KEY}"), JSON], encode(t2v(password="hunter2-pw"))),
        door.send("GET", f"{official}?access_token={token}", [("authorization", f"Bearer {token}")]),
        door.send("GET", f"{official}?note={SECRET}", [("authorization", f"Bearer {token}"), ("x-note", token)]),
        door.send("POST", CREATE, [("content-type", "text/plain")], f"key={KEY}&secret={SECRET}".encode()),
    ]
    assert [r.status for r in replies][:3] == [200, 200, 200]
    text = _assert_clean(door, KEY, SECRET, token, "hunter2-pw")
    text += b"".join(r.body for r in replies).decode() + caplog.text
    assert not _leaks(text, KEY, SECRET, token, TOKEN, "hunter2-pw")


def _assert_clean(door: InProcessDoor, *secrets: str) -> str:
    admin = [("x-mock-admin-token", TOKEN)]
    exported = [
        door.send("GET", "/__mock__/journal", admin).body,
        door.send("GET", "/__mock__/journal.jsonl", admin).body,
        door.send("GET", "/__mock__/warnings", admin).body,
        door.send("GET", "/__mock__/tasks", admin).body,
        json.dumps([e.to_json() for e in door.service.engine.journal.entries()]).encode(),
    ]
    text = b"\n".join(exported).decode()
    assert not _leaks(text, *secrets, TOKEN), text[:2000]
    assert "<redacted sha256:" in text
    return text


def test_the_admin_token_is_redacted_wherever_it_is_sent(service: Service) -> None:
    door = InProcessDoor(service)
    door.send("POST", CREATE, [("x-whatever", TOKEN), JSON], encode(t2v(comment=TOKEN)))
    _assert_clean(door)


def test_a_minted_live_token_is_redacted(live: Live) -> None:
    live.service.admin_token = "minted-Token-For-This-Run"
    try:
        live.door.send("POST", CREATE, [("x-echo", "minted-Token-For-This-Run"), JSON], encode(t2v()))
        text = json.dumps([e.to_json() for e in live.service.engine.journal.entries()])
        assert "minted-Token-For-This-Run" not in text
    finally:
        live.service.admin_token = None


@pytest.mark.parametrize("face", ["gateway", "official"])
def test_no_request_field_of_any_contract_looks_like_a_credential(face: str) -> None:
    """The name rule must not hide what a client sent in the contract's own fields."""
    contract = load_contract(face)
    names: set[str] = set()

    def walk(schema: object) -> None:
        if isinstance(schema, dict):
            names.update(schema.get("properties", {}))
            for value in schema.values():
                walk(value)
        elif isinstance(schema, list):
            for value in schema:
                walk(value)

    for model in contract.models.values():
        for schema in model.request_schemas.values():
            walk(schema)
    assert names
    assert [n for n in sorted(names) if is_credential_name(n)] == []


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("authorization", True),
        ("Proxy-Authorization", True),
        ("api-key", True),
        ("X-Goog-Api-Key", True),
        ("x-auth-token", True),
        ("api_key", True),
        ("apikey", True),
        ("access_token", True),
        ("client_secret", True),
        ("password", True),
        ("set-cookie", True),
        ("key", True),
        ("content-type", False),
        ("keep-alive", False),
        ("external_task_id", False),
        ("callback_url", False),
        ("monkey", False),
    ],
)
def test_the_name_rule(name: str, credential: bool) -> None:
    assert is_credential_name(name) is credential


def test_a_field_named_like_a_secret_is_redacted_in_the_warnings_too(service: Service) -> None:
    door = InProcessDoor(service)
    reply = door.send("POST", CREATE, [("authorization", f"Bearer {KEY}"), JSON], encode(t2v(**{KEY: 1})))
    assert reply.status == 200
    text = _assert_clean(door, KEY)
    assert "unknown field" in text


def test_a_body_key_named_key_is_redacted(service: Service) -> None:
    door = InProcessDoor(service)
    door.send("POST", CREATE, [("authorization", f"Bearer {KEY}"), JSON], encode(t2v(key="plain-value-123")))
    _assert_clean(door, "plain-value-123")
