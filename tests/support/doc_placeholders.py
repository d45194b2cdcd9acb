"""The declared placeholders of the documentation's examples: "your code", and nothing else.

README.md and docs/*.md show tests of *your* client (``my_sdk``, ``my_app``, ``MyClient``...).
When the suite runs those examples (``tests/support/doc_examples.py``), these small but real
stand-ins take their place: each creates, polls, waits and downloads the way a client in the
wild does (its own ``httpx`` client, ``time.sleep`` between polls and for ``Retry-After``), so
an example passes only if the kit really supports such a client. A name an example uses that is
neither defined in the example, nor listed in :data:`PLACEHOLDERS`, nor a pytest fixture fails
the example with a ``NameError``.

Snippets (examples that define no test) run inside a test; they may also use the fixtures
``kling_mock``/``kling_server`` and the values of :data:`SNIPPET_VALUES` (``AUTH``, ``BODY``,
``body``) and ``task_id`` (a task created on the snippet's ``kling_mock``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx

from mockserver import Service, load_contract
from mockserver.validation import ImageProblem, inspect_image

AUTH = {"Authorization": "Bearer sk-test"}
BODY = {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a red fox in snow", "duration": 5}]}
CREATE = "/v1/video/generations"
DONE = ("completed", "failed")

#: plain values snippets may use without defining them
SNIPPET_VALUES: dict[str, Any] = {"AUTH": AUTH, "BODY": BODY, "body": BODY}


class MyClient:
    """A client that takes its ``httpx`` client (and, optionally, its sleep function)."""

    def __init__(self, http: httpx.Client, sleep: Callable[[float], None] | None = None) -> None:
        self.http = http
        self._sleep = sleep

    def sleep(self, seconds: float) -> None:
        # time.sleep is looked up when called, as an SDK that calls time.sleep(...) does.
        (self._sleep or time.sleep)(seconds)

    def create_raw(self, body: Mapping[str, Any]) -> httpx.Response:
        return self.http.post(CREATE, json=dict(body))

    def get_raw(self, task_id: str) -> httpx.Response:
        return self.http.get(f"{CREATE}/{task_id}")

    def generate(self, prompt: str, poll_interval: float = 5) -> dict[str, Any]:
        while (
            created := self.create_raw({**BODY, "multi_prompt": [{"prompt": prompt, "duration": 5}]})
        ).status_code == 429:
            self.sleep(float(created.headers["retry-after"]))
        created.raise_for_status()
        task_id = created.json()["task_id"]
        task: dict[str, Any] = self.get_raw(task_id).json()  # the create answer carries no result url
        while task["status"] not in DONE:
            self.sleep(poll_interval)
            task = self.get_raw(task_id).json()
        return task


class MyAsyncClient:
    """The async twin of :class:`MyClient`."""

    def __init__(self, http: httpx.AsyncClient, sleep: Callable[[float], Any] | None = None) -> None:
        self.http = http
        self._sleep = sleep

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await (self._sleep or asyncio.sleep)(seconds)

    async def generate(self, prompt: str, poll_interval: float = 5) -> dict[str, Any]:
        body = {**BODY, "multi_prompt": [{"prompt": prompt, "duration": 5}]}
        while (created := await self.http.post(CREATE, json=body)).status_code == 429:
            await self.sleep(float(created.headers["retry-after"]))
        task_id = created.json()["task_id"]
        task: dict[str, Any] = (await self.http.get(f"{CREATE}/{task_id}")).json()
        while task["status"] not in DONE:
            await self.sleep(poll_interval)
            task = (await self.http.get(f"{CREATE}/{task_id}")).json()
        return task


@dataclass
class _Video:
    status: str
    task: dict[str, Any]
    content: bytes = b""


class _SdkClient:
    """An SDK that builds its own ``httpx.Client`` for the gateway and waits with ``time.sleep``."""

    def __init__(self, api_key: str = "sk-test", base_url: str = "https://api.modelstream.ai") -> None:
        self.api_key = api_key
        self.base_url = base_url

    def generate(self, prompt: str) -> _Video:
        with httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {self.api_key}"}) as http:
            task = MyClient(http).generate(prompt)
        return _Video(task["status"], task)


#: ``my_sdk.generate(prompt)`` / ``my_sdk.Client(api_key=...).generate(prompt)``
my_sdk = SimpleNamespace(Client=_SdkClient, generate=lambda prompt: _SdkClient().generate(prompt))


def _generate_video(client: httpx.Client, prompt: str, sleep: Callable[[float], None] | None = None) -> bytes:
    """Create, poll until done, download: returns the MP4's bytes."""
    task = MyClient(client, sleep).generate(prompt)
    if task["status"] != "completed":
        raise RuntimeError(f"generation failed: {task.get('error')}")
    return client.get(task["url"]).raise_for_status().content


#: ``my_app.generate(client, prompt=...)``: your application's use of the API
my_app = SimpleNamespace(generate=lambda client, prompt, **kw: _generate_video(client, prompt, **kw))

_CONTRACT = load_contract()


def my_validate(body: Any) -> str | None:
    """Your client-side validation: the field it blames, or None (here: what a fresh fake answers)."""
    answer = Service().handle_simple("POST", CREATE, body, [("authorization", "Bearer sk-test")]).payload
    error = answer.get("error") if isinstance(answer, Mapping) else None
    return error.get("param") if isinstance(error, Mapping) else None


@dataclass
class _FieldError:
    field: str | None


@dataclass
class _ImageVerdict:
    reason: str | None


class _BuiltRequest(httpx.Request):
    """The request your client would send (``.json()`` reads its body back)."""

    def json(self) -> Any:
        return json.loads(self.content)


class _MyClientCode:
    """``my_client``: the request builder, validator, image check and parser of your client."""

    def build_create(self, body: Mapping[str, Any]) -> _BuiltRequest:
        return _BuiltRequest("POST", f"https://api.modelstream.ai{CREATE}", json=dict(body))

    def validate(self, body: Mapping[str, Any]) -> _FieldError:
        return _FieldError(my_validate(body))

    def check_image(self, value: str) -> _ImageVerdict:
        model = _CONTRACT.models["kling-v2-6"]
        found = inspect_image(value, model.image_limits)
        return _ImageVerdict(found.check if isinstance(found, ImageProblem) else None)

    def parse(self, status: int, headers: Mapping[str, str], body: Any) -> dict[str, Any]:
        if status == 429:
            assert "retry-after" in {name.lower() for name in headers}
        parsed = json.loads(body) if isinstance(body, (str, bytes)) else body
        if status >= 400:
            return {"error": parsed["error"]["code"]}
        return {"task_id": parsed.get("task_id"), "status": parsed.get("status")}


my_client = _MyClientCode()


@dataclass
class _Replay:
    bodies: Iterator[dict[str, Any]]
    seen: list[dict[str, Any]] = field(default_factory=list)


def replay(timeline: Sequence[Mapping[str, Any]]) -> _Replay:
    """A fake transport that answers each poll with the next body of ``timeline``."""
    return _Replay(iter([dict(body) for body in timeline]))


def poll_until_done(transport: _Replay) -> SimpleNamespace:
    """Your poller: polls until a terminal status and returns the last answer."""
    terminal = {"completed", "failed"}
    for body in transport.bodies:
        transport.seen.append(body)
        if body["status"] in terminal:
            return SimpleNamespace(**body)
    raise AssertionError("the timeline ended without a terminal status")


#: every name an example may use without defining it (besides fixtures and SNIPPET_VALUES)
PLACEHOLDERS: dict[str, Any] = {
    "my_sdk": my_sdk,
    "my_app": my_app,
    "my_client": my_client,
    "my_validate": my_validate,
    "MyClient": MyClient,
    "MyAsyncClient": MyAsyncClient,
    "replay": replay,
    "poll_until_done": poll_until_done,
}
