"""Kling's own API face: every code of the error table reachable as documented, accounts,
external ids, concurrency slots, lookups, lists and callbacks, on the engine's clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from sample_payloads import image_bytes

from kling_testkit import KlingMock, LiveServer
from mockserver import ApiResponse, Engine, Outcome, OutcomeRule, Progression, Service, VirtualClock, load_contract

CONTRACT = load_contract("official")
PAIR = CONTRACT.index["auth"]["default_keys"][0]
T2V = "/v1/videos/text2video"
I2V = "/v1/videos/image2video"
BODY = {"model_name": "kling-v2-6", "prompt": "a red fox in snow"}


def _token(service: Service, *, ak: str = PAIR["access_key"], sk: str = PAIR["secret_key"], **claims: Any) -> str:
    now = service.engine.clock.now()
    return jwt.encode({"iss": ak, "exp": now + 1800, "nbf": now - 5, **claims}, sk, algorithm="HS256")


def _auth(service: Service, **claims: Any) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {_token(service, **claims)}")]


def _json(response: ApiResponse) -> Any:
    return json.loads(response.body)


@pytest.fixture
def service() -> Service:
    return Service(Engine(clock=VirtualClock(), seed=3))


# -- the error table (api-brief 2.6): every code, its HTTP status, and how a test reaches it ----

Reach = Callable[[Service], ApiResponse]


def _fault(error: str) -> Reach:
    def reach(service: Service) -> ApiResponse:
        service.engine.arm_fault(_plan(error))
        return service.handle_simple("POST", T2V, json=BODY, headers=_auth(service))

    return reach


def _plan(error: str) -> Any:
    from mockserver import FaultPlan

    return FaultPlan(operation="task.create", error=error)


def _expired(service: Service) -> ApiResponse:
    headers = _auth(service)
    service.engine.advance_clock(1800 + 6)
    return service.handle_simple("GET", f"{T2V}/1", headers=headers)


def _slots(service: Service) -> ApiResponse:
    headers = _auth(service)
    for _ in range(int(CONTRACT.index["concurrency"]["slots_per_account"])):
        assert service.handle_simple("POST", T2V, json=BODY, headers=headers).status == 200
    return service.handle_simple("POST", T2V, json=BODY, headers=headers)


def _content_safety(service: Service) -> ApiResponse:
    rule = {"required": ["prompt"], "properties": {"prompt": {"pattern": "forbidden"}}}
    service.engine.add_outcome_rule(OutcomeRule(when=rule, outcome=Outcome.parse("refused:content_safety")))
    return service.handle_simple("POST", T2V, json={**BODY, "prompt": "forbidden"}, headers=_auth(service))


def _raw(service: Service, body: bytes) -> ApiResponse:
    from mockserver import ApiRequest

    headers = [*_auth(service), ("content-type", "application/json")]
    return service.handle(ApiRequest.build("POST", "http://127.0.0.1" + T2V, headers, body))


TABLE: list[tuple[int, int, Reach]] = [
    (
        1000,
        401,
        lambda s: s.handle_simple("GET", f"{T2V}/1", headers=_auth(s, sk="a-wrong-secret-of-32-bytes-or-more")),
    ),
    (1001, 401, lambda s: s.handle_simple("GET", f"{T2V}/1")),
    (1002, 401, lambda s: s.handle_simple("GET", f"{T2V}/1", headers=[("authorization", "Bearer not-a-jwt")])),
    (1003, 401, lambda s: s.handle_simple("GET", f"{T2V}/1", headers=_auth(s, nbf=s.engine.clock.now() + 60))),
    (1004, 401, _expired),
    (1100, 429, _fault("account_exception")),
    (1101, 429, _fault("in_arrears")),
    (1102, 429, _fault("resource_exhausted")),
    (1103, 403, _fault("no_permission")),
    (1200, 400, lambda s: _raw(s, b"{not json")),
    (1201, 400, lambda s: s.handle_simple("POST", T2V, json={**BODY, "duration": "7"}, headers=_auth(s))),
    (1202, 404, lambda s: s.handle_simple("DELETE", T2V, headers=_auth(s))),
    (1203, 404, lambda s: s.handle_simple("GET", f"{T2V}/123456789012345678", headers=_auth(s))),
    (1300, 400, _fault("platform_policy")),
    (1301, 400, _content_safety),
    (1302, 429, _fault("rate_limited")),
    (1303, 429, _slots),
    (1304, 429, _fault("ip_not_allowed")),
    (5000, 500, _fault("internal_error")),
    (5001, 503, _fault("unavailable")),
    (5002, 504, _fault("timeout")),
]


@pytest.mark.parametrize(("code", "status", "reach"), TABLE, ids=[str(row[0]) for row in TABLE])
def test_every_code_of_the_table_is_reachable_with_its_status_and_envelope(
    service: Service, code: int, status: int, reach: Reach
) -> None:
    answer = reach(service)
    body = _json(answer)
    assert (answer.status, body["code"]) == (status, code), body
    assert set(body) == {"code", "message", "request_id", "data"}
    assert body["data"] is None
    assert body["message"]


def test_the_table_covers_every_code_of_the_catalogue() -> None:
    catalogued = {spec.code for spec in CONTRACT.errors.values()}
    assert catalogued == {row[0] for row in TABLE}


# -- accounts, external ids, lookups ------------------------------------------------------------


def test_each_access_key_is_an_account_with_its_own_tasks_and_external_ids() -> None:
    service = Service(Engine(clock=VirtualClock()), key_pairs={"ak-a": "s" * 32, "ak-b": "t" * 32})
    a = _auth(service, ak="ak-a", sk="s" * 32)
    b = _auth(service, ak="ak-b", sk="t" * 32)
    created = _json(service.handle_simple("POST", T2V, json={**BODY, "external_task_id": "job-1"}, headers=a))
    task_id = created["data"]["task_id"]
    assert created["data"]["task_info"] == {"external_task_id": "job-1"}
    # the same external id is free on another account, taken on this one
    assert service.handle_simple("POST", T2V, json={**BODY, "external_task_id": "job-1"}, headers=b).status == 200
    again = service.handle_simple("POST", T2V, json={**BODY, "external_task_id": "job-1"}, headers=a)
    assert (again.status, _json(again)["code"]) == (400, 1201)
    # by external id on either kind's path; invisible to the other account
    assert _json(service.handle_simple("GET", f"{I2V}/job-1", headers=a))["data"]["task_id"] == task_id
    assert service.handle_simple("GET", f"{T2V}/{task_id}", headers=b).status == 404
    listed = _json(service.handle_simple("GET", f"{T2V}?external_task_id=job-1", headers=a))["data"]
    assert [t["task_id"] for t in listed] == [task_id]


def test_a_slot_is_held_until_the_task_ends_failure_included(service: Service) -> None:
    service.engine.set_outcome(Outcome.fail("generation_failed"))
    headers = _auth(service)
    ids = [_json(service.handle_simple("POST", T2V, json=BODY, headers=headers))["data"]["task_id"] for _ in range(5)]
    assert _json(service.handle_simple("POST", T2V, json=BODY, headers=headers))["code"] == 1303
    service.engine.advance(ids[0])
    service.engine.advance(ids[0])  # processing -> failed frees its slot
    assert service.handle_simple("POST", T2V, json=BODY, headers=headers).status == 200


def test_lists_are_newest_first_and_paged_within_bounds(service: Service) -> None:
    headers = _auth(service)
    ids = [_json(service.handle_simple("POST", T2V, json=BODY, headers=headers))["data"]["task_id"] for _ in range(3)]
    page = _json(service.handle_simple("GET", f"{T2V}?pageNum=1&pageSize=2", headers=headers))["data"]
    assert [t["task_id"] for t in page] == ids[::-1][:2]
    second = _json(service.handle_simple("GET", f"{T2V}?pageNum=2&pageSize=2", headers=headers))["data"]
    assert [t["task_id"] for t in second] == ids[:1]
    for query in ("pageNum=0", "pageSize=501", "pageNum=x"):
        refused = service.handle_simple("GET", f"{T2V}?{query}", headers=headers)
        assert (refused.status, _json(refused)["code"]) == (400, 1201)
        assert query.split("=")[0] in _json(refused)["message"]


@pytest.mark.parametrize(
    ("body", "warning"),
    [
        pytest.param({**BODY, "cfg_scale": 0.5}, "cfg_scale.ignored", id="cfg-scale-on-v2"),
        pytest.param({**BODY, "duration": 5}, "duration.integer", id="integer-duration"),
    ],
)
def test_what_real_clients_send_is_accepted_with_a_warning(service: Service, body: Any, warning: str) -> None:
    assert service.handle_simple("POST", T2V, json=body, headers=_auth(service)).status == 200
    [entry] = service.engine.journal.entries()
    assert warning in [w.rule for w in entry.warnings]


def test_a_data_uri_image_is_refused_naming_image(service: Service) -> None:
    import base64

    data_uri = "data:image/png;base64," + base64.b64encode(image_bytes(640, 360)).decode()
    refused = service.handle_simple("POST", I2V, json={**BODY, "image": data_uri}, headers=_auth(service))
    assert (refused.status, _json(refused)["code"]) == (400, 1201)
    assert "'image'" in _json(refused)["message"]
    [entry] = service.engine.journal.entries()
    assert (entry.rule, entry.param) == ("image.encoding", "image")


def test_a_model_outside_the_list_is_refused_and_kling_v1_is_the_default(service: Service) -> None:
    unknown = service.handle_simple("POST", T2V, json={**BODY, "model_name": "kling-v9"}, headers=_auth(service))
    assert (unknown.status, _json(unknown)["code"]) == (404, 1203)
    default = service.handle_simple("POST", T2V, json={"prompt": "a fox"}, headers=_auth(service))
    assert default.status == 200
    assert service.engine.tasks()[0].model == "kling-v1"


# -- callbacks -------------------------------------------------------------------------------


def test_in_process_callbacks_reach_the_tests_own_route_in_order_and_retry() -> None:
    api = KlingMock()
    hook = api.router.post("https://my-app.example/kling-hook")
    hook.side_effect = [httpx.Response(500), httpx.Response(200), httpx.Response(200), httpx.Response(200)]
    http = httpx.Client(transport=api.transport())
    token = _token(api.service)
    created = http.post(
        "https://api-singapore.klingai.com" + T2V,
        json={**BODY, "callback_url": "https://my-app.example/kling-hook"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    task_id = created["data"]["task_id"]
    for _ in range(2):
        http.get(f"https://api-singapore.klingai.com{T2V}/{task_id}", headers={"Authorization": f"Bearer {token}"})
    # the first delivery (submitted) got a 500; the later ones wait for it, in order
    assert [json.loads(c.request.content)["task_status"] for c in hook.calls] == ["submitted"]
    api.advance_clock(1)  # the contract's first retry delay
    bodies = [json.loads(c.request.content) for c in hook.calls]
    assert [b["task_status"] for b in bodies] == ["submitted", "submitted", "processing", "succeed"]
    assert "code" not in bodies[-1]
    assert bodies[-1]["task_id"] == task_id
    assert [d.delivered for d in api.deliveries()] == [True, True, True]
    assert len(api.deliveries()[0].attempts) == 2


def test_a_live_server_posts_callbacks_to_loopback_only(kling_server: LiveServer) -> None:
    import http.server
    import threading

    received: list[Any] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        token = _token(kling_server.service)
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(kling_server.base_url + T2V, json={**BODY, "callback_url": url}, headers=headers).json()
        elsewhere = httpx.post(
            kling_server.base_url + T2V, json={**BODY, "callback_url": "http://203.0.113.9/hook"}, headers=headers
        )
        assert elsewhere.status_code == 200
        kling_server.set_progression("immediate", created["data"]["task_id"])
        kling_server.deliver_callbacks()
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert [r["task_status"] for r in received] == ["submitted", "processing", "succeed"]
    assert {d.url for d in kling_server.deliveries()} == {url}  # the foreign host gets nothing
    warned = [w.rule for _, w in kling_server.journal.warnings()]
    assert "callback.allowed_host" in warned


@pytest.mark.parametrize(
    ("body", "duration", "audio"),
    [
        pytest.param(
            {"model_name": "kling-v3", "prompt": "a fox", "duration": "8"}, "5.0", False, id="v3-8s-served-5s"
        ),
        pytest.param({**BODY, "mode": "pro", "sound": "on", "duration": "10"}, "10.0", True, id="pro-sound-on"),
    ],
)
def test_the_served_video_is_what_the_task_object_says(service: Service, body: Any, duration: str, audio: bool) -> None:
    import io

    import av

    headers = _auth(service)
    service.engine.set_progression(Progression.parse("immediate"))
    task_id = _json(service.handle_simple("POST", T2V, json=body, headers=headers))["data"]["task_id"]
    video = _json(service.handle_simple("GET", f"{T2V}/{task_id}", headers=headers))["data"]["task_result"]["videos"][0]
    assert video["duration"] == duration
    data = service.handle_simple("GET", video["url"].removeprefix("http://127.0.0.1")).body
    with av.open(io.BytesIO(data)) as container:
        assert bool(container.streams.audio) is audio
        stream = container.streams.video[0]
        assert stream.duration is not None
        assert stream.time_base is not None
        assert round(float(stream.duration * stream.time_base)) == round(float(duration))


def _png(width: int, height: int) -> str:
    import base64

    return base64.b64encode(image_bytes(width, height)).decode()


@pytest.mark.parametrize(
    ("path", "body", "frame", "duration", "audio"),
    [
        pytest.param(T2V, BODY, (1280, 720), 5, False, id="t2v-defaults-std-16:9"),
        pytest.param(T2V, {**BODY, "aspect_ratio": "9:16"}, (720, 1280), 5, False, id="t2v-std-9:16"),
        pytest.param(T2V, {**BODY, "mode": "pro", "aspect_ratio": "1:1"}, (1080, 1080), 5, False, id="t2v-pro-1:1"),
        pytest.param(T2V, {**BODY, "mode": "pro", "sound": "on", "duration": "10"}, (1920, 1080), 10, True,
                     id="t2v-pro-sound-10s"),
        pytest.param(I2V, {**BODY, "image": _png(300, 600), "aspect_ratio": "16:9"}, (720, 1280), 5, False,
                     id="i2v-portrait-image-wins-over-aspect_ratio"),
        pytest.param(I2V, {**BODY, "mode": "pro", "image": _png(500, 480)}, (1080, 1080), 5, False,
                     id="i2v-pro-near-square-image"),
        pytest.param(I2V, {**BODY, "image": _png(800, 450)}, (1280, 720), 5, False, id="i2v-landscape-image"),
    ],
)  # fmt: skip
def test_the_frame_size_follows_mode_aspect_and_image(
    service: Service, path: str, body: Any, frame: tuple[int, int], duration: int, audio: bool
) -> None:
    # The contract's output table: frame_sizes[resolution_by_mode[mode]][aspect], the aspect the
    # request's (text) or the one nearest the image's (image); one task after another, so what a
    # request gets does not depend on the requests before it.
    headers = _auth(service)
    for _ in range(2):
        created = service.handle_simple("POST", path, json=body, headers=headers)
        assert created.status == 200, created.body
    for task in service.engine.tasks():
        video = task.video
        assert ((video.width, video.height), video.duration, video.audio) == (frame, duration, audio)


@pytest.mark.parametrize(
    ("prefix", "authorization"),
    [
        pytest.param("", "jwt", id="root-jwt"),
        pytest.param("/kling", "Bearer sk-test", id="gateway-mount-sk-key"),
        pytest.param("/proxy/kling", "jwt", id="proxy-mount-jwt"),
    ],
)
def test_kling_routes_are_served_at_the_root_and_under_the_contracts_prefixes(
    service: Service, prefix: str, authorization: str
) -> None:
    headers = _auth(service) if authorization == "jwt" else [("authorization", authorization)]
    created = service.handle_simple("POST", prefix + T2V, json=BODY, headers=headers)
    assert (created.status, _json(created)["code"]) == (200, 0)
    task_id = _json(created)["data"]["task_id"]
    polled = service.handle_simple("GET", f"{prefix}{I2V}/{task_id}", headers=headers)
    assert _json(polled)["data"]["task_status"] == "processing"
    [_, entry] = service.engine.journal.entries()
    assert (entry.face, entry.operation) == ("official", "image2video.get")


def _jwt(service: Service, algorithm: str = "HS256", **claims: Any) -> str:
    now = service.engine.clock.now()
    payload = {"iss": PAIR["access_key"], "exp": now + 1800, **claims}
    key = PAIR["secret_key"] if algorithm == "HS256" else "k" * 64  # the algorithm is refused before the key
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm)


@pytest.mark.parametrize(
    ("headers", "status", "code", "rule"),
    [
        pytest.param(lambda s: [("authorization", "Bearer a"), ("authorization", "Bearer b")], 401, 1002,
                     "auth.header", id="two-authorization-headers"),
        pytest.param(lambda s: [("authorization", "Bearer " + "x" * 5000)], 401, 1002, "auth.header", id="huge-header"),
        pytest.param(lambda s: [("authorization", "Basic YWs6c2s=")], 401, 1002, "auth.header", id="not-bearer"),
        pytest.param(lambda s: [("authorization", "Bearer " + _jwt(s, iss="ak-nobody"))], 401, 1000, "auth.iss",
                     id="unknown-access-key"),
        pytest.param(lambda s: [("authorization", "Bearer " + _jwt(s, exp=None))], 401, 1002, "auth.exp", id="no-exp"),
        pytest.param(lambda s: [("authorization", "Bearer " + _jwt(s, exp="soon"))], 401, 1002, "auth.jwt",
                     id="exp-not-a-number"),
        pytest.param(lambda s: [("authorization", "Bearer " + _jwt(s, algorithm="HS512"))], 401, 1002, "auth.jwt",
                     id="not-hs256"),
    ],
)  # fmt: skip
def test_every_way_a_token_is_refused_names_its_rule(
    service: Service, headers: Callable[[Service], list[tuple[str, str]]], status: int, code: int, rule: str
) -> None:
    answer = service.handle_simple("GET", f"{T2V}/1", headers=headers(service))
    assert (answer.status, _json(answer)["code"]) == (status, code)
    [entry] = service.engine.journal.entries()
    assert entry.rule == rule


def test_single_api_keys_are_accepted_as_plain_bearer_tokens() -> None:
    service = Service(Engine(clock=VirtualClock()), keys=["kling-api-key-1"])
    accepted = service.handle_simple("POST", T2V, json=BODY, headers=[("authorization", "Bearer kling-api-key-1")])
    refused = service.handle_simple("POST", T2V, json=BODY, headers=[("authorization", "Bearer kling-api-key-2")])
    assert (accepted.status, refused.status, _json(refused)["code"]) == (200, 401, 1002)
    assert service.engine.tasks()[0].account == "key:kling-api-key-1"
