"""httpx2 still routes every request through the hook ``kling_testkit/_httpx2.py`` wraps.

Patched mode wraps ``Client._transport_for_url`` and ``AsyncClient._transport_for_url`` (private
to httpx2, as respx wraps httpx's). Were a release to rename the hook or stop calling it, patched
mode would silently stop serving httpx2 clients; these tests fail first, naming the adapter.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import httpx2
import pytest

ADAPTER = "kling_testkit/_httpx2.py wraps this hook; adapt it to the new httpx2 release"


@pytest.mark.parametrize("client_class", [httpx2.Client, httpx2.AsyncClient])
def test_the_hook_exists_with_the_signature_the_adapter_calls(client_class: type[Any]) -> None:
    hook = getattr(client_class, "_transport_for_url", None)
    assert hook is not None, f"{client_class.__name__}._transport_for_url is gone: {ADAPTER}"
    assert list(inspect.signature(hook).parameters) == ["self", "url"], ADAPTER


def test_every_sync_and_async_request_asks_the_hook_for_its_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    answer = httpx2.MockTransport(lambda request: httpx2.Response(204))

    def hook(self: Any, url: httpx2.URL) -> httpx2.MockTransport:
        asked.append(str(url))
        return answer

    monkeypatch.setattr(httpx2.Client, "_transport_for_url", hook)
    monkeypatch.setattr(httpx2.AsyncClient, "_transport_for_url", hook)
    with httpx2.Client() as client:
        assert client.get("https://sync.test/").status_code == 204, ADAPTER

    async def send() -> int:
        async with httpx2.AsyncClient() as client:
            status: int = (await client.get("https://async.test/")).status_code
            return status

    assert asyncio.run(send()) == 204, ADAPTER
    assert asked == ["https://sync.test/", "https://async.test/"], ADAPTER
