"""Contract export and the direction-aware contract diff."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kling_testkit.contract_tools import (
    ContractLoadError,
    diff_contracts,
    diff_schema,
    export_contract,
    load_surface,
    load_surfaces,
)
from mockserver import Engine, Service, VirtualClock, load_contract
from mockserver.contract.openapi import build_openapi

# (old schema, new schema, direction, expected (detail fragment, breaking) pairs)
SCHEMA_CHANGES = [
    pytest.param(
        {"enum": ["std", "pro"]}, {"enum": ["std"]}, "request", [("removed value", True)], id="req-enum-removed"
    ),
    pytest.param({"enum": ["std"]}, {"enum": ["std", "pro"]}, "request", [("added value", False)], id="req-enum-added"),
    pytest.param({"enum": ["a"]}, {"enum": ["a", "b"]}, "response", [("added value", True)], id="resp-enum-added"),
    pytest.param({"enum": ["a", "b"]}, {"enum": ["a"]}, "response", [("removed value", False)], id="resp-enum-removed"),
    pytest.param({"maximum": 10}, {"maximum": 5}, "request", [("limit tightened", True)], id="req-max-tightened"),
    pytest.param({"maxLength": 5}, {"maxLength": 9}, "request", [("limit loosened", False)], id="req-max-loosened"),
    pytest.param({"minimum": 0}, {"minimum": 1}, "request", [("limit tightened", True)], id="req-min-tightened"),
    pytest.param({}, {"maxItems": 6}, "request", [("limit tightened", True)], id="req-limit-added"),
    pytest.param({"maximum": 100}, {"maximum": 200}, "response", [("limit loosened", True)], id="resp-max-loosened"),
    pytest.param({"maximum": 100}, {"maximum": 50}, "response", [("limit tightened", False)], id="resp-max-tightened"),
    pytest.param(
        {"required": ["a"], "properties": {"a": {}}},
        {"required": ["a", "b"], "properties": {"a": {}, "b": {}}},
        "request",
        [("added field 'b' (required)", False), ("new required field 'b'", True)],
        id="req-new-required-field",
    ),
    pytest.param(
        {"properties": {"a": {}}},
        {"properties": {"a": {}, "b": {}}},
        "request",
        [("added field 'b' (optional)", False)],
        id="req-added-optional-field",
    ),
    pytest.param(
        {"properties": {"a": {}, "b": {}}},
        {"properties": {"a": {}}},
        "request",
        [("removed field 'b'", True)],
        id="req-removed-field",
    ),
    pytest.param(
        {"required": ["a", "b"]},
        {"required": ["a"]},
        "response",
        [("field 'b' no longer required", True)],
        id="resp-field-no-longer-guaranteed",
    ),
    pytest.param({"type": "integer"}, {"type": "string"}, "request", [("type changed", True)], id="type-changed"),
    pytest.param({"type": "integer"}, {"type": "string"}, "response", [("type changed", True)], id="resp-type-changed"),
    pytest.param({"type": "number"}, {"type": ["number", "null"]}, "request", [("type widened", False)], id="req-wide"),
    pytest.param(
        {"type": "number"}, {"type": ["number", "null"]}, "response", [("type widened", True)], id="resp-wide"
    ),
    pytest.param(
        {"properties": {"m": {"items": {"properties": {"p": {"maxLength": 2500}}}}}},
        {"properties": {"m": {"items": {"properties": {"p": {"maxLength": 2000}}}}}},
        "request",
        [("limit tightened", True)],
        id="nested-limit",
    ),
    pytest.param({"default": "std"}, {"default": "pro"}, "request", [("default changed", True)], id="req-default"),
    pytest.param({"pattern": "^a"}, {"pattern": "^b"}, "request", [("cannot be ordered", True)], id="pattern"),
    pytest.param({"description": "x"}, {"description": "y"}, "request", [], id="docs-only"),
    pytest.param(
        {"additionalProperties": True},
        {"additionalProperties": False},
        "request",
        [("now refused", True)],
        id="req-closed",
    ),
]


@pytest.mark.parametrize(("old", "new", "direction", "expected"), SCHEMA_CHANGES)
def test_schema_changes_are_classified_by_direction(
    old: dict[str, Any], new: dict[str, Any], direction: str, expected: list[tuple[str, bool]]
) -> None:
    changes = diff_schema(old, new, direction=direction)
    assert len(changes) == len(expected), [c.line() for c in changes]
    for change, (fragment, breaking) in zip(changes, expected, strict=True):
        assert fragment in change.detail
        assert change.breaking is breaking, change.line()


def test_export_writes_openapi_schemas_and_a_manifest_that_diffs_clean(tmp_path: Path) -> None:
    contract = load_contract()
    written = export_contract(contract, tmp_path)
    assert json.loads((tmp_path / "openapi.json").read_text()) == json.loads(json.dumps(build_openapi(contract)))
    assert (tmp_path / "requests" / "kling-v2-6" / "text2video.request.schema.json").is_file()
    assert {p.name for p in written} >= {"manifest.json", "openapi.json", "error.schema.json"}
    assert diff_contracts(contract.root, tmp_path) == []
    assert diff_contracts(tmp_path, contract.root) == []
    assert load_surface(tmp_path)["statuses"] == ["queued", "in_progress", "completed", "failed"]


def _edit_json(path: Path, change: Callable[[Any], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


T2V = "gateway/models/kling-v2-6/text2video.request.schema.json"
GET = "gateway/responses/video_generations.get.response.schema.json"

FOLDER_CHANGES = [
    pytest.param(
        T2V, lambda d: d["properties"]["mode"]["enum"].remove("pro"), True, "removed value", id="enum-removed"
    ),
    pytest.param(T2V, lambda d: d["properties"]["cfg_scale"].update(maximum=2), False, "loosened", id="loosened"),
    pytest.param(
        GET, lambda d: d["$defs"]["status"]["enum"].append("cancelled"), True, "added value", id="new-status-value"
    ),
    pytest.param(
        "gateway/errors.json",
        lambda d: d["errors"]["rate_limited"].update(http_status=503),
        True,
        "http_status",
        id="error-status-changed",
    ),
    pytest.param(
        "gateway/index.json",
        lambda d: d["operations"].pop("media.get"),
        True,
        "operation removed",
        id="operation-removed",
    ),
]


@pytest.mark.parametrize(("file", "change", "breaking", "fragment"), FOLDER_CHANGES)
def test_contract_folders_diff_end_to_end(
    tmp_path: Path, file: str, change: Callable[[Any], None], breaking: bool, fragment: str
) -> None:
    old = load_contract().root
    new = tmp_path / "contracts"
    shutil.copytree(old, new)
    _edit_json(new / file, change)
    changes = diff_contracts(old, new)
    assert any(fragment in c.detail and c.breaking is breaking for c in changes), [c.line() for c in changes]
    assert any(c.breaking for c in changes) is breaking


def test_a_folder_that_is_neither_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractLoadError, match="neither a contract folder"):
        load_surface(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ContractLoadError, match="not valid JSON"):
        load_surface(tmp_path)


# -- every face ------------------------------------------------------------------------------------

O_T2V = "official/models/kling-v2-6/text2video.request.schema.json"


def _drop_operation(data: Any, op_id: str) -> None:
    data["operations"].pop(op_id)


OFFICIAL_FOLDER_CHANGES = [
    pytest.param(
        O_T2V,
        lambda d: d["properties"]["prompt"].update(maxLength=2000),
        True,
        "limit tightened",
        id="request-tightened",
    ),
    pytest.param(
        O_T2V, lambda d: d["properties"]["mode"]["enum"].append("turbo"), False, "added value", id="request-loosened"
    ),
    pytest.param(
        "official/responses/task.schema.json",
        lambda d: d["$defs"]["status"]["enum"].append("cancelled"),
        True,
        "added value",
        id="new-task-status",
    ),
    pytest.param(
        "official/errors.json",
        lambda d: d["errors"]["concurrency_exceeded"].update(code=1304),
        True,
        "code changed from 1303 to 1304",
        id="error-code-changed",
    ),
    pytest.param(
        "official/errors.json",
        lambda d: d["errors"].update(new_refusal={"http_status": 400, "code": 1205, "message": "m"}),
        False,
        "added error 'new_refusal'",
        id="error-added",
    ),
    pytest.param(
        "official/index.json",
        lambda d: _drop_operation(d, "account.costs"),
        True,
        "operation removed",
        id="operation-removed",
    ),
    pytest.param(
        "official/index.json",
        lambda d: d["limits"]["paging"]["pageSize"].update(maximum=100),
        True,
        "limit tightened: 500 -> 100",
        id="query-limit-tightened",
    ),
    pytest.param(
        "official/index.json",
        lambda d: d["operations"]["text2video.list"]["query"].update(order={"type": "string"}),
        False,
        "query parameter 'order' added (optional)",
        id="query-parameter-added",
    ),
    pytest.param(
        "official/index.json",
        lambda d: d["operations"]["account.costs"]["query"].pop("end_time"),
        True,
        "query parameter 'end_time' removed",
        id="query-parameter-removed",
    ),
    pytest.param(
        "official/index.json",
        lambda d: d["timestamps"].update(unit="seconds"),
        True,
        "timestamp unit milliseconds -> seconds",
        id="timestamp-unit",
    ),
    pytest.param(
        "official/index.json", lambda d: d["task_id"].update(length=19), True, "task id format", id="task-id-format"
    ),
]


@pytest.mark.parametrize(("file", "change", "breaking", "fragment"), OFFICIAL_FOLDER_CHANGES)
def test_official_folder_changes_are_classified_and_attributed_to_their_face(
    tmp_path: Path, file: str, change: Callable[[Any], None], breaking: bool, fragment: str
) -> None:
    old = load_contract().root
    new = tmp_path / "contracts"
    shutil.copytree(old, new)
    _edit_json(new / file, change)
    changes = diff_contracts(old, new)
    assert any(fragment in c.detail and c.breaking is breaking for c in changes), [c.line() for c in changes]
    assert any(c.breaking for c in changes) is breaking
    assert {c.face for c in changes} == {"official"}
    assert all(" official:" in c.line() for c in changes)


def test_a_removed_face_is_breaking_and_an_added_one_is_not(tmp_path: Path) -> None:
    old = load_contract().root
    new = tmp_path / "contracts"
    shutil.copytree(old, new)
    shutil.rmtree(new / "official")
    assert [(c.detail, c.breaking) for c in diff_contracts(old, new)] == [("face 'official' removed", True)]
    assert [(c.detail, c.breaking) for c in diff_contracts(new, old)] == [("face 'official' added", False)]


def test_export_of_every_face_matches_what_the_fake_serves_and_diffs_clean(tmp_path: Path) -> None:
    written = export_contract(None, tmp_path)
    served = json.loads(Service(Engine(clock=VirtualClock())).openapi_bytes)
    assert json.loads((tmp_path / "openapi.json").read_text()) == served
    assert (tmp_path / "official" / "requests" / "kling-v2-6" / "image2video.request.schema.json").is_file()
    assert (tmp_path / "official" / "responses" / "envelope.schema.json").is_file()
    assert len(written) == len({p.resolve() for p in written})
    root = load_contract().root
    assert diff_contracts(root, tmp_path) == []
    assert diff_contracts(tmp_path, root) == []
    surfaces, single = load_surfaces(tmp_path)
    assert (sorted(surfaces), single) == (["gateway", "official"], False)
    official = surfaces["official"]
    assert official["statuses"] == ["submitted", "processing", "succeed", "failed"]
    assert (official["timestamp_unit"], official["errors"]["token_expired"]["code"]) == ("milliseconds", 1004)
    assert official["operations"]["text2video.list"]["query"]["pageSize"]["maximum"] == 500


def test_a_one_face_export_is_compared_with_that_face_only(tmp_path: Path) -> None:
    export_contract(load_contract("official"), tmp_path / "official-only")
    surfaces, single = load_surfaces(tmp_path / "official-only")
    assert (list(surfaces), single) == (["official"], True)
    assert diff_contracts(load_contract().root, tmp_path / "official-only") == []
    new = tmp_path / "contracts"
    shutil.copytree(load_contract().root, new)
    _edit_json(new / "official/errors.json", lambda d: d["errors"]["token_expired"].update(http_status=403))
    [change] = diff_contracts(tmp_path / "official-only", new)
    assert (change.face, change.pointer, change.breaking) == ("official", "/token_expired/http_status", True)
