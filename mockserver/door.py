"""uvicorn with the door's bounds: the live doors (``serve``, ``LiveServer``) run this.

uvicorn's httptools protocol buffers a request head without limit (a 256 MB header was read
whole, and a 96 MB one stalled every other client while it was parsed). The protocol here
counts the bytes of each head as they arrive and, past :attr:`Service.head_limit`, answers the
face's ``headers_too_large`` and closes the connection without reading on. The count and size of
the headers of a complete head are checked by :meth:`Service.handle`, for every door alike.

The same protocol writes each answer to the socket in one call: uvicorn writes a response's head
when the app starts it and its body when the app sends it, and every answer of the service is
both at once, so the head is held for the bytes that follow it (:class:`_OneWrite`).

Where httptools is missing, uvicorn's h11 protocol is bounded by its own
``h11_max_incomplete_event_size`` (h11 answers a plain-text 400 then: the face's error is for
the stack that has the hook).
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any, cast

from mockserver.http import ApiRequest, ApiResponse
from mockserver.service import Service

__all__ = ["LINGER_SECONDS", "uvicorn_options"]

#: how long a connection whose head was refused keeps draining the client's bytes
LINGER_SECONDS = 2.0


def _raw_response(answer: ApiResponse) -> bytes:
    reason = {431: b"Request Header Fields Too Large"}.get(answer.status, b"Error")
    lines = [b"HTTP/1.1 %d %s" % (answer.status, reason)]
    lines.extend(f"{k}: {v}".encode("latin-1") for k, v in answer.headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + answer.body


class _OneWrite:
    """The transport a request's cycle writes to: a response's head is held and written in the
    same call as the bytes that follow it, so an answer costs the server one send, not two.

    Interim answers (``100 Continue``) go at once; whatever is held goes first when the response
    completes (a ``HEAD`` answer has no body write), when the transport closes, or with the next
    write, so the bytes reach the socket in the order they were written.
    """

    __slots__ = ("head_next", "held", "transport")

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.held: bytes | None = None
        #: the next write opens a response (its status line and headers)
        self.head_next = True

    def write(self, data: bytes) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held + data)
        elif self.head_next and not data.startswith(b"HTTP/1.1 1"):
            self.head_next = False
            self.held = data
        else:
            self.transport.write(data)

    def response_complete(self) -> None:
        """The response ended: send what is held; the next write opens the next response."""
        self.head_next = True
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held)

    def close(self) -> None:
        self.response_complete()
        self.transport.close()

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _guarded_httptools(service: Service) -> type[Any]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing a request head past the service's bound."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_bytes = 0
            self._tail = b""
            self._in_head = True
            self._refused = False
            self._head_limit = service.head_limit

        def data_received(self, data: bytes) -> None:
            if self._refused:  # lingering after a refusal: what the client still sends is dropped
                return
            if self._in_head:
                # Only the head counts: a chunk may also carry the start of the body.
                seen = self._tail + data
                end = seen.find(b"\r\n\r\n")
                self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
                self._tail = seen[-3:]
                over = self._head_bytes - self._head_limit
                if over > 0:
                    if len(data) > over:  # parse up to the bound: the path names the face
                        super().data_received(data[: len(data) - over])
                    if not self.transport.is_closing():
                        self._refuse_head()
                    return
            super().data_received(data)

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._one_write = _OneWrite(transport)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()
            if self.cycle is not None:
                # the cycle writes, closes and asks is_closing() through it (a stand-in, not a subclass)
                self.cycle.transport = cast("asyncio.Transport", self._one_write)

        def on_response_complete(self) -> None:
            self._one_write.response_complete()
            super().on_response_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True
            self._head_bytes = 0
            self._tail = b""

        def _refuse_head(self) -> None:
            url = (getattr(self, "url", b"") or b"")[:2048].decode("latin-1")
            path = url.split("?", 1)[0] if url.startswith("/") else "/"
            headers = self.headers or []
            request = ApiRequest(
                method="GET",
                scheme=self.scheme or "http",
                host=next((v.decode("latin-1") for k, v in headers if k == b"host"), ""),
                path=path,
                headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers),
                client=self.client[0] if self.client else None,
            )
            answer = service.refuse_head(request, fields=len(headers), size=self._head_bytes, partial=True)
            self._in_head = False
            self._refused = True
            self.transport.write(_raw_response(answer))
            # A lingering close: closing a socket with unread input makes the kernel send a
            # reset, which can destroy the answer before the client reads it. Half-close, drop
            # what still arrives, and close for good shortly after (or when the client does).
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)

    return GuardedHttpToolsProtocol


def uvicorn_options(service: Service) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments that bound request heads for ``service``."""
    options: dict[str, Any] = {"h11_max_incomplete_event_size": service.head_limit}
    # Looked up, not imported: uvicorn imports it (with its protocol module) when it is there.
    if importlib.util.find_spec("httptools") is None:  # pragma: no cover - a server dependency
        options["http"] = "h11"
    else:
        options["http"] = _guarded_httptools(service)
    return options
