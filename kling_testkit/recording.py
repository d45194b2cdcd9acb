"""Recorded traffic: read JSON Lines and HAR files into :class:`Exchange` values; write journals.

The record format is the fake's journal record (``mockserver.JournalEntry.to_json()``), one
exchange per line::

    {"seq": 1, "timestamp": 1767225600.0, "face": "gateway", "operation": "video_generations.create",
     "task_id": "task_...",
     "request": {"method": "POST", "url": "https://api.modelstream.ai/v1/video/generations",
                 "headers": [["content-type", "application/json"]], "body": {...}},
     "response": {"status": 200, "headers": [...], "body": {...}},
     "warnings": [], "fault": null, "refusal": null}

Only ``request.method``, ``request.url`` and ``response.status`` are required; headers may be a
list of pairs or an object; a body may be a JSON value or JSON text; ``timestamp`` may be Unix
seconds or an ISO 8601 string. ``face`` (the wire dialect that answered), ``fault`` (an injected
fault's name) and ``refusal`` (``{"rule", "param"}`` of a refused request) are what the fake
knew; the checks use them when present and work them out from the URL and the answer otherwise.
So a client suite can write its own recordings without the fake, and the fake (in-process or
live) writes its journal with :func:`write_journal` or serves it at ``GET /__mock__/journal.jsonl``.

Bad input raises :class:`RecordingError` naming the file and the line (or HAR entry): a
truncated last line, a line that is not JSON, an empty file, a HAR body that is binary.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from kling_testkit.errors import KlingTestkitError
from mockserver import JournalEntry
from mockserver.engine.journal import exchange_record, redact_headers, shorten
from mockserver.http import dump_json, find_header

__all__ = [
    "Exchange",
    "RecordingError",
    "iter_recording",
    "read_recording",
    "write_exchanges",
    "write_journal",
]

Headers = tuple[tuple[str, str], ...]


class RecordingError(KlingTestkitError):
    """A recording cannot be read; ``str()`` names the file and the line or HAR entry.

    >>> str(RecordingError("run.jsonl", "truncated JSON record", line=3))
    'run.jsonl:3: truncated JSON record'
    """

    def __init__(self, file: str | Path, message: str, *, line: int | None = None, entry: int | None = None) -> None:
        self.file = str(file)
        self.line = line
        self.entry = entry
        self.reason = message
        where = self.file
        if line is not None:
            where += f":{line}"
        elif entry is not None:
            where += f": HAR entry {entry}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its response, as recorded or as just seen.

    Bodies are JSON values when the wire carried JSON, else text (``"<N bytes video/mp4>"``
    markers stand for binary downloads). ``source`` locates the record (``file.jsonl:12``).

    >>> ex = Exchange.from_record({"request": {"method": "GET", "url": "http://h/v1/video/generations/t"},
    ...                            "response": {"status": 200, "body": "{\\"status\\": \\"queued\\"}"}})
    >>> ex.path, ex.response_body["status"]
    ('/v1/video/generations/t', 'queued')
    """

    method: str
    url: str
    status: int
    request_headers: Headers = ()
    request_body: Any = None
    response_headers: Headers = ()
    response_body: Any = None
    timestamp: float | None = None
    operation: str | None = None
    task_id: str | None = None
    source: str | None = None
    #: the face that answered (``gateway``, ``official``...), when the recording says so
    face: str | None = None
    #: the injected fault behind the answer (the fake's journal records it), if any
    fault: str | None = None
    #: the rule a refused request broke and the field it blames (the fake's journal records them)
    rule: str | None = None
    param: str | None = None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    def request_header(self, name: str) -> str | None:
        """First value of a request header (case-insensitive)."""
        return find_header(self.request_headers, name)

    def response_header(self, name: str) -> str | None:
        """First value of a response header (case-insensitive)."""
        return find_header(self.response_headers, name)

    @classmethod
    def from_record(cls, record: Any, *, source: str | None = None) -> Exchange:
        """Parse one JSON Lines record (journal or hand-written format); ``ValueError`` names the problem."""
        if not isinstance(record, Mapping):
            raise ValueError(f"a record must be a JSON object, got {type(record).__name__}")
        request = record.get("request")
        response = record.get("response")
        if not isinstance(request, Mapping) or not isinstance(response, Mapping):
            raise ValueError("a record needs 'request' and 'response' objects")
        method, url, status = request.get("method"), request.get("url"), response.get("status")
        if not isinstance(method, str) or not method:
            raise ValueError("request.method must be a non-empty string")
        if not isinstance(url, str) or not url:
            raise ValueError("request.url must be a non-empty string")
        if isinstance(status, bool) or not isinstance(status, int):
            raise ValueError(f"response.status must be an integer, got {status!r}")
        request_headers = _headers(request.get("headers"), "request.headers")
        response_headers = _headers(response.get("headers"), "response.headers")
        operation = record.get("operation")
        task_id = record.get("task_id")
        refusal = record.get("refusal")
        if refusal is not None and not (isinstance(refusal, Mapping) and isinstance(refusal.get("rule"), str)):
            raise ValueError("refusal must be null or an object with a string 'rule'")
        return cls(
            method=method.upper(),
            url=url,
            status=status,
            request_headers=request_headers,
            request_body=_body(request.get("body"), request_headers),
            response_headers=response_headers,
            response_body=_body(response.get("body"), response_headers),
            timestamp=_timestamp(record.get("timestamp")),
            operation=operation if isinstance(operation, str) else None,
            task_id=task_id if isinstance(task_id, str) else None,
            source=source,
            face=_text(record.get("face")),
            fault=_text(record.get("fault")),
            rule=refusal["rule"] if refusal is not None else None,
            param=_text(refusal.get("param")) if refusal is not None else None,
        )

    @classmethod
    def from_journal_entry(cls, entry: JournalEntry) -> Exchange:
        """The exchange a fake's journal entry records (in-process: no file needed).

        >>> from mockserver import Engine, Service, VirtualClock
        >>> service = Service(Engine(clock=VirtualClock()))
        >>> _ = service.handle_simple("GET", "/v1/video/generations/task_x")
        >>> Exchange.from_journal_entry(service.engine.journal.entries()[0]).status
        401
        """
        return cls.from_record(entry.to_json(), source=f"journal#{entry.seq}")

    @classmethod
    def from_httpx(cls, response: Any, *, timestamp: float | None = None, source: str | None = None) -> Exchange:
        """An exchange from an ``httpx.Response`` (its ``.request`` included), secrets redacted.

        >>> import httpx
        >>> r = httpx.Response(200, json={"status": "queued"},
        ...                    request=httpx.Request("GET", "https://api.modelstream.ai/v1/video/generations/t"))
        >>> Exchange.from_httpx(r).response_body
        {'status': 'queued'}
        """
        request = response.request
        request_headers = redact_headers(tuple(request.headers.multi_items()))
        response_headers = tuple(response.headers.multi_items())
        return cls(
            method=request.method,
            url=str(request.url),
            status=response.status_code,
            request_headers=request_headers,
            request_body=shorten(_raw_body(request.content, request_headers)),
            response_headers=response_headers,
            response_body=_raw_body(response.content, response_headers),
            timestamp=timestamp,
            source=source,
        )

    def to_record(self, seq: int | None = None) -> dict[str, Any]:
        """The JSON Lines record of this exchange (the journal's format)."""
        return exchange_record(
            seq=seq,
            timestamp=self.timestamp,
            operation=self.operation,
            task_id=self.task_id,
            method=self.method,
            url=self.url,
            request_headers=self.request_headers,
            request_body=self.request_body,
            status=self.status,
            response_headers=self.response_headers,
            response_body=self.response_body,
            fault=self.fault,
            face=self.face,
            rule=self.rule,
            param=self.param,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _headers(raw: Any, what: str) -> Headers:
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        return tuple((str(k), str(v)) for k, v in raw.items())
    if isinstance(raw, list):
        out = []
        for item in raw:
            if isinstance(item, Mapping) and "name" in item:  # HAR style
                out.append((str(item["name"]), str(item.get("value", ""))))
            elif isinstance(item, list) and len(item) == 2:
                out.append((str(item[0]), str(item[1])))
            else:
                raise ValueError(f"{what}: each header must be [name, value] or {{name, value}}")
        return tuple(out)
    raise ValueError(f"{what} must be an object or a list of [name, value] pairs")


def _is_json_type(headers: Headers) -> bool:
    content_type = (find_header(headers, "content-type") or "").split(";")[0].strip().lower()
    return not content_type or content_type == "application/json" or content_type.endswith("+json")


def _body(raw: Any, headers: Headers) -> Any:
    # Bodies recorded as JSON text are parsed; JSON values (the journal's way) are kept.
    if isinstance(raw, str) and _is_json_type(headers) and raw.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _raw_body(content: bytes, headers: Headers) -> Any:
    if not content:
        return None
    if _is_json_type(headers):
        try:
            return json.loads(content)
        except ValueError:
            pass
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        kind = (find_header(headers, "content-type") or "").split(";")[0].strip()
        return f"<{len(content)} bytes {kind}>".replace(" >", ">")


def _timestamp(raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise ValueError("timestamp must be Unix seconds or an ISO 8601 string")
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"timestamp {raw[:40]!r} is not ISO 8601") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        return parsed.timestamp()
    raise ValueError("timestamp must be Unix seconds or an ISO 8601 string")


# -- reading ---------------------------------------------------------------------------------


def _is_har(path: Path, head: bytes) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".har":
        return True
    if suffix in (".jsonl", ".ndjson"):
        return False
    # No telling extension: a HAR is one JSON document whose first key is usually "log".
    return head.lstrip()[:1] == b"{" and b'"log"' in head[:4096] and b'"entries"' in head


def iter_recording(path: str | Path) -> Iterator[Exchange]:
    """Yield the exchanges of a JSON Lines or HAR file, in order (JSON Lines is streamed).

    The format is chosen by extension (``.har``, ``.jsonl``/``.ndjson``), else by content.
    Raises :class:`RecordingError` for anything unreadable, naming the file and line.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    ...     _ = f.write('{"request": {"method": "GET", "url": "http://h/x"}, "response": {"status": 404}}\\n')
    >>> [e.status for e in iter_recording(f.name)]
    [404]
    >>> os.unlink(f.name)
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise RecordingError(path, f"cannot open: {exc.strerror or exc}") from None
    with handle:
        head = handle.read(65536)
        if not head.strip():
            raise RecordingError(path, "empty file: no exchanges recorded")
        handle.seek(0)
        if _is_har(path, head):
            yield from _read_har(path, handle.read())
        else:
            yield from _read_jsonl(path, handle)


def read_recording(path: str | Path) -> list[Exchange]:
    """All exchanges of a recording (see :func:`iter_recording`)."""
    return list(iter_recording(path))


def _read_jsonl(path: Path, handle: IO[bytes]) -> Iterator[Exchange]:
    count = 0
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RecordingError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})", line=number) from None
        try:
            record = json.loads(text)
        except ValueError as exc:
            if not raw.endswith(b"\n") and _is_last(handle):
                raise RecordingError(
                    path, "truncated JSON record: the file ends in the middle of a line", line=number
                ) from None
            raise RecordingError(path, f"not a JSON record ({exc})", line=number) from None
        try:
            yield Exchange.from_record(record, source=f"{path.name}:{number}")
        except ValueError as exc:
            raise RecordingError(path, str(exc), line=number) from None
        count += 1
    if count == 0:
        raise RecordingError(path, "empty file: no exchanges recorded")


def _is_last(handle: IO[bytes]) -> bool:
    position = handle.tell()
    rest = handle.read(1)
    handle.seek(position)
    return not rest


def _har_text(content: Any, where: str, entry: int, path: Path) -> tuple[Any, str]:
    """(body text or None, mime type) of a HAR postData/content object."""
    if not isinstance(content, Mapping):
        return None, ""
    mime = str(content.get("mimeType") or "")
    text = content.get("text")
    if text is None:
        return None, mime
    if not isinstance(text, str):
        raise RecordingError(path, f"{where}.text must be a string", entry=entry)
    if content.get("encoding") == "base64":
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise RecordingError(path, f"{where}: encoding is base64 but the text is not base64", entry=entry) from None
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError:
            kind = mime.split(";")[0].strip().lower()
            if kind.startswith(("video/", "image/", "audio/")) or kind == "application/octet-stream":
                return f"<{len(data)} bytes {kind}>", mime
            raise RecordingError(
                path,
                f"{where} is binary ({len(data)} bytes, mimeType {mime or 'unset'!r}); "
                "the checks need JSON text bodies: export the HAR with text content",
                entry=entry,
            ) from None
        if "\x00" in decoded:
            raise RecordingError(path, f"{where} is binary (contains NUL bytes)", entry=entry)
        return decoded, mime
    return text, mime


def _read_har(path: Path, data: bytes) -> Iterator[Exchange]:
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RecordingError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise RecordingError(path, f"not a HAR file: invalid JSON ({exc})") from None
    log = document.get("log") if isinstance(document, Mapping) else None
    entries = log.get("entries") if isinstance(log, Mapping) else None
    if not isinstance(entries, list):
        raise RecordingError(path, "not a HAR file: no log.entries list")
    if not entries:
        raise RecordingError(path, "empty HAR: log.entries holds no exchanges")
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            raise RecordingError(path, "entry must be an object", entry=number)
        request = entry.get("request")
        response = entry.get("response")
        if not isinstance(request, Mapping) or not isinstance(response, Mapping):
            raise RecordingError(path, "entry needs request and response objects", entry=number)
        request_body, request_mime = _har_text(request.get("postData"), "request.postData", number, path)
        response_body, response_mime = _har_text(response.get("content"), "response.content", number, path)
        request_headers = request.get("headers") or []
        response_headers = response.get("headers") or []
        record = {
            "timestamp": entry.get("startedDateTime"),
            "request": {"method": request.get("method"), "url": request.get("url"), "headers": request_headers},
            "response": {"status": response.get("status"), "headers": response_headers},
        }
        try:
            exchange = Exchange.from_record(record, source=f"{path.name}#entry{number}")
        except ValueError as exc:
            raise RecordingError(path, str(exc), entry=number) from None
        # HAR keeps the body's type beside the body, not always in the headers.
        exchange = _with_bodies(exchange, request_body, request_mime, response_body, response_mime)
        yield exchange


def _with_bodies(
    exchange: Exchange, request_body: Any, request_mime: str, response_body: Any, response_mime: str
) -> Exchange:
    def parse(body: Any, mime: str, headers: Headers) -> Any:
        if body is None or body == "":
            return None
        extra: Headers = (("content-type", mime),) if mime else ()
        return _body(body, extra or headers)

    return Exchange(
        method=exchange.method,
        url=exchange.url,
        status=exchange.status,
        request_headers=exchange.request_headers,
        request_body=parse(request_body, request_mime, exchange.request_headers),
        response_headers=exchange.response_headers,
        response_body=parse(response_body, response_mime, exchange.response_headers),
        timestamp=exchange.timestamp,
        source=exchange.source,
    )


# -- writing ---------------------------------------------------------------------------------


def _write_lines(records: Iterable[dict[str, Any]], target: str | Path | IO[bytes] | IO[str]) -> int:
    count = 0
    if isinstance(target, (str, Path)):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        with Path(target).open("wb") as handle:
            return _write_lines(records, handle)
    for record in records:
        line = dump_json(record) + b"\n"
        if isinstance(target, io.TextIOBase):
            target.write(line.decode("ascii"))
        else:
            target.write(line)  # type: ignore[arg-type]
        count += 1
    return count


def write_journal(entries: Iterable[JournalEntry], target: str | Path | IO[bytes] | IO[str]) -> int:
    """Write a fake's journal entries as JSON Lines (what ``kling-testkit check`` reads).

    ``target`` is a path or an open file. Returns the number of records written. The bytes
    equal those of ``GET /__mock__/journal.jsonl`` for the same entries.

    >>> from mockserver import Engine, Service, VirtualClock
    >>> service = Service(Engine(clock=VirtualClock()))
    >>> _ = service.handle_simple("GET", "/v1/video/generations/task_x")
    >>> buffer = io.BytesIO()
    >>> write_journal(service.engine.journal.entries(), buffer)
    1
    """
    return _write_lines((entry.to_json() for entry in entries), target)


def write_exchanges(exchanges: Iterable[Exchange], target: str | Path | IO[bytes] | IO[str]) -> int:
    """Write exchanges (e.g. what ``verify`` sent and received) in the same JSON Lines format.

    >>> buffer = io.BytesIO()
    >>> write_exchanges([Exchange("GET", "http://h/x", 404)], buffer)
    1
    """
    return _write_lines((ex.to_record(seq=i) for i, ex in enumerate(exchanges, start=1)), target)
