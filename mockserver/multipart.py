"""``multipart/form-data`` bodies, parsed by python-multipart with limits, never a 500.

The OpenAI SDK sends every ``POST /v1/videos`` as a form. :func:`parse_form` turns a fully read
body into its parts or into a :class:`FormProblem` that names what is wrong (no boundary, a body
cut short, a part without a name, too many parts, a part over its size limit), so a face can
answer each with its own 400 or 413. The parser stops at the first part over its limit: a huge
part is never held in full twice.

>>> body = b'--b\\r\\nContent-Disposition: form-data; name="prompt"\\r\\n\\r\\na fox\\r\\n--b--\\r\\n'
>>> [(p.name, p.data) for p in parse_form(body, "multipart/form-data; boundary=b", FormLimits())]
[('prompt', b'a fox')]
>>> parse_form(body[:-8], "multipart/form-data; boundary=b", FormLimits()).detail
'the body ends before the closing boundary'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from mockserver._frozen import fast_init

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = ["FormLimits", "FormProblem", "Part", "boundary_of", "parse_form"]

#: RFC 2046 5.1.1: a boundary is 1 to 70 characters
_MAX_BOUNDARY = 70


@dataclass(frozen=True, slots=True)
class FormLimits:
    """How much one form may hold (a face's contract sets these)."""

    max_parts: int = 16
    max_field_bytes: int = 65_536
    max_file_bytes: int = 20_971_520
    max_header_bytes: int = 8_192


@fast_init
@dataclass(frozen=True, slots=True)
class Part:
    """One part of a form: a text field (``filename`` None) or a file."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def is_file(self) -> bool:
        return self.filename is not None


@dataclass(frozen=True, slots=True)
class FormProblem:
    """Why a form was refused. ``kind``: ``invalid`` (malformed), ``too_many_parts`` or
    ``part_too_large`` (``param`` names the part, ``limit`` its limit)."""

    kind: str
    detail: str
    param: str | None = None
    limit: int | None = None


class _Abort(Exception):
    def __init__(self, problem: FormProblem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


@dataclass
class _Collector:
    limits: FormLimits
    parts: list[Part] = field(default_factory=list)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, bytes] = field(default_factory=dict)
    header_bytes: int = 0
    data: bytearray = field(default_factory=bytearray)
    name: str = ""
    filename: str | None = None
    limit: int = 0
    ended: bool = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field_data,
            "on_header_value": self.header_value_data,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        if len(self.parts) >= self.limits.max_parts:
            raise _Abort(FormProblem("too_many_parts", str(self.limits.max_parts), limit=self.limits.max_parts))
        self.headers, self.header_bytes, self.data = {}, 0, bytearray()
        self.header_field, self.header_value = bytearray(), bytearray()

    def _count_header(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > self.limits.max_header_bytes:
            raise _Abort(FormProblem("invalid", f"a part's headers exceed {self.limits.max_header_bytes} bytes"))

    def header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_field += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[bytes(self.header_field).decode("latin-1").strip().lower()] = bytes(self.header_value).strip()
        self.header_field, self.header_value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        disposition = self.headers.get("content-disposition")
        if disposition is None:
            raise _Abort(FormProblem("invalid", "a part has no Content-Disposition header"))
        kind, options = parse_options_header(disposition)
        raw_name = options.get(b"name")
        if kind.lower() != b"form-data" or not raw_name:
            raise _Abort(FormProblem("invalid", "a part is not form-data with a name"))
        try:
            self.name = raw_name.decode("utf-8")
            raw_file = options.get(b"filename")
            self.filename = None if raw_file is None else raw_file.decode("utf-8")
        except UnicodeDecodeError:
            raise _Abort(FormProblem("invalid", "a part's name or filename is not UTF-8")) from None
        self.limit = self.limits.max_file_bytes if self.filename is not None else self.limits.max_field_bytes

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if len(self.data) + (end - start) > self.limit:
            raise _Abort(FormProblem("part_too_large", str(self.limit), param=self.name[:100], limit=self.limit))
        self.data += data[start:end]

    def part_end(self) -> None:
        content_type = self.headers.get("content-type")
        self.parts.append(
            Part(
                self.name,
                bytes(self.data),
                self.filename,
                None if content_type is None else content_type.decode("latin-1"),
            )
        )
        self.data = bytearray()

    def end(self) -> None:
        self.ended = True


#: ``multipart/form-data; boundary=<token>`` as httpx, requests and undici write it (a property
#: test holds it to python-multipart's reading; anything else is parsed by python-multipart)
_SIMPLE_CONTENT_TYPE = re.compile(r"multipart/form-data; boundary=([A-Za-z0-9'+_.-]+)")


def boundary_of(content_type: str | None) -> bytes | FormProblem:
    """The boundary of a ``multipart/form-data`` Content-Type, or the problem with it.

    >>> boundary_of('multipart/form-data; boundary="a b"')
    b'a b'
    >>> boundary_of("multipart/form-data").detail
    'the Content-Type has no boundary'
    """
    simple = _SIMPLE_CONTENT_TYPE.fullmatch(content_type or "")
    if simple is not None:  # as clients send it: read as parse_options_header reads it
        boundary: bytes | None = simple.group(1).encode("ascii")
    else:
        _, options = parse_options_header(content_type or "")
        boundary = options.get(b"boundary")
    if not boundary:
        return FormProblem("invalid", "the Content-Type has no boundary")
    if len(boundary) > _MAX_BOUNDARY:
        return FormProblem("invalid", f"the boundary is longer than {_MAX_BOUNDARY} characters")
    return boundary


def parse_form(body: bytes, content_type: str | None, limits: FormLimits) -> list[Part] | FormProblem:
    """The parts of a fully read ``multipart/form-data`` body, in order, or the problem."""
    boundary = boundary_of(content_type)
    if isinstance(boundary, FormProblem):
        return boundary
    parts = _plain_form(body, boundary, limits)
    if parts is not None:
        return parts
    return _parse(body, boundary, limits)


#: one header line of a plain part: a name, ``: ``, a value of visible ASCII without edge spaces
_PLAIN_HEADER = re.compile(rb"([A-Za-z][A-Za-z0-9-]*): ([!-~](?:[ -~]*[!-~])?)")
#: a plain part's disposition: quoted names and file names with nothing to unescape or cut
_PLAIN_DISPOSITION = re.compile(rb'form-data; name="([A-Za-z0-9_.\[\]-]+)"(?:; filename="([A-Za-z0-9_. -]*)")?')


#: a plain part's head as httpx (and so the OpenAI SDK) writes it: the disposition, then an
#: optional Content-Type, each once
_USUAL_HEAD = re.compile(
    rb'\r\nContent-Disposition: form-data; name="([A-Za-z0-9_.\[\]-]+)"(?:; filename="([A-Za-z0-9_. -]*)")?'
    rb"(?:\r\nContent-Type: ([!-~](?:[ -~]*[!-~])?))?\r\n\r\n"
)


def _plain_form(body: bytes, boundary: bytes, limits: FormLimits) -> list[Part] | None:
    """The parts of a form as clients write it (what the OpenAI SDK and httpx send: CRLF lines,
    ``Name: value`` headers, a quoted ``form-data`` disposition, no preamble, within every
    limit), split in a few C calls; None for anything else, which python-multipart then reads
    and names the problem of. It reads exactly what python-multipart reads from such a form
    (a property test compares the two); the parser's callbacks cost half an openai create."""
    opening = b"--" + boundary
    if not body.startswith(opening):
        return None
    segments = body[len(opening) :].split(b"\r\n" + opening)
    if len(segments) < 2 or len(segments) - 1 > limits.max_parts or segments[-1] not in (b"--", b"--\r\n"):
        return None
    parts = []
    for segment in segments[:-1]:
        head = _plain_head(segment, limits)
        if head is None:
            return None
        part_name, file_name, content_type, start = head
        data = segment[start:]
        if len(data) > (limits.max_file_bytes if file_name is not None else limits.max_field_bytes):
            return None
        parts.append(
            Part(
                part_name.decode("ascii"),
                data,
                None if file_name is None else file_name.decode("ascii"),
                None if content_type is None else content_type.decode("latin-1"),
            )
        )
    return parts


def _plain_head(segment: bytes, limits: FormLimits) -> tuple[bytes, bytes | None, bytes | None, int] | None:
    """A plain part's name, file name, Content-Type and where its data starts (None: not plain)."""
    usual = _USUAL_HEAD.match(segment)
    if usual is not None and usual.end() - 6 <= limits.max_header_bytes:
        # the head as httpx writes it: one match reads it (what the general reading below reads)
        part_name, file_name, content_type = usual.groups()
        return part_name, file_name, content_type, usual.end()
    end = segment.find(b"\r\n\r\n")
    if not segment.startswith(b"\r\n") or end < 0 or end - 2 > limits.max_header_bytes:
        return None
    headers: dict[bytes, bytes] = {}
    for line in segment[2:end].split(b"\r\n"):
        found = _PLAIN_HEADER.fullmatch(line)
        if found is None:
            return None
        headers[found.group(1).lower()] = found.group(2)  # the last of a name wins, as there
    disposition = _PLAIN_DISPOSITION.fullmatch(headers.get(b"content-disposition", b""))
    if disposition is None:
        return None
    part_name, file_name = disposition.groups()
    return part_name, file_name, headers.get(b"content-type"), end + 4


def _parse(body: bytes, boundary: bytes, limits: FormLimits) -> list[Part] | FormProblem:
    """Any form, read by python-multipart with the limits applied as it goes."""
    collector = _Collector(limits)
    parser = MultipartParser(boundary, collector.callbacks())
    try:
        parser.write(body)
        parser.finalize()
    except _Abort as abort:
        return abort.problem
    except FormParserError as exc:
        return FormProblem("invalid", (str(exc) or type(exc).__name__)[:200])
    if not collector.ended:
        return FormProblem("invalid", "the body ends before the closing boundary")
    return collector.parts
