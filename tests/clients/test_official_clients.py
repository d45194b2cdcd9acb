"""Clients of Kling's own API, written as the public ones are, work against the fake unchanged:
in-process (patched and injected), against ``kling-testkit serve`` over HTTP, and a Node
program that insists on ``https://`` against ``serve --tls``. Only base URLs and keys differ.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest
from kling_style_client import KlingError, KlingStyleClient
from sample_payloads import image_bytes
from served import serve

from kling_testkit import KlingMock
from mockserver import load_contract

PAIR = load_contract("official").index["auth"]["default_keys"][0]
AK, SK = PAIR["access_key"], PAIR["secret_key"]
FIRST_FRAME = base64.b64encode(image_bytes(640, 360)).decode()


def _probe(data: bytes) -> tuple[float, int, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None
        assert stream.time_base is not None
        return float(stream.duration * stream.time_base), stream.codec_context.width, stream.codec_context.height


@pytest.mark.parametrize(
    ("kind", "fields", "seconds", "size"),
    [
        pytest.param("text2video", {"prompt": "a red fox in snow", "duration": "5"}, 5, (1280, 720), id="t2v-std"),
        pytest.param(
            "text2video",
            {"prompt": "a red fox", "duration": "10", "mode": "pro", "aspect_ratio": "9:16"},
            10,
            (1080, 1920),
            id="t2v-pro-portrait",
        ),
        pytest.param("image2video", {"image": FIRST_FRAME, "prompt": "it moves"}, 5, (1280, 720), id="i2v"),
    ],
)
def test_a_public_style_client_completes_in_process_patched(
    kind: str, fields: dict[str, str], seconds: int, size: tuple[int, int]
) -> None:
    with KlingMock() as api:  # patches httpx on Kling's three hosts (and the gateway's)
        client = KlingStyleClient(AK, SK, poll_interval=0)
        video = client.generate(kind, **fields)
    assert video.status == "succeed"
    assert video.url is not None
    assert video.url.startswith("https://api-singapore.klingai.com/")
    assert video.data is not None
    duration, width, height = _probe(video.data)
    assert round(duration) == seconds
    assert (width, height) == size
    assert api.engine.journal.entries()[0].face == "official"


def test_a_session_token_expires_on_the_fakes_clock_and_a_fresh_one_works() -> None:
    api = KlingMock()
    http = httpx.Client(transport=api.transport())
    client = KlingStyleClient(
        AK, SK, base_url="https://api-beijing.klingai.com", client=http, per_session=True, clock=api.clock.now
    )
    task_id = client.create("text2video", prompt="a fox")
    api.advance_clock(1800 + 6)  # exp + the contract's 5 s of skew
    with pytest.raises(KlingError) as expired:
        client.wait("text2video", task_id)
    assert (expired.value.status, expired.value.code) == (401, 1004)
    fresh = KlingStyleClient(AK, SK, base_url="https://api-beijing.klingai.com", client=http, clock=api.clock.now)
    assert fresh.wait("text2video", task_id).status in ("processing", "succeed")


def test_a_failed_task_reaches_the_client_with_its_status_message() -> None:
    with KlingMock(outcome="failed:content_policy"):
        video = KlingStyleClient(AK, SK, poll_interval=0).generate("text2video", prompt="a fox")
    assert (video.status, video.message) == ("failed", "Failure to pass the risk control system")


def test_an_image_task_is_found_on_the_text_to_video_path() -> None:
    # One public app polls every task on the text2video path (api-brief 2.2).
    with KlingMock():
        client = KlingStyleClient(AK, SK, poll_interval=0)
        task_id = client.create("image2video", image=FIRST_FRAME)
        assert client.wait("text2video", task_id).status == "succeed"


# -- out of process ----------------------------------------------------------------------------


@pytest.fixture
def served() -> Iterator[tuple[str, list[str]]]:
    with serve() as running:
        yield running


@pytest.fixture
def served_tls() -> Iterator[tuple[str, list[str]]]:
    with serve("--tls") as running:
        yield running


def test_a_public_style_client_completes_against_serve(served: tuple[str, list[str]]) -> None:
    base_url, lines = served
    assert any("face official at /" in line for line in lines), lines
    with httpx.Client() as http:
        client = KlingStyleClient(AK, SK, base_url=base_url, client=http, poll_interval=0)
        video = client.generate("image2video", image=FIRST_FRAME, prompt="it moves")
    assert video.status == "succeed"
    assert video.url is not None
    assert video.url.startswith(base_url + "/")
    assert video.data is not None
    assert video.data[4:8] == b"ftyp"


def test_a_requests_script_signs_per_request_against_serve(served: tuple[str, list[str]]) -> None:
    import time

    import jwt
    import requests

    base_url, _ = served

    def headers() -> dict[str, str]:
        now = int(time.time())
        token = jwt.encode({"iss": AK, "exp": now + 1800, "nbf": now - 5}, SK, algorithm="HS256")
        return {"Authorization": f"Bearer {token}"}

    created = requests.post(
        f"{base_url}/v1/videos/text2video",
        json={"model": "kling-v2-6", "prompt": "a fox", "cfg_scale": 0.5, "duration": 5},
        headers=headers(),
        timeout=10,
    ).json()
    assert created["code"] == 0, created
    task_id = created["data"]["task_id"]
    assert isinstance(task_id, str)
    assert task_id.isdigit()
    statuses = [
        requests.get(f"{base_url}/v1/videos/text2video/{task_id}", headers=headers(), timeout=10).json()["data"][
            "task_status"
        ]
        for _ in range(2)
    ]
    assert statuses == ["processing", "succeed"]


NODE_CLIENT = r"""
// A Node client as public Kling SDKs are written: https only, a JWT signed per request.
const crypto = require("crypto");
const https = require("https");
const [base, ak, sk] = process.argv.slice(2);
if (!base.startsWith("https://")) throw new Error("base URL must be https://");
const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
function token() {
  const now = Math.floor(Date.now() / 1000);
  const head = b64({ alg: "HS256", typ: "JWT" }) + "." + b64({ iss: ak, exp: now + 1800, nbf: now - 5 });
  return head + "." + crypto.createHmac("sha256", sk).update(head).digest("base64url");
}
function call(method, url, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers: { Authorization: "Bearer " + token(), "Content-Type": "application/json" } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}
(async () => {
  const created = JSON.parse((await call("POST", base + "/v1/videos/text2video", { model_name: "kling-v2-6", prompt: "a fox", duration: "5" })).body);
  if (created.code !== 0) throw new Error(JSON.stringify(created));
  let data;
  for (let i = 0; i < 5; i++) {
    data = JSON.parse((await call("GET", base + "/v1/videos/text2video/" + created.data.task_id)).body).data;
    if (data.task_status === "succeed" || data.task_status === "failed") break;
  }
  const video = await call("GET", data.task_result.videos[0].url);
  console.log(JSON.stringify({ status: data.task_status, url: data.task_result.videos[0].url, bytes: video.body.length, ftyp: video.body.subarray(4, 8).toString() }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_a_node_client_that_insists_on_https_works_against_serve_tls(
    served_tls: tuple[str, list[str]], tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed on this machine")
    base_url, lines = served_tls
    assert base_url.startswith("https://")
    found = re.search(r"TLS CA bundle: (\S+)", "\n".join(lines))
    assert found, lines
    script = tmp_path / "client.js"
    script.write_text(NODE_CLIENT)
    env = {"PATH": "/usr/bin:/bin", "NODE_EXTRA_CA_CERTS": found.group(1)}
    done = subprocess.run(
        [node, str(script), base_url, AK, SK], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeed"
    assert result["url"].startswith(base_url + "/")
    assert result["ftyp"] == "ftyp"
    assert result["bytes"] > 1000
