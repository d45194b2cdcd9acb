"""The contract's pieces agree with each other, and the loader refuses broken contracts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_openapi

from mockserver.contract import ContractError, load_contract
from mockserver.contract.openapi import build_openapi
from mockserver.engine import Status, terminal_statuses, transitions

CONTRACT = load_contract()
GET_SCHEMA = "responses/video_generations.get.response.schema.json"


def test_status_enum_names_exactly_the_lifecycle_statuses() -> None:
    assert [s.value for s in Status] == CONTRACT.lifecycle["statuses"]


def test_terminal_statuses_have_no_way_out() -> None:
    assert terminal_statuses() == {Status.SUCCEEDED, Status.FAILED}
    assert not [pair for pair in transitions() if pair[0] in terminal_statuses()]


def test_every_non_terminal_status_can_reach_an_end() -> None:
    for status in set(Status) - terminal_statuses():
        assert any(src is status for src, _ in transitions()), status


def test_status_projection_matches_the_response_schema_vocabulary() -> None:
    enum = CONTRACT.response_schemas[GET_SCHEMA]["$defs"]["status"]["enum"]
    assert sorted(CONTRACT.status_projection.values()) == sorted(enum)
    assert CONTRACT.status_projection == {
        "submitted": "queued",
        "processing": "in_progress",
        "succeeded": "completed",
        "failed": "failed",
    }


@pytest.mark.parametrize("key", sorted(CONTRACT.errors), ids=str)
def test_every_catalogued_error_renders_a_valid_error_object(key: str) -> None:
    spec = CONTRACT.errors[key]
    assert 400 <= spec.http_status <= 599
    body = {
        "error": {
            "message": spec.render_message(detail="x", param="p", rule="r", task_id="t"),
            "type": spec.type,
            "param": None,
            "code": spec.code,
        }
    }
    CONTRACT.error_validator().validate(body)
    assert "{" not in str(body["error"]["message"]), "every placeholder is filled"


@pytest.mark.parametrize("rule", CONTRACT.models["kling-v2-6"].rules, ids=lambda r: r.id)
def test_every_rule_names_a_field_an_error_and_a_source(rule: Any) -> None:
    form_fields = {f["name"] for f in CONTRACT.models["kling-v2-6"].form["fields"]}
    assert rule.param in form_fields
    assert CONTRACT.errors[rule.error].http_status == 400
    assert rule.source
    assert rule.id.split(".")[0] in form_fields


def test_openapi_document_is_valid_openapi_3_1() -> None:
    document = build_openapi(CONTRACT)
    validate_openapi(document)
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {op.path for op in CONTRACT.operations.values()}


def test_openapi_lists_every_catalogued_error_of_each_operation() -> None:
    document = build_openapi(CONTRACT)
    for op in CONTRACT.operations.values():
        responses = document["paths"][op.path][op.method.lower()]["responses"]
        for key in op.errors:
            assert str(CONTRACT.errors[key].http_status) in responses, (op.id, key)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    shutil.copytree(CONTRACT.root, root)
    return root


def _edit(path: Path, change: Callable[[Any], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


RULES = "gateway/models/kling-v2-6/rules.json"
BREAKAGES = [
    pytest.param(
        RULES,
        lambda d: d["rules"][0].update(error="no_such_error"),
        "unknown error 'no_such_error'",
        id="rule-unknown-error",
    ),
    pytest.param(RULES, lambda d: d["rules"].append(dict(d["rules"][0])), "duplicate id", id="rule-duplicate-id"),
    pytest.param(RULES, lambda d: d["rules"][0].update(kind="magic"), "unknown kind 'magic'", id="rule-unknown-kind"),
    pytest.param(
        RULES,
        lambda d: d["rules"][0].update(when={"type": 12}),
        "not a valid draft 2020-12 schema",
        id="rule-bad-schema",
    ),
    pytest.param(RULES, lambda d: d["rules"][0].pop("source"), "missing 'source'", id="rule-without-source"),
    pytest.param(
        "gateway/index.json",
        lambda d: d["operations"]["video_generations.get"]["errors"].append("nope"),
        "unknown error 'nope'",
        id="operation-unknown-error",
    ),
    pytest.param(
        "gateway/index.json",
        lambda d: d["status_projection"].pop("failed"),
        "status_projection covers",
        id="projection-misses-status",
    ),
    pytest.param(
        "gateway/models/kling-v2-6/form.json",
        lambda d: d.update(model="kling-v9"),
        "model is 'kling-v9'",
        id="form-wrong-model",
    ),
]


@pytest.mark.parametrize(("relpath", "change", "message"), BREAKAGES)
def test_loader_refuses_a_broken_contract_and_names_the_file(
    tmp_path: Path, relpath: str, change: Callable[[Any], None], message: str
) -> None:
    root = _copy(tmp_path)
    _edit(root / relpath, change)
    with pytest.raises(ContractError, match=message) as raised:
        load_contract("gateway", root)
    assert relpath.rsplit("/", 1)[-1] in str(raised.value)


def test_loader_reports_invalid_json_with_its_position(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "gateway" / "errors.json").write_text('{"errors": ', encoding="utf-8")
    with pytest.raises(ContractError, match=r"errors.json: not valid JSON"):
        load_contract("gateway", root)


def test_a_contract_file_of_the_wrong_shape_is_a_contract_error(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _edit(root / "gateway" / "errors.json", lambda d: d.update(errors=[]))
    with pytest.raises(ContractError, match="malformed contract data"):
        load_contract("gateway", root)
