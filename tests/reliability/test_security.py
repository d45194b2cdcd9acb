"""Safe defaults: loopback binds, admin behind loopback or a token, auth on every API route, no
outbound fetches, no secret in clear in the journal, the logs or an error message."""

from __future__ import annotations

import argparse
import json
import logging
import socket
from collections.abc import Iterator

import pytest
from reliability_helpers import AUTH, CREATE, JSON, InProcessDoor, Live, encode
from sample_payloads import t2v

from mockserver import Engine, Service, VirtualClock, admin, load_contract
from mockserver.contract import Operation
from mockserver.serve import add_arguments, is_loopback, run

CONTRACT = load_contract()
ADMIN_HEADER = "x-mock-admin-token"


# -- binds -----------------------------------------------------------------------------------


def _serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_python_m_mockserver_binds_loopback_by_default() -> None:
    assert _serve_args().host == "127.0.0.1"


def test_kling_testkit_serve_binds_loopback_by_default() -> None:
    from kling_testkit.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
    assert is_loopback(args.host)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.0.2.1", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("127.0.0.1.example.com", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_run_refuses_admin_on_a_non_loopback_bind_without_a_token(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It returns before binding anything (so the test needs no such address)."""
    assert run(_serve_args("--host", host, "--port", "0")) == 2
    err = capsys.readouterr().err
    assert "refusing to serve the admin API" in err
    assert "--admin-token" in err


# -- the admin API's token ---------------------------------------------------------------------


@pytest.fixture
def guarded() -> Service:
    return Service(Engine(clock=VirtualClock(), seed=1), admin_token="adm-Secret-42")


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("adm-Secret-4", id="prefix"),
        pytest.param("adm-Secret-42 ", id="trailing-space"),
        pytest.param("ADM-SECRET-42", id="case"),
        pytest.param("adm-Secret-42\xff", id="latin1"),
    ],
)
def test_admin_routes_need_the_exact_token(guarded: Service, sent: str | None) -> None:
    door = InProcessDoor(guarded)
    headers = [] if sent is None else [(ADMIN_HEADER, sent)]
    for method, path, _ in admin.ROUTES:
        reply = door.send(method, admin.PREFIX + path.replace("{task_id}", "task_x"), [*headers, JSON], b"{}")
        spec = CONTRACT.errors["admin_forbidden"]
        assert (reply.status, reply.json()["error"]["code"]) == (spec.http_status, spec.code), (method, path)
    assert guarded.engine.clock.now() == VirtualClock().now(), "a refused call changed nothing"


def test_admin_works_with_the_token(guarded: Service) -> None:
    door = InProcessDoor(guarded)
    reply = door.send("POST", "/__mock__/clock/advance", [(ADMIN_HEADER, "adm-Secret-42"), JSON], b'{"seconds": 5}')
    assert reply.status == 200


def test_admin_can_be_switched_off_entirely() -> None:
    door = InProcessDoor(Service(Engine(clock=VirtualClock()), admin=False))
    reply = door.send("POST", "/__mock__/reset", [JSON], b"{}")
    assert (reply.status, reply.json()["error"]["code"]) == (404, CONTRACT.errors["not_found"].code)


# -- auth on every API route -----------------------------------------------------------------

AUTHED = [op for op in CONTRACT.operations.values() if op.auth]


@pytest.mark.parametrize("keys", [None, ["sk-only"], ["*"]], ids=["default", "custom", "any"])
@pytest.mark.parametrize("admin_token", [None, "tok"], ids=["no-token", "token"])
@pytest.mark.parametrize("op", AUTHED, ids=[op.id for op in AUTHED])
def test_api_routes_always_require_auth(keys: list[str] | None, admin_token: str | None, op: Operation) -> None:
    door = InProcessDoor(Service(Engine(clock=VirtualClock()), keys=keys, admin_token=admin_token))
    path = op.path.replace("{task_id}", "task_x")
    for headers in ([], [("authorization", "Bearer ")], [("authorization", "sk-test")], [(ADMIN_HEADER, "tok")]):
        reply = door.send(op.method, path, [*headers, JSON], encode(t2v()))
        assert reply.status == 401, (headers, reply.body)
    assert door.service.engine.tasks() == []


def test_the_media_route_is_the_only_one_without_auth_and_it_serves_only_finished_tasks(service: Service) -> None:
    assert [op.id for op in CONTRACT.operations.values() if not op.auth] == ["media.get"]
    door = InProcessDoor(service)
    created = door.send("POST", CREATE, [AUTH, JSON], encode(t2v())).json()
    media = CONTRACT.operations["media.get"].path.replace("{file}", f"{created['task_id']}.mp4")
    assert door.send("GET", media).status == 404  # queued: nothing to leak yet


# -- no outbound fetches ---------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening loopback socket that no one should ever connect to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def _nobody_connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


@pytest.mark.parametrize("field", ["image", "image_tail"])
def test_image_urls_are_never_fetched_live(live: Live, listener: socket.socket, field: str) -> None:
    port = listener.getsockname()[1]
    body = t2v(image=f"http://127.0.0.1:{port}/cat.png", mode="pro")
    if field == "image_tail":
        body["image_tail"] = f"https://127.0.0.1:{port}/tail.jpg"
    reply = live.door.send("POST", CREATE, [AUTH, JSON], encode(body))
    assert reply.status == 200, reply.body
    warned = {(w.rule, w.param) for _, w in live.service.engine.journal.warnings()}
    assert ("image.not_fetched", field) in warned
    assert _nobody_connected(listener), "the fake connected to an image URL"


def test_a_closed_port_url_is_accepted_with_a_warning_not_an_error(service: Service) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # now nothing listens there: a fetch would fail loudly
    reply = InProcessDoor(service).send(
        "POST", CREATE, [AUTH, JSON], encode(t2v(image=f"http://127.0.0.1:{port}/x.png"))
    )
    assert reply.status == 200, reply.body
    assert [w.rule for _, w in service.engine.journal.warnings()] == ["image.not_fetched"]


# -- secrets ---------------------------------------------------------------------------------

SECRETS = ("sk-Hunter2-Secret", "sk-Wrong-Secret-9", "adm-Token-Secret-7")


def test_no_secret_reaches_the_journal_logs_or_error_messages(caplog: pytest.LogCaptureFixture) -> None:
    key, wrong, token = SECRETS
    service = Service(Engine(clock=VirtualClock(), seed=2), keys=[key], admin_token=token)
    door = InProcessDoor(service)
    caplog.set_level(logging.DEBUG)
    admin_h = (ADMIN_HEADER, token)
    replies = [
        door.send("POST", CREATE, [("authorization", f"Bearer {key}"), JSON], encode(t2v())),
        door.send("POST", CREATE, [("authorization", f"Bearer {wrong}"), JSON], encode(t2v())),
        door.send(
            "POST", CREATE, [("authorization", f"Bearer {key}"), ("authorization", f"Bearer {wrong}"), JSON], b"{}"
        ),
        door.send("GET", f"{CREATE}/task_x", [("authorization", f"Bearer {wrong}")]),
        door.send("POST", CREATE, [("x-api-key", key), ("cookie", f"session={key}"), JSON], b"{}"),
        door.send("GET", "/__mock__/tasks", [(ADMIN_HEADER, wrong)]),
    ]
    assert [r.status for r in replies] == [200, 401, 401, 401, 401, 403]
    exported = [
        door.send("GET", "/__mock__/journal", [admin_h]).body,
        door.send("GET", "/__mock__/journal.jsonl", [admin_h]).body,
        door.send("GET", "/__mock__/warnings", [admin_h]).body,
        door.send("GET", "/__mock__/tasks", [admin_h]).body,
        json.dumps([e.to_json() for e in service.engine.journal.entries()]).encode(),
    ]
    text = b"\n".join([*(r.body for r in replies), *exported]).decode() + caplog.text
    for secret in SECRETS:
        assert secret not in text
        assert secret.removeprefix("sk-") not in text
    assert "<redacted sha256:" in text, "the journal says a value was there, not what it was"


def test_the_live_server_logs_no_secret(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = SECRETS[1]
    live.door.send("POST", CREATE, [("authorization", f"Bearer {wrong}"), JSON], encode(t2v()))
    jsonl = live.door.send("GET", "/__mock__/journal.jsonl").body.decode()
    assert wrong.removeprefix("sk-") not in caplog.text
    assert f"Bearer {wrong}" not in jsonl
    assert "Bearer <redacted sha256:" in jsonl
