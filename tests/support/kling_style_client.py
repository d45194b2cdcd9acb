"""A Kling client written the way the public ones are, to prove the fake serves them unchanged.

What public Python clients of Kling's own API do (API brief §2): sign an HS256 JWT with the
access key as ``iss``, ``exp`` = now + 1800 and ``nbf`` = now - 5 from their own clock (per
request, or once per session); POST a create; decide success by the envelope's ``code``;
poll ``/v1/videos/<kind>/<task_id>`` every few seconds until ``task_status`` is ``succeed`` or
``failed``; read ``task_result.videos[0].url``; download it. Nothing here knows it talks to a
fake: only the base URL and keys are the test's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt


class KlingError(Exception):
    """A non-zero ``code`` in Kling's envelope."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"HTTP {status}, code {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class Video:
    task_id: str
    status: str
    url: str | None
    message: str
    data: bytes | None = None


class KlingStyleClient:
    """``KlingStyleClient(ak, sk, base_url=..., client=httpx.Client())``; ``per_session`` signs
    one token for the client's life, as some SDKs do, instead of one per request."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        base_url: str = "https://api-singapore.klingai.com",
        client: httpx.Client | None = None,
        poll_interval: float = 5.0,
        timeout: float = 600.0,
        per_session: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.access_key, self.secret_key = access_key, secret_key
        self.base_url = base_url.rstrip("/")
        self.http = client or httpx.Client()
        self.poll_interval, self.timeout = poll_interval, timeout
        self.clock, self.sleep = clock, sleep
        self._token = self._sign() if per_session else None

    def _sign(self) -> str:
        now = int(self.clock())
        claims = {"iss": self.access_key, "exp": now + 1800, "nbf": now - 5}
        return jwt.encode(claims, self.secret_key, algorithm="HS256", headers={"alg": "HS256", "typ": "JWT"})

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token or self._sign()}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, self.base_url + path, json=body, headers=self._headers())
        payload = response.json()
        # Public clients require code, message and request_id on every answer, then read code.
        for key in ("code", "message", "request_id"):
            if key not in payload:
                raise KlingError(response.status_code, -1, f"answer without {key!r}: {payload!r}")
        if payload["code"] != 0:
            raise KlingError(response.status_code, payload["code"], payload["message"])
        return payload["data"]

    def create(self, kind: str, **fields: Any) -> str:
        data = self._call("POST", f"/v1/videos/{kind}", {"model_name": "kling-v2-6", **fields})
        if not isinstance(data["task_info"], dict):
            raise KlingError(200, -1, "task_info is not an object")
        return str(data["task_id"])

    def wait(self, kind: str, task_id: str) -> Video:
        deadline = self.clock() + self.timeout
        while True:
            data = self._call("GET", f"/v1/videos/{kind}/{task_id}")
            status = data["task_status"]
            if status == "succeed":
                return Video(task_id, status, data["task_result"]["videos"][0]["url"], data["task_status_msg"])
            if status == "failed":
                return Video(task_id, status, None, data["task_status_msg"])
            if self.clock() > deadline:
                raise TimeoutError(f"task {task_id} still {status}")
            self.sleep(self.poll_interval)

    def generate(self, kind: str, **fields: Any) -> Video:
        video = self.wait(kind, self.create(kind, **fields))
        if video.url is not None:
            download = self.http.get(video.url)
            download.raise_for_status()
            video.data = download.content
        return video
