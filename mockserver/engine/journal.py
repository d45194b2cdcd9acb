"""The journal: every exchange the fake answered, with the contract warnings it raised.

It is bounded (oldest entries are dropped and counted) so a long-running shared server cannot
grow without limit, and it never returns a secret: what it hands out (entries, exports) has
every credential replaced by a fingerprint, by one rule (:func:`is_credential_name` for
header, query and body key names; any configured secret or JWT wherever it appears), and long
strings (base64 images, huge header values) replaced by a marker with their length and digest.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

import orjson

#: Strings longer than this are stored as a marker; keeps a 10 MB image out of memory twice.
MAX_STRING = 1024
#: Header names always redacted (the rule below catches these too; kept for readers of the list)
SECRET_HEADERS = frozenset({"authorization", "x-mock-admin-token", "cookie", "x-api-key"})
#: The redaction rule for names (headers, query parameters, JSON body keys, case-insensitive):
#: a name that says it carries a credential. ``Proxy-Authorization``, ``Api-Key``,
#: ``X-Goog-Api-Key``, ``X-Auth-Token``, ``api_key``, ``access_token``, ``client_secret``,
#: ``password``, ``Set-Cookie``, ``X-Amz-Signature``, ``session`` all match; ``keep-alive``,
#: ``external_task_id`` and the contract's request fields do not.
CREDENTIAL_NAME = re.compile(
    r"auth|token|secret|passw|pwd|cookie|session|credential|signature|jwt|bearer"
    r"|apikey|api[-_.]key|access[-_.]key|private[-_.]key|(?:^|[-_.])key(?:$|[-_.])",
    re.IGNORECASE,
)
#: Any JSON Web Token, wherever it appears (a signed token is a credential by itself).
JWT_VALUE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class ContractWarning:
    """Something the real service would accept silently but a client should know about.

    >>> ContractWarning(rule="unknown_field", param="negative_promt", message="dropped").param
    'negative_promt'
    """

    rule: str
    param: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "param": self.param, "message": self.message}


def _digest(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]


@functools.lru_cache(maxsize=256)
def fingerprint(secret: str) -> str:
    """A stable, non-reversible stand-in for a secret (first 8 hex of SHA-256)."""
    return _digest(secret)


def _redact(value: str) -> str:
    scheme, _, _ = value.partition(" ")
    shown = f"{scheme} " if scheme.lower() == "bearer" else ""
    return f"{shown}<redacted {fingerprint(value)}>"


@functools.lru_cache(maxsize=1024)
def is_credential_name(name: str) -> bool:
    """Whether a header, query parameter or body key name says it carries a credential.

    >>> [is_credential_name(n) for n in ("Proxy-Authorization", "X-Goog-Api-Key", "api_key", "keep-alive")]
    [True, True, True, False]
    """
    return name.lower() in SECRET_HEADERS or CREDENTIAL_NAME.search(name) is not None


@functools.lru_cache(maxsize=32)
def _secret_pattern(secrets: frozenset[str]) -> re.Pattern[str]:
    """One regex for every configured secret (longest first) and every JWT: one search a value."""
    alternatives = [re.escape(secret) for secret in sorted(secrets, key=len, reverse=True)]
    return re.compile("|".join([*alternatives, JWT_VALUE.pattern]))


#: every word :data:`CREDENTIAL_NAME` looks for, unanchored, and a JWT's start, searched in a
#: lower-cased body (a superset: a hint, not the rule)
_NAME_HINT = re.compile(b"auth|token|secret|passw|pwd|cookie|session|credential|signature|jwt|bearer|key|eyj")


def _may_hold(value: str, secrets: frozenset[str]) -> bool:
    """A cheap prefilter (substring tests in C) before the regex: a JWT or a secret could be in it."""
    return "eyJ" in value or any(secret in value for secret in secrets)


def _raw_may_need(raw: bytes, secrets: frozenset[str]) -> bool:
    """Whether a raw JSON body could hold anything to redact (a credential-like name, a secret,
    a JWT): bodies without a hit are handed out as parsed, with no walk."""
    return _NAME_HINT.search(raw.lower()) is not None or any(
        secret.encode("utf-8", "surrogatepass") in raw for secret in secrets
    )


def redact_text(value: str, secrets: frozenset[str] = frozenset()) -> str:
    """``value`` with every configured secret and every JWT in it replaced by a fingerprint.

    >>> redact_text("key=ak-secret-1 and more", frozenset({"ak-secret-1"}))[:14]
    'key=<redacted '
    """
    return _secret_pattern(secrets).sub(lambda m: f"<redacted {fingerprint(m.group(0))}>", value)


def redact_headers(
    headers: Iterable[tuple[str, str]], secrets: frozenset[str] = frozenset()
) -> tuple[tuple[str, str], ...]:
    """Headers with credentials replaced by a fingerprint: every header whose name says it
    carries one (:data:`CREDENTIAL_NAME`), and any value holding a configured secret or a JWT.

    >>> [v[:10] for _, v in redact_headers([("x-goog-api-key", "k1"), ("accept", "ak-k2")], frozenset({"ak-k2"}))]
    ['<redacted ', '<redacted ']
    """
    pattern = _secret_pattern(secrets)
    out = []
    for name, value in headers:
        if is_credential_name(name):
            value = _redact(value)
        elif _may_hold(value, secrets) and pattern.search(value) is not None:
            value = redact_text(value, secrets)
        out.append((name, value))
    return tuple(out)


def redact_query(query: str, secrets: frozenset[str] = frozenset()) -> str:
    """A query string with the values of credential-named parameters (and configured secrets
    and JWTs anywhere) replaced by a fingerprint; other parameters as they were sent.

    >>> redact_query("api_key=sk-1&pageNum=2").replace(fingerprint("sk-1"), "sha256:...")
    'api_key=%3Credacted%20sha256%3A...%3E&pageNum=2'
    """
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    named = any(is_credential_name(k) for k, _ in pairs)
    # (the decoded values too: a secret may arrive percent-encoded)
    if not named and not _may_hold(query, secrets) and not any(_may_hold(v, secrets) for _, v in pairs):
        return query
    parts = []
    for name, value in pairs:
        shown = f"<redacted {fingerprint(value)}>" if is_credential_name(name) else redact_text(value, secrets)
        parts.append(f"{quote(name, safe='')}={quote(shown, safe='')}")
    return "&".join(parts)


def redact_json(value: Any, secrets: frozenset[str] = frozenset()) -> Any:
    """A JSON value with credential-named members, configured secrets and JWTs redacted."""
    pattern = _secret_pattern(secrets)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return redact_text(item, secrets) if _may_hold(item, secrets) and pattern.search(item) else item
        if isinstance(item, Mapping):
            return {
                (redact_text(k, secrets) if _may_hold(k, secrets) else k): (
                    f"<redacted {fingerprint(orjson.dumps(v).decode())}>" if is_credential_name(k) else walk(v)
                )
                for k, v in item.items()
            }
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def _redacted_body(raw: bytes, secrets: frozenset[str]) -> Any:
    """A JSON body as stored (its bytes) parsed and redacted; walked only when it could need it."""
    value = orjson.loads(raw)
    if not _raw_may_need(raw, secrets):
        return value
    return redact_json(value, secrets)


#: Markers already computed while one request is answered (id -> (string, marker)): the task
#: store and the journal both shorten the same 10 MB image, and hashing it once is enough. The
#: string is kept in the entry, so its id cannot be reused while the scope lasts.
_MARKERS: ContextVar[dict[int, tuple[str, str]] | None] = ContextVar("kling_markers", default=None)


@contextlib.contextmanager
def marker_scope() -> Iterator[None]:
    """Share long-string markers between everything that shortens values in this block."""
    token = _MARKERS.set({})
    try:
        yield
    finally:
        _MARKERS.reset(token)


def _marker(value: str) -> str:
    memo = _MARKERS.get()
    if memo is not None:
        hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
    # Not the cached fingerprint: its cache would keep the last 256 images (10 MB each) alive.
    marker = f"<{len(value)} chars {_digest(value)}>"
    if memo is not None:
        memo[id(value)] = (value, marker)
    return marker


def shorten(value: Any) -> Any:
    """A copy of a JSON value with long strings replaced by ``<N chars sha256:...>`` markers."""
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            return _marker(value)
        return value
    if isinstance(value, Mapping):
        return {k: shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One exchange. ``request_body``/``response_body`` are JSON values (or None/text)."""

    seq: int
    time: float
    operation: str | None
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: Any
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body: Any
    task_id: str | None = None
    warnings: tuple[ContractWarning, ...] = ()
    fault: str | None = None
    #: the face that answered (``gateway``, ``official``...), None for admin and 404s
    face: str | None = None
    #: for a refused request: the rule id it broke and the field it blames
    rule: str | None = None
    param: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON Lines record (one exchange per line) used by journal exports and checks."""
        return exchange_record(
            seq=self.seq,
            timestamp=self.time,
            operation=self.operation,
            task_id=self.task_id,
            method=self.method,
            url=self.url,
            request_headers=self.request_headers,
            request_body=self.request_body,
            status=self.status,
            response_headers=self.response_headers,
            response_body=self.response_body,
            warnings=self.warnings,
            fault=self.fault,
            face=self.face,
            rule=self.rule,
            param=self.param,
        )


def exchange_record(
    *,
    seq: int | None,
    timestamp: float | None,
    operation: str | None,
    task_id: str | None,
    method: str,
    url: str,
    request_headers: Iterable[tuple[str, str]],
    request_body: Any,
    status: int,
    response_headers: Iterable[tuple[str, str]],
    response_body: Any,
    warnings: Iterable[ContractWarning] = (),
    fault: str | None = None,
    face: str | None = None,
    rule: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """The one layout of a recorded exchange (the journal's JSON Lines record; recordings too).

    ``refusal`` names the rule a refused request broke and the field it blames, so checks read
    it instead of parsing the error message.
    """
    return {
        "seq": seq,
        "timestamp": timestamp,
        "face": face,
        "operation": operation,
        "task_id": task_id,
        "request": {"method": method, "url": url, "headers": [list(h) for h in request_headers], "body": request_body},
        "response": {"status": status, "headers": [list(h) for h in response_headers], "body": response_body},
        "warnings": [w.to_json() for w in warnings],
        "fault": fault,
        "refusal": None if rule is None else {"rule": rule, "param": param},
    }


#: What the hot path stores per exchange: a plain tuple is several times cheaper to build than
#: a JournalEntry, and redaction and URL assembly wait until someone reads the journal.
#: (time, operation, method, scheme, host, path, query, raw request headers, request body,
#:  status, response headers, response body, task_id, warnings, fault, face, rule, param); a
#:  JSON body is stored as its UTF-8 bytes and parsed on read. The seq is the entry's place.
RawEntry = tuple[Any, ...]


def _materialize(seq: int, raw: RawEntry, secrets: frozenset[str]) -> JournalEntry:
    time, operation, method, scheme, host, path, query, headers, request_body = raw[:9]
    status, response_headers, response_body, task_id, warnings, fault, face, rule, param = raw[9:]
    query = redact_query(query, secrets)
    url = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
    # JSON bodies are stored as their wire bytes (see Service._record); text and None as is.
    if isinstance(request_body, bytes):
        request_body = _redacted_body(request_body, secrets)
    elif isinstance(request_body, str):
        request_body = redact_text(request_body, secrets)
    if isinstance(response_body, bytes):
        response_body = orjson.loads(response_body)
    if warnings and any(_may_hold(f"{w.param} {w.message}", secrets) for w in warnings):
        # a warning names what was sent: an unknown field may be named like a secret
        warnings = tuple(
            ContractWarning(
                w.rule, None if w.param is None else redact_text(w.param, secrets), redact_text(w.message, secrets)
            )
            for w in warnings
        )
    return JournalEntry(
        seq, time, operation, method, url, redact_headers(headers, secrets), request_body, status,
        response_headers, response_body, task_id, warnings, fault, face, rule, param,
    )  # fmt: skip


class Journal:
    """A bounded, thread-safe log of exchanges, read as :class:`JournalEntry` values.

    >>> journal = Journal(limit=2)
    >>> journal.limit, journal.dropped
    (2, 0)
    """

    def __init__(self, limit: int = 10_000) -> None:
        if limit < 1:
            raise ValueError("journal limit must be >= 1")
        self.limit = limit
        self._entries: deque[RawEntry] = deque(maxlen=limit)
        self._seq = 0
        self.dropped = 0
        self._lock = threading.Lock()
        #: values redacted wherever they appear when the journal is read (configured keys,
        #: secret keys, the admin token); only ever added to, so a reconfigured key stays hidden
        self.secrets: frozenset[str] = frozenset()

    def record(self, *fields: Any) -> None:
        """Add one exchange (the :data:`RawEntry` fields; its seq is counted); the oldest entry
        is dropped, and counted, when the journal is full. Secrets are redacted when read."""
        with self._lock:
            # The call's own argument tuple is the entry: an entry's seq is its place (the
            # entries are consecutive), counted when the journal is read, not stored.
            self._seq += 1
            if len(self._entries) == self.limit:
                self.dropped += 1
            self._entries.append(fields)

    def entries(self, *, operation: str | None = None, task_id: str | None = None) -> list[JournalEntry]:
        """The kept exchanges, oldest first, optionally for one operation and/or task."""
        with self._lock:
            items = list(self._entries)
            first = self._seq - len(items) + 1
        secrets = self.secrets
        return [
            _materialize(first + i, raw, secrets)
            for i, raw in enumerate(items)
            if (operation is None or raw[1] == operation) and (task_id is None or raw[12] == task_id)
        ]

    def warnings(self) -> list[tuple[JournalEntry, ContractWarning]]:
        """Every contract warning, with the exchange that raised it."""
        return [(e, w) for e in self.entries() for w in e.warnings]

    def add_secrets(self, values: Iterable[str]) -> None:
        """Redact these values wherever they appear in what the journal returns."""
        # Very short values would redact ordinary words; a key shorter than 6 characters is
        # caught by its header's or parameter's name only.
        self.secrets = self.secrets | {v for v in values if isinstance(v, str) and len(v) >= 6 and v != "*"}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._seq = 0
            self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)
