"""The doors' guards (issue 13): one rule for admin beyond loopback, Host checks on admin
requests, result links from the public base URL, and bounded request heads, for every face."""

from __future__ import annotations

import contextlib
import textwrap
import threading

import httpx
import pytest
from reliability_helpers import (
    AUTH,
    CREATE,
    FACE_CASES,
    JSON,
    InProcessDoor,
    Live,
    Reply,
    create_and_poll_ok,
    encode,
    request_head,
)
from sample_payloads import t2v

from kling_testkit.server import LiveServer
from mockserver import ApiRequest, Engine, Progression, Service, VirtualClock
from mockserver.engine.journal import MAX_STRING
from mockserver.service import AdminExposed, admin_exposure

pytest_plugins = ["pytester"]
FACES = sorted(FACE_CASES)


def _send(service: Service, method: str, path: str, headers: list[tuple[str, str]], **fields: object) -> Reply:
    request = ApiRequest(method, "http", str(fields.pop("host", "127.0.0.1")), path, headers=tuple(headers), **fields)  # type: ignore[arg-type]
    answer = service.handle(request)
    return Reply(answer.status, answer.headers, answer.body)


# -- 2. admin beyond loopback needs a token, at every door ----------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_the_one_rule_refuses_admin_without_a_token_beyond_loopback(host: str) -> None:
    assert admin_exposure(host, admin=True, admin_token=None) is not None
    assert admin_exposure(host, admin=True, admin_token="t") is None
    assert admin_exposure(host, admin=False, admin_token=None) is None
    with pytest.raises(AdminExposed, match="--admin-token"):
        Service(Engine(clock=VirtualClock())).check_bind(host)


def test_a_live_server_beyond_loopback_gets_a_token_nobody_else_knows() -> None:
    with LiveServer(host="0.0.0.0") as server:
        assert server.admin_token
        assert server.service.admin_token == server.admin_token
        url = f"http://127.0.0.1:{server.port}/__mock__/journal"
        assert httpx.get(url).status_code == 403, "the admin API answered without the token"
        server.admin().advance_clock(5)  # the server's own client sends it
        armed = httpx.post(
            f"http://127.0.0.1:{server.port}/__mock__/faults",
            json={"operation": "task.create", "error": "rate_limited"},
        )
        assert armed.status_code == 403
        assert server.engine.faults() == []


def test_the_fixture_on_a_non_loopback_address_keeps_admin_behind_a_token(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def kling_server_address():
            return "0.0.0.0"
        """
    )
    pytester.makepyfile(
        textwrap.dedent(
            """
            import httpx

            def test_admin_needs_the_token(kling_server):
                url = f"http://127.0.0.1:{kling_server.port}/__mock__/journal"
                assert httpx.get(url).status_code == 403
                assert kling_server.admin().journal() == []
            """
        )
    )
    pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly").assert_outcomes(passed=1)


def test_admin_without_a_token_answers_only_loopback_peers() -> None:
    service = Service(Engine(clock=VirtualClock()))
    refused = _send(service, "GET", "/__mock__/journal", [], client="192.0.2.7")
    FACE_CASES["gateway"].assert_error(refused, "admin_forbidden")
    assert _send(service, "GET", "/__mock__/journal", [], client="127.0.0.1").status == 200
    assert _send(service, "GET", "/__mock__/journal", [], client="::1").status == 200
    assert _send(service, "GET", "/__mock__/journal", []).status == 200  # in-process: no peer


def test_with_a_token_any_peer_may_use_admin_with_it() -> None:
    service = Service(Engine(clock=VirtualClock()), admin_token="tok")
    reply = _send(service, "GET", "/__mock__/journal", [("x-mock-admin-token", "tok")], client="192.0.2.7")
    assert reply.status == 200


# -- 3. Host checks on admin, links from the public base URL -------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("evil.example", 403),
        ("evil.example:{port}", 403),
        ("127.0.0.1.evil.example:{port}", 403),
        ("127.0.0.1:{port}", 200),
        ("localhost:{port}", 200),
        ("LOCALHOST", 200),
        ("[::1]:{port}", 200),
    ],
)
def test_admin_reads_need_a_host_the_server_recognises(live: Live, host: str, status: int) -> None:
    """A DNS-rebound page reads as same-origin (no Origin on a GET); its Host gives it away."""
    door = live.door
    with door.connect() as sock:
        head = request_head("GET", "/__mock__/journal", host.format(port=live.port), [("connection", "close")])
        sock.sendall(head)
        reply = door.read_reply(sock)
    assert reply.status == status, reply.body[:200]
    if status == 403:
        FACE_CASES["gateway"].assert_error(reply, "admin_unknown_host")


def test_configured_names_are_recognised() -> None:
    service = Service(Engine(clock=VirtualClock()), allowed_hosts=["fake.internal"])
    assert _send(service, "GET", "/__mock__/tasks", [], host="fake.internal:8000").status == 200
    assert _send(service, "GET", "/__mock__/tasks", [], host="other.internal").status == 403


@pytest.mark.parametrize("face_name", FACES)
def test_result_links_never_follow_the_host_header(live: Live, face_name: str) -> None:
    face = FACE_CASES[face_name]
    live.service.engine.set_progression(Progression.parse("immediate"))
    door = live.door
    created = door.send("POST", face.create, [face.auth, JSON], encode(face.body))
    assert created.status == 200, created.body[:300]
    task_id = face.contract.reader.get("task_id", created.json())
    with door.connect() as sock:
        poll = face.poll.replace("{task_id}", task_id)
        sock.sendall(request_head("GET", poll, "evil.example", [face.auth, ("connection", "close")]))
        polled = door.read_reply(sock)
    url = face.contract.reader.get("result_url", polled.json())
    assert url.startswith(live.base_url + "/"), url
    assert "evil.example" not in polled.body.decode()


def test_a_configured_public_url_is_where_links_point() -> None:
    with LiveServer(public_base_url="https://fake.example:9443/", progression="immediate") as server:
        created = httpx.post(server.base_url + CREATE, json=t2v(), headers=dict([AUTH])).json()
        polled = httpx.get(f"{server.base_url}{CREATE}/{created['task_id']}", headers=dict([AUTH])).json()
        assert polled["url"].startswith("https://fake.example:9443/__media__/")
        servers = httpx.get(server.base_url + "/openapi.json").json()["servers"]
        assert servers[0]["url"] == "https://fake.example:9443"


def test_in_process_links_keep_the_mocks_own_base_urls() -> None:
    from kling_testkit import KlingMock

    api = KlingMock(base_urls=["http://fake.test/prefix"], progression="immediate")
    with api.client() as client:
        created = client.post(CREATE, json=t2v(), headers=dict([AUTH])).json()
        polled = client.get(f"{CREATE}/{created['task_id']}", headers=dict([AUTH])).json()
        assert polled["url"].startswith("http://fake.test/prefix/__media__/")
        assert client.get("/__mock__/tasks").status_code == 200


# -- 5. request heads bounded at the door and in the service ---------------------------------


@pytest.mark.parametrize("face_name", FACES)
def test_too_many_header_fields_get_the_faces_431(face_name: str) -> None:
    face = FACE_CASES[face_name]
    door = InProcessDoor(Service(Engine(clock=VirtualClock())))
    headers = [face.auth, JSON, *((f"x-h{i}", "v") for i in range(100))]
    face.assert_error(door.send("POST", face.create, headers, encode(face.body)), "headers_too_large")
    ok = door.send("POST", face.create, [face.auth, JSON, *((f"x-h{i}", "v") for i in range(90))], encode(face.body))
    assert ok.status == 200, ok.body[:300]


@pytest.mark.parametrize("face_name", FACES)
def test_header_bytes_past_the_bound_get_the_faces_431(face_name: str) -> None:
    face = FACE_CASES[face_name]
    door = InProcessDoor(Service(Engine(clock=VirtualClock())))
    reply = door.send("POST", face.create, [face.auth, JSON, ("x-big", "v" * 17_000)], encode(face.body))
    face.assert_error(reply, "headers_too_large")
    assert "16384 bytes" in reply.body.decode()


@pytest.mark.parametrize("face_name", FACES)
def test_the_live_door_answers_a_huge_head_without_waiting_for_its_end(live: Live, face_name: str) -> None:
    """A head of 4 MiB that never ends: the door used to buffer it and wait for more (a 256 MB
    header was read whole, a 96 MB one stalled every other client); now it answers the face's
    431 once the head passes its bound, and other clients are served meanwhile."""
    face = FACE_CASES[face_name]
    served: list[BaseException | None] = []

    def other_client() -> None:
        try:
            create_and_poll_ok(live.door)
            served.append(None)
        except BaseException as exc:
            served.append(exc)

    with live.door.connect(timeout=10) as sock:
        sock.sendall(f"POST {face.create} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-huge: ".encode())
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"h" * (4 * 1024 * 1024))  # no CRLF CRLF: the head is never complete
        thread = threading.Thread(target=other_client)
        thread.start()
        reply = live.door.read_reply(sock)
        thread.join(30)
    face.assert_error(reply, "headers_too_large")
    assert ("connection", "close") in reply.headers
    assert served == [None]


def test_headers_are_shortened_in_the_journal_like_bodies(live: Live) -> None:
    for _ in range(20):
        reply = live.door.send("POST", CREATE, [AUTH, JSON, ("x-note", "n" * 15_000)], encode(t2v()))
        assert reply.status == 200
    for entry in live.service.engine.journal.entries():
        for name, value in entry.request_headers:
            assert len(value) <= MAX_STRING, (name, value[:80])
        assert ("x-note", next(v for k, v in entry.request_headers if k == "x-note")) in entry.request_headers
        assert next(v for k, v in entry.request_headers if k == "x-note").startswith("<15000 chars sha256:")


def test_a_head_under_the_bound_is_served(live: Live) -> None:
    reply = live.door.send("POST", CREATE, [AUTH, JSON, ("x-note", "n" * 15_000)], encode(t2v()))
    assert reply.status == 200
