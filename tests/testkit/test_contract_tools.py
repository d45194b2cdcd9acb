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


# Every branch of the classifier that the end-to-end table does not reach, in both directions.
# (old, new, direction, [(pointer, detail fragment, breaking)])
CLASSIFIER = [
    pytest.param(
        {"type": ["string", "null"]}, {"type": "string"}, "request", [("/type", "narrowed", True)], id="req-narrowed"
    ),
    pytest.param(
        {"type": ["string", "null"]}, {"type": "string"}, "response", [("/type", "narrowed", False)], id="resp-narrowed"
    ),
    pytest.param({"type": "string"}, {}, "request", [("/type", "type changed", True)], id="type-dropped"),
    pytest.param({}, {"enum": [1]}, "request", [("/enum", "enum added", True)], id="req-enum-added"),
    pytest.param({}, {"enum": [1]}, "response", [("/enum", "enum added", False)], id="resp-enum-added"),
    pytest.param({"enum": [1]}, {}, "request", [("/enum", "enum removed", False)], id="req-enum-dropped"),
    pytest.param({"enum": [1]}, {}, "response", [("/enum", "enum removed", True)], id="resp-enum-dropped"),
    pytest.param({}, {"const": "a"}, "request", [("/const", "now fixed", True)], id="req-const-added"),
    pytest.param({"const": "a"}, {}, "request", [("/const", "no longer fixed", False)], id="req-const-dropped"),
    pytest.param({"const": "a"}, {}, "response", [("/const", "no longer fixed", True)], id="resp-const-dropped"),
    pytest.param({"const": "a"}, {"const": "b"}, "response", [("/const", "changed from", True)], id="const-changed"),
    pytest.param(
        {"required": ["a"]},
        {"required": ["a", "b"]},
        "request",
        [("/required", "new required", True)],
        id="req-required",
    ),
    pytest.param(
        {"required": ["a", "b"]},
        {"required": ["a"]},
        "response",
        [("/required", "no longer required", True)],
        id="resp-unrequired",
    ),
    pytest.param(
        {"$defs": {"x": {}}}, {"$defs": {}}, "response", [("/$defs/x", "definition removed", False)], id="def-removed"
    ),
    pytest.param(
        {"$defs": {}}, {"$defs": {"x": {}}}, "request", [("/$defs/x", "definition added", False)], id="def-added"
    ),
    pytest.param(
        {"properties": {"a": {"type": "string"}}},
        {"properties": {"a": {"type": "integer"}}},
        "request",
        [("/properties/a/type", "type changed", True)],
        id="nested-property",
    ),
    pytest.param(
        {"properties": {}},
        {"properties": {"a": {}}, "required": ["a"]},
        "request",
        [("/properties/a", "added field 'a' (required)", False), ("/required", "new required field 'a'", True)],
        id="required-field-added",
    ),
    pytest.param(
        {"additionalProperties": True},
        {"additionalProperties": False},
        "request",
        [("/additionalProperties", "now refused", True)],
        id="req-closed",
    ),
    pytest.param(
        {"additionalProperties": False},
        {"additionalProperties": True},
        "response",
        [("/additionalProperties", "now allowed", False)],
        id="resp-opened",
    ),
    pytest.param({"items": {"type": "string"}}, {}, "request", [("/items", "removed items", True)], id="items-removed"),
    pytest.param({}, {"not": {"const": 1}}, "response", [("/not", "added not", True)], id="not-added"),
    pytest.param(
        {"items": {"maximum": 5}},
        {"items": {"maximum": 4}},
        "request",
        [("/items/maximum", "tightened", True)],
        id="items-nested",
    ),
    pytest.param(
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "request",
        [("/anyOf/1/type", "type changed", True)],
        id="branches-compared-pairwise",
    ),
    pytest.param(
        {"oneOf": [{}, {}]}, {"oneOf": [{}]}, "response", [("/oneOf", "review by hand", True)], id="branch-count"
    ),
    pytest.param({"default": 1}, {"default": 2}, "response", [("/default", "changed", False)], id="resp-default"),
    pytest.param({"x-note": 1}, {"x-note": 2}, "request", [("/x-note", "x-note changed", False)], id="extension"),
    pytest.param({"minimum": 1}, {}, "request", [("/minimum", "loosened: 1 -> none", False)], id="req-limit-dropped"),
    pytest.param({"minimum": 1}, {}, "response", [("/minimum", "loosened", True)], id="resp-limit-dropped"),
    pytest.param("a", "b", "request", [("/", "changed from", True)], id="not-a-schema-object"),
    pytest.param(True, True, "request", [], id="same-boolean-schema"),
]


@pytest.mark.parametrize(("old", "new", "direction", "expected"), CLASSIFIER)
def test_the_classifier_names_the_pointer_and_the_direction_decides(
    old: Any, new: Any, direction: str, expected: list[tuple[str, str, bool]]
) -> None:
    changes = diff_schema(old, new, direction=direction)
    found = [(c.pointer, c.detail, c.breaking) for c in changes]
    assert len(found) == len(expected), found
    for (pointer, detail, breaking), (want_pointer, fragment, want_breaking) in zip(found, expected, strict=True):
        assert (pointer, breaking) == (want_pointer, want_breaking), found
        assert fragment in detail, found


def test_the_direction_must_be_named() -> None:
    with pytest.raises(ValueError, match="'request' or 'response'"):
        diff_schema({}, {}, direction="both")


def _export(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None] | None = None) -> Path:
    folder = tmp_path / name
    export_contract(load_contract(), folder)
    if change is not None:
        _edit_json(folder / "manifest.json", change)
    return folder


def _first_op(manifest: dict[str, Any]) -> dict[str, Any]:
    return dict(manifest["operations"]["video_generations.get"])


GET_RESPONSE = "responses/video_generations.get.response.schema.json"
CREATE_RESPONSE = "responses/video_generations.create.response.schema.json"

MANIFEST_CHANGES = [
    pytest.param(
        lambda m: m["operations"]["video_generations.get"].update(method="POST"), "GET -> POST", True, id="method"
    ),
    pytest.param(
        lambda m: m["operations"]["video_generations.get"]["responses"].clear(),
        "success response removed",
        True,
        id="response-removed",
    ),
    pytest.param(
        lambda m: m["operations"]["video_generations.get"]["responses"].update({"201": GET_RESPONSE}),
        "success response added",
        False,
        id="response-added",
    ),
    pytest.param(
        lambda m: m["operations"]["video_generations.get"]["responses"].update({"200": CREATE_RESPONSE}),
        f"schema {GET_RESPONSE} -> {CREATE_RESPONSE}",
        True,
        id="response-schema-swapped",
    ),
    pytest.param(
        lambda m: m["operations"]["video_generations.get"]["errors"].append("brand_new"),
        "may now answer error 'brand_new'",
        False,
        id="error-added",
    ),
    pytest.param(
        lambda m: m["operations"]["video_generations.get"]["errors"].clear(),
        "no longer answers error",
        False,
        id="error-dropped",
    ),
    pytest.param(
        lambda m: m["operations"].update({"videos.list": _first_op(m)}), "operation added", False, id="operation-added"
    ),
    pytest.param(
        lambda m: m["rules"]["kling-v2-6"].update({"new.rule": {"param": "x", "error": "e", "kind": "k"}}),
        "new named rule 'new.rule'",
        True,
        id="rule-added",
    ),
    pytest.param(
        lambda m: m["rules"]["kling-v2-6"].pop("sound.requires_pro"),
        "rule 'sound.requires_pro' removed",
        False,
        id="rule-removed",
    ),
    pytest.param(
        lambda m: m["rules"]["kling-v2-6"]["sound.requires_pro"].update(param="mode"),
        "now blames or answers differently",
        True,
        id="rule-changed",
    ),
    pytest.param(lambda m: m["errors"].pop("rate_limited"), "removed error 'rate_limited'", False, id="error-gone"),
    pytest.param(
        lambda m: m["task_failures"].update(network={"type": "t", "code": "c"}),
        "added task failure 'network'",
        False,
        id="task-failure-added",
    ),
    pytest.param(lambda m: m["statuses"].append("cancelled"), "new task status 'cancelled'", True, id="status-added"),
    pytest.param(lambda m: m["statuses"].remove("queued"), "task status 'queued' removed", False, id="status-removed"),
    pytest.param(lambda m: m["terminal"].remove("failed"), "terminal statuses", True, id="terminal-changed"),
    pytest.param(
        lambda m: m["requests"].pop("kling-v2-6/text2video"), "request mode removed", True, id="request-mode-removed"
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
    # The openai face's request schemas derive from official kling-v2-6 ("maps_onto"), so a change
    # to those is a change of both faces; every other change is the official face's alone.
    faces = {c.face for c in changes}
    assert "official" in faces
    assert faces <= {"official", "openai"}
    assert all(f" {c.face}:" in c.line() for c in changes)


def test_a_removed_face_is_breaking_and_an_added_one_is_not(tmp_path: Path) -> None:
    old = load_contract().root
    new = tmp_path / "contracts"
    shutil.copytree(old, new)
    shutil.rmtree(new / "openai")  # the official face cannot go alone: the openai face maps onto it
    assert [(c.detail, c.breaking) for c in diff_contracts(old, new)] == [("face 'openai' removed", True)]
    assert [(c.detail, c.breaking) for c in diff_contracts(new, old)] == [("face 'openai' added", False)]


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
    assert (sorted(surfaces), single) == (["gateway", "official", "openai"], False)
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


@pytest.mark.parametrize(("change", "fragment", "breaking"), MANIFEST_CHANGES)
def test_each_contract_level_change_is_classified(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], fragment: str, breaking: bool
) -> None:
    changes = diff_contracts(_export(tmp_path, "old"), _export(tmp_path, "new", change))
    matching = [c for c in changes if fragment in c.detail]
    assert matching, [c.line() for c in changes]
    assert all(c.breaking is breaking for c in matching), [c.line() for c in matching]
    assert [c.breaking for c in changes] == sorted((c.breaking for c in changes), reverse=True), "breaking first"


def test_a_request_mode_added_and_a_response_schema_removed(tmp_path: Path) -> None:
    old = _export(tmp_path, "old", lambda m: m["requests"].pop("kling-v2-6/text2video"))
    new = _export(tmp_path, "new")
    [added] = diff_contracts(old, new)
    assert (added.detail, added.breaking) == ("request mode added", False)
    (new / "responses" / "error.schema.json").unlink()
    removed = [c for c in diff_contracts(_export(tmp_path, "again"), new) if c.detail == "response schema removed"]
    assert [c.subject for c in removed] == ["responses/error.schema.json"]
    assert removed[0].breaking


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(lambda p: None, "not a folder", id="missing-folder"),
        pytest.param(lambda p: p.write_text("x"), "not a folder", id="a-file"),
        pytest.param(
            lambda p: (p.mkdir(), (p / "manifest.json").write_text('{"format": "other"}')),
            "not a kling-testkit contract export",
            id="foreign-manifest",
        ),
        pytest.param(
            lambda p: (p.mkdir(), (p / "lifecycle.json").write_text("{}")),
            "target",
            id="broken-contract-folder",
        ),
    ],
)
def test_what_is_not_a_contract_is_refused_by_name(tmp_path: Path, setup: Callable[[Path], Any], message: str) -> None:
    target = tmp_path / "target"
    setup(target)
    with pytest.raises(ContractLoadError, match=message) as refused:
        load_surface(target)
    assert str(target) in str(refused.value)


def test_an_export_missing_a_schema_file_is_refused_naming_it(tmp_path: Path) -> None:
    folder = _export(tmp_path, "export")
    schema = folder / "requests" / "kling-v2-6" / "text2video.request.schema.json"
    schema.unlink()
    with pytest.raises(ContractLoadError, match=r"text2video\.request\.schema\.json: missing"):
        load_surface(folder)
