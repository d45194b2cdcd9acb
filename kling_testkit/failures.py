"""Contract failures as data: :class:`ContractViolation` and the reports CI systems read.

A violation is an :class:`AssertionError` (so ``assert_conforms`` reads naturally inside a
test) that also carries *where* and *why* as fields: the operation, the part of the exchange
(request, response, or the timeline), the JSON path inside that body, the rule id, what the
contract expected, what was seen, and a severity. Reports (:class:`Report`) collect them and
render the three outputs of the CLI: a human summary, JUnit XML and JSON.

Rule ids are those of the contract where one exists (``schema:properties/mode/enum``,
``sound.requires_pro``, ``unknown_field``) and ``<topic>.<rule>`` for the checks' own rules
(``lifecycle.monotone``, ``client.retry_after``).
"""

from __future__ import annotations

import enum
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema

from kling_testkit.errors import KlingTestkitError

__all__ = [
    "ContractViolation",
    "Report",
    "Severity",
    "format_json_path",
]

#: Values longer than this are cut in messages; a 10 MB image must never reach a CI log.
MAX_SHOWN = 160


class Severity(str, enum.Enum):
    """How bad a violation is. ``error`` fails a run; ``warning`` fails it only when strict.

    >>> Severity("warning").fails(strict=True), Severity.WARNING.fails(strict=False)
    (True, False)
    """

    ERROR = "error"
    WARNING = "warning"

    def fails(self, *, strict: bool) -> bool:
        """Whether a violation of this severity makes the run fail."""
        return self is Severity.ERROR or strict


def format_json_path(path: Iterable[str | int]) -> str:
    """A JSONPath-style location: ``("multi_prompt", 0, "prompt")`` -> ``$.multi_prompt[0].prompt``.

    >>> format_json_path(["metadata", "fps"]), format_json_path([])
    ('$.metadata.fps', '$')
    """
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f"... ({len(text)} chars)"


class ContractViolation(KlingTestkitError, AssertionError):
    """One way an exchange (or a task's timeline) breaks the contract.

    ``part`` says which body ``json_path`` points into: ``request``, ``request.headers``,
    ``response``, ``response.headers`` or ``timeline`` (ordering and timing rules across
    exchanges); ``face`` names the wire dialect whose contract applies. ``where`` locates the
    exchange in its source (``recording.jsonl:12``, ``verify case invalid:sound.requires_pro``).

    >>> v = ContractViolation("schema:properties/status/enum", "'succeeded' is not one of ['queued', ...]",
    ...     operation="video_generations.get", status=200, json_path="$.status",
    ...     expected=["queued", "in_progress", "completed", "failed"], actual="succeeded")
    >>> print(str(v).splitlines()[0])
    video_generations.get → 200: 'succeeded' is not one of ['queued', ...]
    >>> isinstance(v, AssertionError), v.rule
    (True, 'schema:properties/status/enum')
    """

    def __init__(
        self,
        rule: str,
        message: str,
        *,
        operation: str | None = None,
        status: int | None = None,
        json_path: str = "$",
        part: str = "response",
        expected: Any = None,
        actual: Any = None,
        severity: Severity = Severity.ERROR,
        check: str | None = None,
        where: str | None = None,
        face: str | None = None,
    ) -> None:
        super().__init__(message)
        self.rule = rule
        #: the face (wire dialect) whose contract was broken, when known
        self.face = face
        self.message = message
        self.operation = operation
        self.status = status
        self.json_path = json_path
        self.part = part
        self.expected = expected
        self.actual = actual
        self.severity = Severity(severity)
        self.check = check
        self.where = where

    @classmethod
    def from_schema_error(
        cls,
        error: jsonschema.ValidationError,
        *,
        operation: str | None,
        status: int | None,
        part: str = "response",
        severity: Severity = Severity.ERROR,
    ) -> ContractViolation:
        """Build a violation from a ``jsonschema`` error (typically ``best_match``'s pick).

        The rule is ``schema:`` + the keyword's path inside the schema, as the fake names its
        own schema refusals; for ``required`` the JSON path names the missing member.

        >>> from jsonschema import Draft202012Validator
        >>> err = next(Draft202012Validator({"required": ["task_id"]}).iter_errors({}))
        >>> v = ContractViolation.from_schema_error(err, operation="video_generations.create", status=200)
        >>> v.json_path, v.rule
        ('$.task_id', 'schema:required')
        """
        path: list[str | int] = list(error.absolute_path)
        keyword = str(error.validator)
        expected: Any = error.validator_value
        actual: Any = error.instance
        if keyword == "required" and isinstance(error.instance, Mapping):
            missing = [name for name in expected if name not in error.instance]
            if missing:
                path.append(missing[0])
                expected, actual = f"member {missing[0]!r} present", "absent"
        elif keyword == "additionalProperties" and isinstance(error.instance, Mapping):
            allowed = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
            extra = [name for name in error.instance if name not in allowed]
            if extra:
                path.append(extra[0])
                expected, actual = "no members beyond the contract's", extra
        rule = "schema:" + "/".join(str(p) for p in error.relative_schema_path)
        return cls(
            rule,
            error.message if len(error.message) <= 300 else error.message[:300] + "...",
            operation=operation,
            status=status,
            json_path=format_json_path(path),
            part=part,
            expected=expected,
            actual=actual,
            severity=severity,
        )

    @property
    def headline(self) -> str:
        head = self.operation or "(unknown operation)"
        if self.status is not None:
            head += f" → {self.status}"
        return f"{head}: {self.message}"

    def __str__(self) -> str:
        lines = [self.headline]
        lines.append(f"  at   {self.part} {self.json_path}")
        lines.append(f"  rule {self.rule}" + (f" (check {self.check})" if self.check else ""))
        if self.expected is not None:
            lines.append(f"  expected {_shown(self.expected)}")
        if self.actual is not None:
            lines.append(f"  actual   {_shown(self.actual)}")
        if self.where:
            lines.append(f"  in   {self.where}")
        if self.severity is not Severity.ERROR:
            lines.append(f"  severity {self.severity.value}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"ContractViolation(rule={self.rule!r}, json_path={self.json_path!r}, operation={self.operation!r})"

    def to_json(self) -> dict[str, Any]:
        """A JSON object for ``--json`` reports.

        >>> ContractViolation("ids.stable", "changed", json_path="$.task_id").to_json()["rule"]
        'ids.stable'
        """
        return {
            "rule": self.rule,
            "check": self.check,
            "face": self.face,
            "severity": self.severity.value,
            "operation": self.operation,
            "status": self.status,
            "part": self.part,
            "json_path": self.json_path,
            "message": self.message,
            "expected": _jsonable(self.expected),
            "actual": _jsonable(self.actual),
            "where": self.where,
        }


def _jsonable(value: Any) -> Any:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return _shown(value)
    return value if len(text) <= 4 * MAX_SHOWN else _shown(value)


@dataclass
class Report:
    """The outcome of a ``check`` or ``verify`` run, renderable for people and CI.

    ``cases`` are the units a CI system shows as test cases: for ``check``, one per input file
    and check; for ``verify``, one per sent case. Each case name maps to its violations (an
    empty list is a pass); ``skipped`` maps case names to a reason.

    >>> broken = ContractViolation("ids.stable", "task_id changed", json_path="$.task_id")
    >>> report = Report("check", cases={"a.jsonl::ids_stable": [broken], "a.jsonl::body": []})
    >>> report.exit_code(), report.summary_line()
    (1, 'check: 2 cases, 1 violation (1 error)')
    >>> Report("check", cases={"a.jsonl::body": []}).exit_code()
    0
    """

    command: str
    cases: dict[str, list[ContractViolation]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    strict: bool = False

    @property
    def violations(self) -> list[ContractViolation]:
        return [v for found in self.cases.values() for v in found]

    @property
    def failing(self) -> list[ContractViolation]:
        return [v for v in self.violations if v.severity.fails(strict=self.strict)]

    def exit_code(self) -> int:
        """0 when nothing fails, 1 when a violation fails the run (see :class:`Severity`)."""
        return 1 if self.failing else 0

    def summary_line(self) -> str:
        found = self.violations
        counts = Counter(v.severity.value for v in found)
        n = len(self.cases)
        plural = "s" if len(found) != 1 else ""
        text = f"{self.command}: {n} case{'s' if n != 1 else ''}, {len(found)} violation{plural}"
        if found:
            text += " (" + ", ".join(f"{counts[s.value]} {s.value}" for s in Severity if counts[s.value]) + ")"
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        return text

    def render_text(self, *, limit: int = 50) -> str:
        """The human summary: each violation (up to ``limit``), rule counts, the totals."""
        out: list[str] = []
        found = self.violations
        for violation in found[:limit]:
            tag = "FAIL" if violation.severity.fails(strict=self.strict) else "WARN"
            out.append(f"{tag} {violation}")
        if len(found) > limit:
            out.append(f"... and {len(found) - limit} more (use --json for all)")
        if found:
            by_rule = Counter(v.rule for v in found)
            out.append("rules: " + ", ".join(f"{rule} ×{n}" for rule, n in by_rule.most_common()))
        for name, reason in self.skipped.items():
            out.append(f"SKIP {name}: {reason}")
        if self.stats:
            out.append(", ".join(f"{k} {v}" for k, v in self.stats.items()))
        out.append(self.summary_line() + (" — FAILED" if self.exit_code() else " — ok"))
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "ok": self.exit_code() == 0,
            "exit_code": self.exit_code(),
            "strict": self.strict,
            "stats": self.stats,
            "cases": {name: [v.to_json() for v in found] for name, found in self.cases.items()},
            "skipped": self.skipped,
            "violations": [v.to_json() for v in self.violations],
        }

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``, creating missing parent folders."""
        _parent_made(path).write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def to_junit_xml(self) -> str:
        """JUnit XML: one ``<testcase>`` per case; violations of a case in one ``<failure>``."""
        suite = ET.Element("testsuite", name=f"kling-testkit {self.command}")
        failures = 0
        for name, found in self.cases.items():
            classname, _, test = name.rpartition("::")
            case = ET.SubElement(suite, "testcase", classname=classname or self.command, name=test or name)
            failing = [v for v in found if v.severity.fails(strict=self.strict)]
            if failing:
                failures += 1
                first = failing[0]
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=f"{len(failing)} violation(s); first: {first.rule} at {first.part} {first.json_path}",
                    type=first.rule,
                )
                failure.text = _xml_safe("\n\n".join(str(v) for v in failing))
            warnings = [v for v in found if v not in failing]
            if warnings:
                out = ET.SubElement(case, "system-out")
                out.text = _xml_safe("\n\n".join(str(v) for v in warnings))
        for name, reason in self.skipped.items():
            classname, _, test = name.rpartition("::")
            case = ET.SubElement(suite, "testcase", classname=classname or self.command, name=test or name)
            ET.SubElement(case, "skipped", message=_xml_safe(reason))
        suite.set("tests", str(len(self.cases) + len(self.skipped)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", str(len(self.skipped)))
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

    def write_junit_xml(self, path: str | Path) -> None:
        """Write :meth:`to_junit_xml` to ``path``, creating missing parent folders (CI report
        folders such as ``reports/`` usually do not exist before the first run)."""
        _parent_made(path).write_text(self.to_junit_xml(), encoding="utf-8")


def _parent_made(path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _xml_safe(text: str) -> str:
    # XML 1.0 cannot carry most control characters; recorded bodies may contain them.
    return "".join(ch if ch in "\t\n\r" or ord(ch) >= 0x20 else f"\\x{ord(ch):02x}" for ch in text)
