"""What a generic client needs to talk to a face: its operations by verb and kind, and the
credentials its contract documents (``index.json`` ``auth``), read from the contract only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from mockserver.contract import Contract, Operation

#: how long a signed token lives (public clients sign for 1800 s)
TOKEN_SECONDS = 1800
#: how far before "now" a token starts to be valid (public clients use 5 s)
NOT_BEFORE_SECONDS = 5


def operation_for(contract: Contract, verb: str, kind: str | None = None) -> Operation:
    """The face's operation for a face-neutral ``verb`` (``task.create``, ``task.get``...) and
    request ``kind``: the one whose path serves that kind, else one that serves every kind.

    >>> from mockserver.contract import load_contract
    >>> operation_for(load_contract("official"), "task.get", "image2video").path
    '/v1/videos/image2video/{task_id}'
    """
    found = [op for op in contract.operations.values() if op.verb == verb]
    for op in found:
        if kind is not None and op.kind == kind:
            return op
    for op in found:
        if op.kind is None:
            return op
    raise LookupError(f"face {contract.face!r} has no {verb} operation for {kind!r} requests")


def auth_headers(contract: Contract, now: float) -> tuple[tuple[str, str], ...]:
    """Credentials the contract documents as its default, as request headers: a JWT signed with
    the default access/secret pair (valid from ``now`` - 5 s to ``now`` + 1800 s, as public
    clients sign) where the face uses signed tokens, else the first default API key.

    >>> from mockserver.contract import load_contract
    >>> auth_headers(load_contract("gateway"), 0.0)
    (('Authorization', 'Bearer sk-test'),)
    """
    auth: Any = contract.index["auth"]
    header = str(auth.get("header", "Authorization"))
    scheme = str(auth.get("scheme", "bearer")).title()
    first = auth["default_keys"][0]
    if "jwt" in auth and isinstance(first, dict):
        claims = {"iss": first["access_key"], "exp": int(now) + TOKEN_SECONDS, "nbf": int(now) - NOT_BEFORE_SECONDS}
        token = jwt.encode(claims, first["secret_key"], algorithm=str(auth["jwt"].get("alg", "HS256")))
        return ((header, f"{scheme} {token}"),)
    return ((header, f"{scheme} {first}"),)


MULTIPART = "multipart/form-data"
JSON = "application/json"
#: the boundary the kit's forms use (RFC 2046: 1-70 characters, none of them in a part)
BOUNDARY = "kling-testkit-form-boundary-7d3f"


@dataclass(frozen=True, slots=True, repr=False)
class EncodedBody:
    """A request body exactly as it goes on the wire: the ``Content-Type`` to send and the bytes.

    The multipart cases of :func:`~kling_testkit.strategies.invalid_requests` (a form without
    a boundary, cut short, with a part too large...) are bodies of this kind: no JSON object
    or httpx ``files=`` mapping can hold them.

    >>> body = encode_form([("prompt", "a fox")])
    >>> body.content_type
    'multipart/form-data; boundary=kling-testkit-form-boundary-7d3f'
    >>> body.data.startswith(b"--kling-testkit-form-boundary-7d3f\\r\\n")
    True
    """

    content_type: str
    data: bytes

    def __repr__(self) -> str:
        # a form may hold a 20 MiB file: show its size and first bytes, not all of it
        return f"EncodedBody({self.content_type!r}, <{len(self.data)} bytes: {self.data[:60]!r}...>)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # noqa: ARG002 - IPython's protocol
        # Hypothesis prints a failing example with this protocol (fields otherwise, in full)
        printer.text(repr(self))


def form_parts(
    fields: Sequence[tuple[str, str]], files: Sequence[tuple[str, str, bytes, str]] = (), boundary: str = BOUNDARY
) -> list[bytes]:
    """Each part of a ``multipart/form-data`` body (RFC 7578) with its leading boundary line,
    text fields first, then files (``(name, filename, bytes, media type)``), as httpx and the
    OpenAI SDK order them."""
    out = []
    for name, value in fields:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        out.append(head.encode() + value.encode() + b"\r\n")
    for name, filename, data, media_type in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {media_type}\r\n\r\n"
        )
        out.append(head.encode() + data + b"\r\n")
    return out


def encode_form(
    fields: Sequence[tuple[str, str]], files: Sequence[tuple[str, str, bytes, str]] = (), boundary: str = BOUNDARY
) -> EncodedBody:
    """A ``multipart/form-data`` body of text ``fields`` and ``files`` (see :func:`form_parts`)."""
    data = b"".join(form_parts(fields, files, boundary)) + f"--{boundary}--\r\n".encode()
    return EncodedBody(f"{MULTIPART}; boundary={boundary}", data)
