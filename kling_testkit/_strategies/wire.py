"""What a generic client needs to talk to a face: its operations by verb and kind, and the
credentials its contract documents (``index.json`` ``auth``), read from the contract only."""

from __future__ import annotations

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
