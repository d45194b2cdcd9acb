"""How ``check`` and ``verify`` reports read, for people (text) and for CI (JSON, JUnit XML).

A report is what a CI job shows when the contract breaks: warnings stay visible without failing,
skipped cases are listed as skipped, long runs are summarised, and nothing a recorded body holds
(control characters, bytes, huge values) breaks the XML or the JSON.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kling_testkit.failures import MAX_SHOWN, ContractViolation, Report, Severity

WARN = ContractViolation("headers.hint", "no poll hint", severity=Severity.WARNING, json_path="$.x")
ERROR = ContractViolation("ids.stable", "task_id changed", operation="video_generations.get", status=200)


def _suite(report: Report) -> ET.Element:
    suite = ET.fromstring(report.to_junit_xml()).find("testsuite")
    assert suite is not None
    return suite


def test_a_case_with_only_warnings_passes_in_junit_and_shows_them_as_output() -> None:
    suite = _suite(Report("check", cases={"a.jsonl::headers": [WARN]}))
    case = suite.find("testcase")
    assert case is not None
    assert case.find("failure") is None
    out = case.find("system-out")
    assert out is not None
    assert "headers.hint" in (out.text or "")
    assert suite.get("failures") == "0"


def test_a_strict_report_turns_the_same_warning_into_a_junit_failure() -> None:
    suite = _suite(Report("check", cases={"a.jsonl::headers": [WARN]}, strict=True))
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("type") == "headers.hint"
    assert suite.get("failures") == "1"


def test_skipped_cases_are_junit_skips_with_their_reason_and_counted() -> None:
    report = Report("verify", cases={"create::ok": []}, skipped={"create::tls": "no TLS\x01 here", "bare": "why"})
    suite = _suite(report)
    skipped = {case.get("name"): case.find("skipped") for case in suite.findall("testcase")}
    assert skipped["tls"] is not None
    assert skipped["tls"].get("message") == "no TLS\\x01 here"
    assert skipped["bare"] is not None
    assert (suite.get("tests"), suite.get("skipped")) == ("3", "2")
    assert report.summary_line() == "verify: 1 case, 0 violations, 2 skipped"


@pytest.mark.parametrize(
    ("found", "limit", "shown", "more"), [(3, 5, 3, None), (7, 5, 5, "... and 2 more (use --json for all)")]
)
def test_the_text_report_lists_up_to_its_limit_then_says_how_many_more(
    found: int, limit: int, shown: int, more: str | None
) -> None:
    text = Report("check", cases={"a::b": [ERROR] * found}).render_text(limit=limit)
    assert text.count("FAIL ") == shown
    assert (more in text) if more else ("more (use --json" not in text)
    assert f"rules: ids.stable ×{found}" in text


def test_values_that_are_not_json_or_too_long_are_shown_shortened_in_json_reports(tmp_path: Path) -> None:
    odd = ContractViolation("r", "m", expected=b"\x00bytes", actual="x" * (10 * MAX_SHOWN))
    Report("check", cases={"a::b": [odd]}).write_json(tmp_path / "reports" / "check.json")
    written = json.loads((tmp_path / "reports" / "check.json").read_text(encoding="utf-8"))
    entry = written["violations"][0]
    assert isinstance(entry["expected"], str)
    assert "bytes" in entry["expected"]
    assert entry["actual"].endswith(f"... ({10 * MAX_SHOWN} chars)")


def test_a_violation_names_its_rule_path_and_operation_in_repr_and_severity_in_text() -> None:
    assert repr(ERROR) == "ContractViolation(rule='ids.stable', json_path='$', operation='video_generations.get')"
    assert "  severity warning" in str(WARN)
    assert "severity" not in str(ERROR)
