"""CLI snapshots: output and exit codes of ``check``, ``verify`` and ``contract``."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import uvicorn

from kling_testkit.checks import CHECKS
from kling_testkit.cli import main
from mockserver import Engine, Service, SystemClock, create_app, load_contract
from mockserver.serve import bind

RECORDINGS = Path(__file__).resolve().parents[2] / "fixtures" / "recordings"
CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def fake_url() -> Iterator[str]:
    sock = bind("127.0.0.1", 0)
    app = create_app(Service(Engine(clock=SystemClock(), seed=5)))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.002)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join()
    sock.close()


# -- check ---------------------------------------------------------------------------------------


def test_check_clean_recordings_exits_0_with_a_summary() -> None:
    code, out, err = run("check", str(RECORDINGS / "clean.jsonl"), str(RECORDINGS / "clean.har"))
    assert code == 0
    assert out.splitlines() == [
        "files 2, exchanges 20, tasks 6",
        f"check: {2 * len(CHECKS)} cases, 0 violations — ok",
    ]
    assert err == ""  # not a terminal: no progress


def test_check_a_defect_exits_1_and_writes_junit_and_json(tmp_path: Path) -> None:
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    code, out, _ = run(
        "check", str(RECORDINGS / "defect_unknown_field.jsonl"), "--junit-xml", str(junit), "--json", str(report)
    )
    assert code == 1
    assert out.splitlines()[:6] == [
        "FAIL video_generations.create: unknown request field 'negative_promt': the server drops it silently",
        "  at   request $.negative_promt",
        "  rule unknown_field (check no_unknown_request_fields)",
        "  expected only fields of the contract",
        '  actual   ["negative_promt"]',
        "  in   defect_unknown_field.jsonl:1",
    ]
    assert out.splitlines()[-1] == f"check: {len(CHECKS)} cases, 1 violation (1 error) — FAILED"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    data = json.loads(report.read_text())
    assert [(v["rule"], v["json_path"], v["part"]) for v in data["violations"]] == [
        ("unknown_field", "$.negative_promt", "request")
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("truncated.jsonl", r"truncated\.jsonl:4: truncated JSON record", id="truncated"),
        pytest.param("empty.jsonl", r"empty\.jsonl: empty file: no exchanges recorded", id="empty"),
        pytest.param("binary_body.har", r"binary_body\.har: HAR entry 2: response\.content is binary", id="binary"),
        pytest.param("missing.jsonl", r"missing\.jsonl: cannot open", id="missing-file"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(name: str, message: str) -> None:
    code, out, err = run("check", str(RECORDINGS / "bad" / name))
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert re.search(r"^kling-testkit check: error: .*" + message, err)


def test_bad_input_never_prints_a_traceback_from_the_console_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kling_testkit.cli", "check", str(RECORDINGS / "bad" / "truncated.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_check_usage_errors_exit_2() -> None:
    assert run("check")[0] == 2
    code, _, err = run("check", str(RECORDINGS / "clean.jsonl"), "--checks", "nope")
    assert code == 2
    assert "no check named 'nope'" in err
    with pytest.raises(SystemExit) as caught:
        run("check", "--no-such-flag")
    assert caught.value.code == 2


def test_check_progress_goes_to_stderr_when_asked() -> None:
    code, _, err = run("check", "--progress", str(RECORDINGS / "clean.jsonl"))
    assert code == 0
    assert err.splitlines() == [f"{RECORDINGS / 'clean.jsonl'}: 10 exchanges, 3 tasks"]


def test_list_checks_names_every_registered_check() -> None:
    code, out, _ = run("check", "--list-checks")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == CHECKS.names()


def test_strict_turns_warnings_into_failures(tmp_path: Path) -> None:
    record = {
        "request": {"method": "POST", "url": "https://api.modelstream.ai/v1/video/generations"},
        "response": {
            "status": 429,
            "body": {"error": {"message": "m", "type": "new_api_error", "param": None, "code": "rate_limit_exceeded"}},
        },
    }
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(record) + "\n")
    assert run("check", str(path))[0] == 0
    code, out, _ = run("check", "--strict", str(path))
    assert code == 1
    assert "rate_limit.retry_after_header" in out


# -- verify --------------------------------------------------------------------------------------


def test_verify_against_the_fake_exits_0(fake_url: str, tmp_path: Path) -> None:
    record = tmp_path / "verify.jsonl"
    code, out, _ = run(
        "verify", "--base-url", fake_url, "--api-key", "sk-test", "--poll-interval", "0", "--record", str(record)
    )
    assert code == 0, out
    assert out.splitlines()[-2].startswith("requests ")
    assert out.splitlines()[-1].endswith("0 violations — ok")
    # Re-checking what verify saw: the server side passes; the client side names verify's own
    # deliberately invalid requests, and nothing else.
    assert run("check", str(record), "--checks", ",".join(CHECKS.names(side="server")))[0] == 0
    code, _, _ = run("check", str(record), "--json", str(tmp_path / "all.json"))
    assert code == 1
    checks = {v["check"] for v in json.loads((tmp_path / "all.json").read_text())["violations"]}
    assert checks == {"request_conforms"}


def test_reports_go_into_folders_that_do_not_exist_yet(fake_url: str, tmp_path: Path) -> None:
    reports = tmp_path / "reports" / "nightly"
    code, _, err = run(
        "check",
        str(RECORDINGS / "clean.jsonl"),
        "--junit-xml",
        str(reports / "check.xml"),
        "--json",
        str(reports / "check.json"),
    )
    assert (code, err) == (0, "")
    assert ET.parse(reports / "check.xml").getroot().tag == "testsuites"
    code, _, err = run(
        "verify", "--base-url", fake_url, "--api-key", "sk-test", "--poll-interval", "0",
        "--junit-xml", str(tmp_path / "v" / "a" / "verify.xml"), "--json", str(tmp_path / "v" / "b" / "verify.json"),
        "--record", str(tmp_path / "v" / "c" / "verify.jsonl"),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert {p.name for p in (tmp_path / "v").rglob("verify.*")} == {"verify.xml", "verify.json", "verify.jsonl"}
    assert run("contract", "diff", str(CONTRACTS), str(CONTRACTS), "--json", str(tmp_path / "d" / "diff.json"))[0] == 0
    assert json.loads((tmp_path / "d" / "diff.json").read_text())["breaking"] == 0


def test_verify_writes_what_it_measured_when_one_report_cannot_be_written(fake_url: str, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    code, out, err = run(
        "verify", "--base-url", fake_url, "--api-key", "sk-test", "--poll-interval", "0",
        "--junit-xml", str(blocked / "verify.xml"), "--json", str(tmp_path / "verify.json"),
        "--record", str(tmp_path / "verify.jsonl"),
    )  # fmt: skip
    assert code == 2  # an output is missing: the run cannot pass as complete
    assert out.splitlines()[-1].endswith("0 violations — ok")  # the summary is still printed
    assert json.loads((tmp_path / "verify.json").read_text())["violations"] == []
    assert (tmp_path / "verify.jsonl").read_text().count("\n") > 10
    assert f"kling-testkit verify: error: cannot write --junit-xml {blocked / 'verify.xml'}: " in err
    assert "the results above are complete; only the output named is missing" in err


def test_check_says_which_report_it_could_not_write(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    code, out, err = run("check", str(RECORDINGS / "clean.jsonl"), "--json", str(blocked / "x.json"))
    assert code == 2
    assert "0 violations — ok" in out
    assert "cannot write --json" in err


def test_verify_dry_run_sends_nothing_and_needs_no_key() -> None:
    code, out, _ = run("verify", "--base-url", "http://127.0.0.1:9", "--dry-run", "--max-requests", "5")
    assert code == 0
    assert out.splitlines()[0].startswith("verify (dry run) against http://127.0.0.1:9: ")
    assert "budget 5 requests" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--base-url", "http://127.0.0.1:9"], "an API key is needed", id="no-key"),
        pytest.param(["--base-url", "http://127.0.0.1:9", "--api-key", "k"], "cannot reach", id="unreachable"),
        pytest.param(["--base-url", "ftp://x", "--api-key", "k"], "must start with http", id="bad-url"),
    ],
)
def test_verify_usage_errors_exit_2(argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KLING_TESTKIT_API_KEY", raising=False)
    code, _, err = run("verify", *argv)
    assert code == 2
    assert message in err


def test_verify_rejects_a_zero_budget() -> None:
    with pytest.raises(SystemExit) as caught:
        run("verify", "--base-url", "http://x", "--max-requests", "0", "--dry-run")
    assert caught.value.code == 2


# -- contract ------------------------------------------------------------------------------------


def test_contract_export_then_diff(tmp_path: Path) -> None:
    code, out, _ = run("contract", "export", str(tmp_path / "v1"))
    assert code == 0
    assert out.startswith("wrote ")
    root = load_contract().root
    assert run("contract", "diff", str(root), str(tmp_path / "v1")) == (
        0,
        "contract diff: 0 changes, 0 breaking — ok\n",
        "",
    )
    new = tmp_path / "v2"
    shutil.copytree(root, new)
    schema = new / "gateway/models/kling-v2-6/text2video.request.schema.json"
    data = json.loads(schema.read_text())
    data["properties"]["sound"]["enum"] = ["off"]
    data["properties"]["negative_prompt"]["maxLength"] = 3000
    schema.write_text(json.dumps(data))
    report = tmp_path / "diff.json"
    code, out, _ = run("contract", "diff", str(tmp_path / "v1"), str(new), "--json", str(report))
    assert code == 1
    assert out.splitlines() == [
        'BREAKING  request   kling-v2-6/text2video /properties/sound/enum: removed value "on"',
        "ok        request   kling-v2-6/text2video /properties/negative_prompt/maxLength: limit loosened: 2500 -> 3000",
        "contract diff: 2 changes, 1 breaking — FAILED",
    ]
    assert json.loads(report.read_text())["breaking"] == 1


def test_contract_diff_of_a_non_contract_folder_exits_2(tmp_path: Path) -> None:
    code, _, err = run("contract", "diff", str(tmp_path), str(tmp_path))
    assert code == 2
    assert "neither a contract folder" in err


# -- Kling's own API (the official face) -------------------------------------------------------------

OFFICIAL_RECORDINGS = RECORDINGS / "official"
KEYS = ["--access-key", "ak-test", "--secret-key", "sk-test-secret-key-for-kling-testkit"]


def test_check_official_recordings_finds_the_face_of_every_exchange() -> None:
    code, out, _ = run("check", str(OFFICIAL_RECORDINGS / "clean.jsonl"), str(OFFICIAL_RECORDINGS / "clean.har"))
    assert code == 0, out
    assert out.splitlines() == [
        "files 2, exchanges 24, tasks 6",
        f"check: {2 * len(CHECKS)} cases, 0 violations — ok",
    ]  # no "not in the contract (skipped)": the mounts under /kling and /proxy/kling are found too


def test_check_an_official_defect_names_rule_path_and_face(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    code, out, _ = run("check", str(OFFICIAL_RECORDINGS / "defect_error_without_code.har"), "--json", str(report))
    assert code == 1
    assert out.splitlines()[:3] == [
        "FAIL text2video.create → 503: 'code' is a required property",
        "  at   response $.code",
        "  rule schema:required (check error_object_well_formed)",
    ]
    [violation] = json.loads(report.read_text())["violations"]
    assert (violation["face"], violation["where"]) == ("official", "defect_error_without_code.har#entry10")


def test_a_concurrency_warning_fails_only_when_strict() -> None:
    path = str(OFFICIAL_RECORDINGS / "defect_over_slots.jsonl")
    assert run("check", path)[0] == 0
    code, out, _ = run("check", "--strict", path)
    assert code == 1
    assert "client.concurrency_slots" in out


def test_verify_official_against_the_fake_exits_0(fake_url: str, tmp_path: Path) -> None:
    record = tmp_path / "verify.jsonl"
    code, out, _ = run(
        "verify", "--face", "official", "--base-url", fake_url, *KEYS, "--poll-interval", "0", "--record", str(record)
    )
    assert code == 0, out
    assert out.splitlines()[-2].startswith("face official, requests ")
    assert out.splitlines()[-1].endswith("0 violations — ok")
    assert "sk-test-secret-key-for-kling-testkit" not in out + record.read_text()
    assert {json.loads(line)["face"] for line in record.read_text().splitlines()} == {"official"}
    # Re-checking what verify saw: the server side passes; the client side names verify's own
    # deliberately invalid requests and tokens, and nothing else.
    assert run("check", str(record), "--checks", ",".join(CHECKS.names(side="server")))[0] == 0
    code, _, _ = run("check", str(record), "--json", str(tmp_path / "all.json"))
    assert code == 1
    found = json.loads((tmp_path / "all.json").read_text())["violations"]
    assert {v["check"] for v in found} == {"request_conforms", "token_valid_when_sent"}
    assert {v["rule"] for v in found if v["check"] == "token_valid_when_sent"} == {
        "client.token_expired",
        "client.token_not_yet_valid",
    }


def test_verify_official_keys_may_come_from_the_environment(fake_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_TESTKIT_ACCESS_KEY", "ak-test")
    monkeypatch.setenv("KLING_TESTKIT_SECRET_KEY", "sk-test-secret-key-for-kling-testkit")
    code, out, _ = run(
        "verify", "--face", "official", "--base-url", fake_url, "--poll-interval", "0", "--max-requests", "3"
    )
    assert code == 0, out
    assert "requests 3/3" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param([], "keys are needed: --access-key AK --secret-key SK", id="no-keys"),
        pytest.param(["--access-key", "ak"], "an access key and a secret key go together", id="half-a-pair"),
    ],
)
def test_verify_official_usage_errors_exit_2(argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KLING_TESTKIT_API_KEY", "KLING_TESTKIT_ACCESS_KEY", "KLING_TESTKIT_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run("verify", "--face", "official", "--base-url", "http://127.0.0.1:9", *argv)
    assert code == 2
    assert message in err
    with pytest.raises(SystemExit):
        run("verify", "--face", "nope", "--base-url", "http://127.0.0.1:9", "--dry-run")


def test_verify_official_dry_run_lists_the_token_cases() -> None:
    code, out, _ = run("verify", "--face", "official", "--base-url", "https://api-singapore.klingai.com", "--dry-run")
    assert code == 0
    assert "cases (official face)" in out.splitlines()[0]
    assert "[auth:token_expired]  expect 401 1004" in out


def test_contract_export_of_every_face_or_one(tmp_path: Path) -> None:
    code, out, _ = run("contract", "export", str(tmp_path / "all"))
    assert code == 0
    assert (tmp_path / "all" / "official" / "manifest.json").is_file()
    assert run("contract", "export", str(tmp_path / "one"), "--face", "official")[0] == 0
    assert not (tmp_path / "one" / "gateway").exists()
    assert json.loads((tmp_path / "one" / "manifest.json").read_text())["face"] == "official"
    new = tmp_path / "v2"
    shutil.copytree(load_contract().root, new)
    schema = new / "official/models/kling-v2-6/image2video.request.schema.json"
    data = json.loads(schema.read_text())
    data["properties"]["mode"]["enum"] = ["pro"]
    schema.write_text(json.dumps(data))
    code, out, _ = run("contract", "diff", str(tmp_path / "all"), str(new))
    assert code == 1
    assert out.splitlines() == [
        'BREAKING  request   official:kling-v2-6/image2video /properties/mode/enum: removed value "std"',
        "contract diff: 1 change, 1 breaking — FAILED",
    ]


# -- the OpenAI-compatible route (the openai face) ---------------------------------------------------


def test_verify_openai_against_the_fake_exits_0(fake_url: str, tmp_path: Path) -> None:
    record = tmp_path / "verify.jsonl"
    code, out, _ = run(
        "verify", "--face", "openai", "--base-url", fake_url, "--api-key", "sk-test", "--poll-interval", "0",
        "--record", str(record), "--junit-xml", str(tmp_path / "verify.xml"),
    )  # fmt: skip
    assert code == 0, out
    assert out.splitlines()[-2].startswith("face openai, requests ")
    assert out.splitlines()[-1].endswith("0 violations — ok")
    records = [json.loads(line) for line in record.read_text().splitlines()]
    assert {r["face"] for r in records} == {"openai"}
    cases = {c.get("name") for c in ET.parse(tmp_path / "verify.xml").getroot().iter("testcase")}
    assert {"valid:image2video", "invalid:form.duplicate_field", "content"} <= cases  # content: each download
    downloads = [r for r in records if r["request"]["url"].endswith("/content")]
    assert len(downloads) == 3
    assert {r["response"]["status"] for r in downloads} == {200}
    posts = [r for r in records if r["request"]["method"] == "POST"]
    # the form without a boundary, and the three bodies no face can read (cut short, no object, text/plain)
    assert sum(not isinstance(r["request"]["body"], dict) for r in posts) == 4
    # Re-checking what verify saw: the server side passes (forms are recorded as their fields)
    assert run("check", str(record), "--checks", ",".join(CHECKS.names(side="server")))[0] == 0


def test_verify_openai_dry_run_sends_nothing_and_needs_no_key() -> None:
    code, out, _ = run("verify", "--face", "openai", "--base-url", "http://127.0.0.1:9", "--dry-run")
    assert code == 0
    assert "cases (openai face)" in out.splitlines()[0]
    assert "POST /v1/videos  [valid:image2video]" in out
