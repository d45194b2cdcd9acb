"""The official face's contract data (contracts/official/) is whole, consistent and says what the
official Kling API says.

The data is read directly with ``json`` and ``jsonschema``, not through ``load_contract``: these
tests hold the folder to its promises whatever loader reads it. ``judge`` below applies a model's
derived request schema and named rules the way contracts/README.md describes (schema, then the
rules in order on the body with defaults applied; warnings on the body as sent), so the example
requests test the data's meaning, not only its shape. Image content rules are left to the
fake's image checks.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from PIL import Image
from referencing import Registry, Resource

from mockserver.contract import contracts_root

ROOT = contracts_root()
FACE = ROOT / "official"
INDEX = json.loads((FACE / "index.json").read_text(encoding="utf-8"))
CATALOGUE = json.loads((FACE / "errors.json").read_text(encoding="utf-8"))
ERRORS: dict[str, Any] = CATALOGUE["errors"]
CAPABILITIES = json.loads((FACE / "capabilities.json").read_text(encoding="utf-8"))
LIFECYCLE = json.loads((ROOT / "lifecycle.json").read_text(encoding="utf-8"))
GATEWAY_ERRORS = json.loads((ROOT / "gateway" / "errors.json").read_text(encoding="utf-8"))

JSON_FILES = sorted(FACE.rglob("*.json"))
SCHEMA_FILES = sorted(FACE.rglob("*.schema.json"))
SOURCE_LABELS = ("official API docs", "public client behaviour", "api-brief", "decision")

#: api-brief §2.6, the whole official table: (code, HTTP status)
OFFICIAL_TABLE = {
    (1000, 401),
    (1001, 401),
    (1002, 401),
    (1003, 401),
    (1004, 401),
    (1100, 429),
    (1101, 429),
    (1102, 429),
    (1103, 403),
    (1200, 400),
    (1201, 400),
    (1202, 404),
    (1203, 404),
    (1300, 400),
    (1301, 400),
    (1302, 429),
    (1303, 429),
    (1304, 429),
    (5000, 500),
    (5001, 503),
    (5002, 504),
}

#: face-neutral fault name -> the official code it must produce
FAULT_CODES = {
    "rate_limited": 1302,
    "account_exception": 1100,
    "in_arrears": 1101,
    "resource_exhausted": 1102,
    "no_permission": 1103,
    "platform_policy": 1300,
    "content_safety": 1301,
    "concurrency_exceeded": 1303,
    "ip_not_allowed": 1304,
    "internal_error": 5000,
    "unavailable": 5001,
    "timeout": 5002,
}

#: error keys that mean the same on both faces, so a fault plan or a check names one key everywhere
SHARED_KEYS = [
    "missing_api_key",
    "invalid_api_key",
    "unsupported_content_type",
    "invalid_json",
    "invalid_parameter",
    "rule_violation",
    "unknown_field",
    "model_not_found",
    "body_too_large",
    "insufficient_user_quota",
    "rate_limited",
    "upstream_error",
    "upstream_unavailable",
    "fail_to_fetch_task",
    "task_not_exist",
    "not_found",
    "method_not_allowed",
    "media_not_found",
    "link_expired",
    "range_not_satisfiable",
    "admin_forbidden",
    "admin_cross_origin",
    "invalid_admin_request",
]

MODELS = [
    "kling-v1",
    "kling-v1-5",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
    "kling-v3",
]

OPERATIONS = {
    "text2video.create": ("POST", "/v1/videos/text2video", "task.create"),
    "image2video.create": ("POST", "/v1/videos/image2video", "task.create"),
    "text2video.get": ("GET", "/v1/videos/text2video/{task_id}", "task.get"),
    "image2video.get": ("GET", "/v1/videos/image2video/{task_id}", "task.get"),
    "text2video.list": ("GET", "/v1/videos/text2video", "task.list"),
    "image2video.list": ("GET", "/v1/videos/image2video", "task.list"),
    "account.costs": ("GET", "/account/costs", "account.costs"),
    "media.get": ("GET", "/__media__/official/{file}", "media.get"),
}


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(json path, key, value) of every member of a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}/{i}")


def _rel(path: Path) -> str:
    return str(path.relative_to(FACE))


# -- files and schemas -------------------------------------------------------------------------


@pytest.mark.parametrize("path", JSON_FILES, ids=_rel)
def test_every_file_is_json_with_a_top_level_object(path: Path) -> None:
    assert isinstance(_read(path), dict)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=_rel)
def test_every_schema_is_valid_draft_2020_12_with_an_id_in_the_face(path: Path) -> None:
    schema = _read(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://kling-testkit.dev/contracts/official/{_rel(path)}"


def _registry() -> Registry[Any]:
    resources = [(s["$id"], Resource.from_contents(s)) for s in map(_read, SCHEMA_FILES)]
    return Registry().with_resources(resources)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=_rel)
def test_every_ref_of_a_schema_resolves(path: Path) -> None:
    schema = _read(path)
    resolver = _registry().resolver(base_uri=schema["$id"])
    refs = [value for _, key, value in _walk(schema) if key == "$ref"]
    for ref in refs:
        assert resolver.lookup(ref).contents is not None, ref


def _pointer(document: Any, ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_every_ref_inside_index_points_into_it() -> None:
    refs = [value for _, key, value in _walk(INDEX) if key == "$ref"]
    assert refs, "the list operations name their paging bounds by reference"
    for ref in refs:
        Draft202012Validator.check_schema(_pointer(INDEX, ref))


def _named_files() -> Iterator[str]:
    yield CATALOGUE["envelope"]
    yield INDEX["envelope"]["schema"]
    yield INDEX["callbacks"]["body"]
    yield from (v for k, v in INDEX["derivation"].items() if not k.startswith("$"))
    for spec in INDEX["models"].values():
        yield spec["form"]
        yield spec["rules"]
        yield from spec["requests"].values()
    for op in INDEX["operations"].values():
        yield from (rel for rel in op["responses"].values() if rel != "binary")


@pytest.mark.parametrize("relpath", sorted(set(_named_files())))
def test_every_file_the_index_and_catalogue_name_exists(relpath: str) -> None:
    assert (FACE / relpath).is_file()


def test_every_response_schema_is_named_by_an_operation_the_catalogue_or_the_callbacks() -> None:
    named = set(_named_files())
    on_disk = {f"responses/{p.name}" for p in (FACE / "responses").glob("*.schema.json")}
    assert on_disk - named == {"responses/task.schema.json"}  # the part the others reference


# -- sources -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", JSON_FILES, ids=_rel)
def test_every_source_names_one_of_the_known_kinds_of_source(path: Path) -> None:
    sources = [(where, value) for where, key, value in _walk(_read(path)) if key == "source" and isinstance(value, str)]
    assert sources or path.name.endswith(".schema.json")
    for where, value in sources:
        assert value.startswith(SOURCE_LABELS), f"{where}: {value!r}"


@pytest.mark.parametrize("path", JSON_FILES, ids=_rel)
def test_every_decision_carries_its_source(path: Path) -> None:
    for where, key, value in _walk(_read(path)):
        if key == "decisions":
            for entry in value:
                assert entry["decision"], where
                assert entry["source"].startswith(SOURCE_LABELS), where


FORM = _read(FACE / "form.json")


@pytest.mark.parametrize("field", FORM["fields"], ids=lambda f: f["name"])
def test_every_field_of_the_table_has_published_text_and_a_source(field: Mapping[str, Any]) -> None:
    assert field["published"]
    assert field["source"].startswith(SOURCE_LABELS)


# -- index ---------------------------------------------------------------------------------------


def test_index_names_the_face_and_the_three_kling_hosts() -> None:
    assert INDEX["face"] == "official"
    assert INDEX["base_urls"] == [
        "https://api-singapore.klingai.com",
        "https://api-beijing.klingai.com",
        "https://api.klingai.com",
    ]


def test_operations_are_exactly_the_official_routes_with_their_neutral_verbs() -> None:
    found = {op_id: (op["method"], op["path"], op["verb"]) for op_id, op in INDEX["operations"].items()}
    assert found == OPERATIONS


@pytest.mark.parametrize("op_id", sorted(INDEX["operations"]))
def test_every_error_an_operation_lists_is_catalogued(op_id: str) -> None:
    errors = INDEX["operations"][op_id]["errors"]
    assert errors
    assert [e for e in errors if e not in ERRORS] == []
    assert len(set(errors)) == len(errors)


@pytest.mark.parametrize("op_id", [o for o in sorted(INDEX["operations"]) if o.endswith(".create")])
def test_a_create_names_its_kind_and_its_kind_has_request_schemas(op_id: str) -> None:
    mode = INDEX["operations"][op_id]["mode"]
    assert op_id == f"{mode}.create"
    assert any(mode in spec["requests"] for spec in INDEX["models"].values())


def test_every_api_operation_can_answer_every_auth_error() -> None:
    auth = set(INDEX["auth"]["errors"].values())
    for op_id, op in INDEX["operations"].items():
        if op.get("auth", True):
            assert auth <= set(op["errors"]), op_id


def test_auth_errors_map_to_codes_1000_to_1004() -> None:
    codes = {case: ERRORS[key]["code"] for case, key in INDEX["auth"]["errors"].items()}
    assert codes == {
        "missing": 1001,
        "malformed": 1002,
        "bad_signature": 1000,
        "unknown_access_key": 1000,
        "not_yet_valid": 1003,
        "expired": 1004,
    }


def test_auth_is_hs256_with_a_default_pair_a_clock_skew_and_no_default_api_key() -> None:
    auth = INDEX["auth"]
    assert auth["jwt"]["alg"] == "HS256"
    assert auth["jwt"]["issuer_claim"] == "iss"
    assert set(auth["jwt"]["checked_claims"]) == {"exp", "nbf"}
    assert 0 < auth["jwt"]["clock_skew_seconds"] <= 60
    assert auth["default_keys"] == [{"access_key": "ak-test", "secret_key": "sk-test-secret-key-for-kling-testkit"}]
    assert auth["api_keys"] == []


def test_request_section_chooses_the_model_by_model_name_then_model_then_kling_v1() -> None:
    request = INDEX["request"]
    assert (request["model_field"], request["model_aliases"], request["default_model"]) == (
        "model_name",
        ["model"],
        "kling-v1",
    )
    assert request["mode_from"] == "operation"


def test_request_rules_name_catalogued_errors() -> None:
    for name, rule in INDEX["request_rules"].items():
        if name.startswith("$"):
            continue
        assert rule.get("warning") or rule["error"] in ERRORS, name


def test_task_ids_are_18_digit_numeric_strings() -> None:
    spec = INDEX["task_id"]
    assert (spec["prefix"], spec["alphabet"], spec["length"]) == ("", "0123456789", 18)
    assert set(spec["first_alphabet"]) <= set(spec["alphabet"]) - {"0"}


def test_status_projection_covers_the_lifecycle_and_speaks_the_task_schemas_vocabulary() -> None:
    projection = {k: v for k, v in INDEX["status_projection"].items() if k != "source"}
    assert set(projection) == set(LIFECYCLE["statuses"])
    assert projection["succeeded"] == "succeed"
    enum = _read(FACE / "responses" / "task.schema.json")["$defs"]["status"]["enum"]
    assert sorted(projection.values()) == sorted(enum)


def test_timestamps_are_milliseconds_and_links_live_30_days() -> None:
    assert INDEX["timestamps"]["unit"] == "milliseconds"
    assert INDEX["media"]["ttl_seconds"] == 30 * 24 * 3600
    assert INDEX["media"]["path"] == INDEX["operations"]["media.get"]["path"]


def test_paging_bounds_are_the_official_ones() -> None:
    paging = INDEX["limits"]["paging"]
    names = ("pageNum", "pageSize")
    bounds = {name: (paging[name]["minimum"], paging[name]["maximum"], paging[name]["default"]) for name in names}
    assert bounds == {"pageNum": (1, 1000, 1), "pageSize": (1, 500, 30)}
    for op_id in ("text2video.list", "image2video.list"):
        query = INDEX["operations"][op_id]["query"]
        assert all(_pointer(INDEX, query[n]["$ref"]) is paging[n] for n in names)


def test_concurrency_and_callbacks_are_bounded_and_name_catalogued_things() -> None:
    assert INDEX["concurrency"]["slots_per_account"] >= 1
    assert ERRORS[INDEX["concurrency"]["error"]]["code"] == 1303
    callbacks = INDEX["callbacks"]
    assert callbacks["allowed_hosts"] == ["127.0.0.1", "::1", "localhost"]
    assert 1 <= len(callbacks["retry_delays_seconds"]) <= 5
    assert callbacks["retry_delays_seconds"] == sorted(callbacks["retry_delays_seconds"])


def test_mount_prefixes_include_new_apis_kling_and_a_proxy() -> None:
    mounts = {m["prefix"]: m["auth"] for m in INDEX["mounts"]["prefixes"]}
    assert mounts == {"": "official", "/kling": "gateway", "/proxy/kling": "official"}


# -- errors --------------------------------------------------------------------------------------


def test_the_error_table_has_exactly_the_official_codes_and_statuses() -> None:
    official = {(e["code"], e["http_status"]) for e in ERRORS.values() if not e.get("extension")}
    assert official == OFFICIAL_TABLE


def test_the_fakes_own_answers_reuse_codes_of_the_official_table() -> None:
    codes = {code for code, _ in OFFICIAL_TABLE}
    extensions = {key: e["code"] for key, e in ERRORS.items() if e.get("extension")}
    assert set(extensions) >= {"body_too_large", "media_not_found", "link_expired", "range_not_satisfiable"}
    assert set(extensions.values()) <= codes
    assert ERRORS["body_too_large"]["http_status"] == 413


@pytest.mark.parametrize("key", sorted(ERRORS))
def test_every_error_has_an_integer_code_and_renders_a_valid_error_body(key: str) -> None:
    entry = ERRORS[key]
    assert type(entry["code"]) is int
    assert entry["source"].startswith(SOURCE_LABELS)
    message = entry["message"].format(detail="x", param="p", rule="r", task_id="123")
    body = {
        "code": entry["code"],
        "message": message,
        "request_id": "0b0e5c1e-0000-4000-8000-000000000000",
        "data": None,
    }
    validator("responses/error.schema.json").validate(body)


@pytest.mark.parametrize("key", SHARED_KEYS)
def test_keys_shared_with_the_gateway_exist_on_both_faces(key: str) -> None:
    assert key in ERRORS
    assert key in GATEWAY_ERRORS["errors"]


@pytest.mark.parametrize(("fault", "code"), sorted(FAULT_CODES.items()))
def test_every_neutral_fault_maps_to_an_error_with_its_official_code(fault: str, code: int) -> None:
    assert ERRORS[CATALOGUE["faults"][fault]]["code"] == code


def test_faults_name_only_catalogued_errors() -> None:
    faults = {k: v for k, v in CATALOGUE["faults"].items() if not k.startswith("$")}
    assert set(faults) >= set(FAULT_CODES)
    assert set(faults.values()) <= set(ERRORS)


def test_kling_sends_no_retry_after() -> None:
    assert [k for k, e in ERRORS.items() if e.get("retry_after") is not None] == []


def test_task_failures_use_the_gateways_reasons_and_a_real_message() -> None:
    failures = {k: v for k, v in CATALOGUE["task_failures"].items() if not k.startswith("$")}
    gateway = {k for k in GATEWAY_ERRORS["task_failures"] if not k.startswith("$")}
    assert set(failures) == gateway
    assert failures["content_policy"]["message"] == "Failure to pass the risk control system"
    assert all(f["message"] and f["source"] for f in failures.values())


# -- models and capability map -----------------------------------------------------------------


def test_the_model_list_is_the_official_one_in_index_and_capability_map() -> None:
    assert list(INDEX["models"]) == MODELS
    assert list(CAPABILITIES["models"]) == MODELS
    assert INDEX["request"]["default_model"] in MODELS


@pytest.mark.parametrize("model", MODELS)
def test_every_capability_row_decides_every_feature(model: str) -> None:
    row = CAPABILITIES["models"][model]
    assert set(row["features"]) == set(CAPABILITIES["features"])
    for name, support in row["features"].items():
        assert support is False or support == "unlisted" or isinstance(support, dict), (name, support)
    assert set(row["sound_by_mode"]) == set(row["values"]["mode"])
    assert row["source"].startswith(SOURCE_LABELS)


def test_multi_shot_is_offered_by_kling_v3_only_and_merely_tolerated_on_kling_v2_6() -> None:
    support = {m: CAPABILITIES["models"][m]["features"]["multi_shot"] for m in MODELS}
    assert support.pop("kling-v3") == {}
    assert support.pop("kling-v2-6") == "unlisted"
    assert set(map(str, support.values())) == {"False"}


def test_cfg_scale_is_ignored_by_exactly_the_v2_and_later_models() -> None:
    ignoring = [m for m in MODELS if "cfg_scale" in CAPABILITIES["models"][m].get("ignored", {})]
    assert ignoring == [m for m in MODELS if not m.startswith("kling-v1")]


# -- requests: the derived kling-v2-6 schemas and rules --------------------------------------


@dataclass(frozen=True)
class Verdict:
    refused_by: str | None  # a rule id, or "schema:<field path>"
    warnings: tuple[str, ...]


def _valid(schema: Mapping[str, Any], instance: Any) -> bool:
    return Draft202012Validator(schema).is_valid(instance)


def _applies(rule: Mapping[str, Any], mode: str) -> bool:
    return mode in rule.get("modes", [mode])


def judge(model: str, mode: str, body: Mapping[str, Any]) -> Verdict:
    """What the contract says about ``body`` sent to ``model``'s ``mode`` create."""
    spec = INDEX["models"][model]
    schema = _read(FACE / spec["requests"][mode])
    rules = _read(FACE / spec["rules"])["rules"]
    form = _read(FACE / spec["form"])
    warnings = tuple(
        r["id"]
        for r in rules
        if r.get("warning") and _applies(r, mode) and _valid(r["when"], body) and not _valid(r["then"], body)
    )
    error = best_match(Draft202012Validator(schema).iter_errors(body))
    if error is not None:
        return Verdict("schema:" + ".".join(map(str, error.absolute_path)), warnings)
    full = {**{f["name"]: f["default"] for f in form["fields"] if "default" in f}, **body}
    for rule in rules:
        if rule.get("warning") or not _applies(rule, mode):
            continue
        if rule["kind"] == "requires" and _valid(rule["when"], full) and not _valid(rule["then"], full):
            return Verdict(rule["id"], warnings)
        if rule["kind"] == "sum_equals" and _valid(rule.get("when", {}), full):
            assert rule["coerce"] == "integer"
            total = sum(int(item[rule["item_field"]]) for item in full[rule["items"]])
            if total != int(full[rule["total"]]):
                return Verdict(rule["id"], warnings)
    return Verdict(None, warnings)


def _png_base64(width: int = 640, height: int = 360) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


PNG = _png_base64()
URL = "https://example.com/first.jpg"
V26 = {"model_name": "kling-v2-6"}
CUSTOMIZE = {
    **V26,
    "multi_shot": True,
    "shot_type": "customize",
    "multi_prompt": [
        {"index": 1, "prompt": "A fox runs through snow", "duration": "2"},
        {"index": 2, "prompt": "The fox stops and looks back", "duration": "3"},
    ],
    "duration": "5",
}
PUBLIC_CLIENT_T2V = {
    "model_name": "kling-v2-6",
    "prompt": "A red fox running through fresh snow at dawn, cinematic",
    "negative_prompt": "",
    "cfg_scale": 0.5,
    "mode": "std",
    "aspect_ratio": "16:9",
    "duration": "5",
    "callback_url": "",
    "external_task_id": "",
}

ACCEPTED = [
    pytest.param("text2video", PUBLIC_CLIENT_T2V, ("cfg_scale.ignored",), id="public-client-text2video"),
    pytest.param(
        "text2video",
        {"model": "kling-v2-6", "prompt": "x", "mode": "pro", "sound": "on", "duration": "10"},
        (),
        id="legacy-model-alias-pro-with-sound",
    ),
    pytest.param(
        "image2video",
        {**V26, "image": PNG, "prompt": "the waves roll in", "mode": "pro", "duration": "5", "aspect_ratio": "16:9"},
        ("aspect_ratio.ignored",),
        id="image2video-raw-base64-with-aspect-ratio",
    ),
    pytest.param(
        "image2video",
        {**V26, "image": URL, "image_tail": URL, "mode": "pro", "prompt": "day turns to night"},
        (),
        id="first-and-last-frame-pro-silent",
    ),
    pytest.param("image2video", {**V26, "image_tail": URL, "mode": "pro", "prompt": "x"}, (), id="last-frame-only"),
    pytest.param("text2video", CUSTOMIZE, ("multi_shot.not_in_capability_map",), id="multi-shot-customize"),
    pytest.param(
        "text2video",
        {**V26, "multi_shot": "true", "shot_type": "intelligence", "prompt": "a day in a city"},
        ("multi_shot.not_in_capability_map", "multi_shot.string"),
        id="multi-shot-string-true-intelligence",
    ),
    pytest.param(
        "text2video",
        {
            **CUSTOMIZE,
            "multi_prompt": [{"index": 0, "prompt": "a", "duration": 4}, {"prompt": "b", "duration": "6"}],
            "duration": 10,
        },
        ("multi_shot.not_in_capability_map", "duration.integer", "multi_prompt.integer_duration"),
        id="integer-durations-and-index-from-0",
    ),
    pytest.param(
        "text2video",
        {**V26, "prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": 5, "pan": 0}}},
        ("camera_control.not_in_capability_map",),
        id="camera-control-simple-one-axis",
    ),
    pytest.param(
        "text2video",
        {**V26, "prompt": "x", "camera_control": {"type": "forward_up"}},
        ("camera_control.not_in_capability_map",),
        id="camera-control-preset",
    ),
    pytest.param(
        "image2video",
        {
            **V26,
            "image": URL,
            "prompt": "x",
            "mode": "pro",
            "sound": "on",
            "voice_list": [{"voice_id": "829824295735410756"}],
        },
        (),
        id="voice-control-pro",
    ),
    pytest.param(
        "text2video",
        {
            **V26,
            "prompt": "x",
            "watermark_info": {"enabled": True},
            "external_task_id": "order-42",
            "callback_url": "http://127.0.0.1:9/cb",
        },
        (),
        id="watermark-external-id-callback",
    ),
    pytest.param(
        "text2video",
        {**V26, "prompt": "x", "multi_prompt": [{"prompt": "y", "duration": "5"}]},
        ("multi_prompt.ignored",),
        id="multi-prompt-without-multi-shot-is-ignored",
    ),
]


@pytest.mark.parametrize(("mode", "body", "warnings"), ACCEPTED)
def test_kling_v2_6_accepts_what_real_clients_send(
    mode: str, body: Mapping[str, Any], warnings: tuple[str, ...]
) -> None:
    assert judge("kling-v2-6", mode, body) == Verdict(None, warnings)


def test_a_body_without_model_is_kling_v1_which_takes_cfg_scale_without_a_warning() -> None:
    body = {"prompt": "x", "cfg_scale": 0.7, "mode": "std", "duration": "10", "aspect_ratio": "9:16"}
    assert judge(INDEX["request"]["default_model"], "text2video", body) == Verdict(None, ())


TOO_LONG_SHOT = [{"prompt": "p" * 513, "duration": "5"}]
REFUSED = [
    pytest.param(
        "text2video", {**V26, "prompt": "x", "duration": "7"}, "schema:duration", id="duration-outside-capability"
    ),
    pytest.param("text2video", {**V26, "prompt": "x", "duration": 7}, "schema:duration", id="integer-duration-outside"),
    pytest.param(
        "text2video",
        {**CUSTOMIZE, "multi_prompt": TOO_LONG_SHOT},
        "schema:multi_prompt.0.prompt",
        id="shot-prompt-over-512",
    ),
    pytest.param(
        "text2video",
        {**CUSTOMIZE, "multi_prompt": [{"prompt": "a", "duration": "0"}]},
        "schema:multi_prompt.0.duration",
        id="shot-duration-zero",
    ),
    pytest.param(
        "text2video",
        {**V26, "prompt": "x", "watermark_info": [{"enabled": True}]},
        "schema:watermark_info",
        id="watermark-as-array",
    ),
    pytest.param(
        "text2video", {**V26, "model": "kling-v1", "prompt": "x"}, "schema:model", id="model-and-model-name-disagree"
    ),
    pytest.param("text2video", {**V26, "prompt": "x", "promt": "typo"}, "schema:", id="unknown-field-strict"),
    pytest.param(
        "text2video",
        {**V26, "prompt": "x", "callback_url": "ftp://host/cb"},
        "schema:callback_url",
        id="callback-not-http",
    ),
    pytest.param(
        "text2video", {**V26, "prompt": "x", "multi_shot": "yes"}, "schema:multi_shot", id="multi-shot-not-a-boolean"
    ),
    pytest.param(
        "text2video", {**V26, "prompt": "x", "sound": "on", "mode": "std"}, "sound.requires_pro", id="sound-on-std"
    ),
    pytest.param("text2video", {**V26, "prompt": "x", "sound": "on"}, "sound.requires_pro", id="sound-on-default-mode"),
    pytest.param("text2video", {**V26}, "prompt.required", id="no-prompt"),
    pytest.param("text2video", {**V26, "prompt": ""}, "prompt.required", id="empty-prompt"),
    pytest.param(
        "text2video",
        {**V26, "multi_shot": True, "prompt": "x"},
        "shot_type.required_with_multi_shot",
        id="multi-shot-without-shot-type",
    ),
    pytest.param(
        "text2video",
        {**V26, "multi_shot": True, "shot_type": "customize"},
        "multi_prompt.required_with_customize",
        id="customize-without-shots",
    ),
    pytest.param("text2video", {**CUSTOMIZE, "duration": "10"}, "multi_prompt.durations_sum", id="shots-do-not-add-up"),
    pytest.param(
        "text2video",
        {**V26, "prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": 5, "pan": 2}}},
        "camera_control.one_axis",
        id="camera-two-axes",
    ),
    pytest.param(
        "text2video",
        {**V26, "prompt": "x", "camera_control": {"config": {"zoom": 0}}},
        "camera_control.one_axis",
        id="camera-no-axis",
    ),
    pytest.param(
        "text2video",
        {**V26, "prompt": "x", "camera_control": {"type": "simple"}},
        "camera_control.config_required",
        id="camera-simple-without-config",
    ),
    pytest.param(
        "text2video",
        {**V26, "prompt": "x", "camera_control": {"type": "down_back", "config": {"zoom": 1}}},
        "camera_control.config_only_with_simple",
        id="camera-config-with-preset",
    ),
    pytest.param("image2video", {**V26, "prompt": "x"}, "image.required", id="image2video-without-any-frame"),
    pytest.param(
        "image2video",
        {**V26, "image": URL, "image_tail": URL, "prompt": "x"},
        "image_tail.requires_pro",
        id="last-frame-std",
    ),
    pytest.param(
        "image2video",
        {**V26, "image": URL, "image_tail": URL, "prompt": "x", "mode": "pro", "sound": "on"},
        "image_tail.requires_silent",
        id="last-frame-with-sound",
    ),
    pytest.param(
        "image2video",
        {
            **V26,
            "image": URL,
            "image_tail": URL,
            "mode": "pro",
            "camera_control": {"type": "forward_up"},
            "prompt": "x",
        },
        "image_tail.excludes_camera_control",
        id="last-frame-and-camera",
    ),
    pytest.param(
        "image2video",
        {**V26, "image": URL, "image_tail": URL, "mode": "pro", "static_mask": URL, "prompt": "x"},
        "image_tail.excludes_masks",
        id="last-frame-and-mask",
    ),
    pytest.param(
        "image2video",
        {**CUSTOMIZE, "image": URL, "image_tail": URL, "mode": "pro"},
        "image_tail.excludes_multi_shot",
        id="last-frame-and-multi-shot",
    ),
    pytest.param(
        "image2video",
        {**V26, "image": URL, "prompt": "x", "voice_list": [{"voice_id": "v"}]},
        "voice_list.requires_pro",
        id="voice-std",
    ),
    pytest.param(
        "image2video",
        {
            **V26,
            "image": URL,
            "prompt": "x",
            "mode": "pro",
            "voice_list": [{"voice_id": "v"}],
            "element_list": [{"element_id": 7}],
        },
        "voice_list.excludes_element_list",
        id="voice-and-elements",
    ),
    pytest.param(
        "image2video",
        {**V26, "image": URL, "prompt": "x", "dynamic_masks": [{"mask": URL, "trajectories": [{"x": 1, "y": 1}]}]},
        "schema:dynamic_masks.0.trajectories",
        id="trajectory-of-one-point",
    ),
]


@pytest.mark.parametrize(("mode", "body", "refused_by"), REFUSED)
def test_kling_v2_6_refuses_a_wrong_request_naming_the_rule(
    mode: str, body: Mapping[str, Any], refused_by: str
) -> None:
    assert judge("kling-v2-6", mode, body).refused_by == refused_by


#: kling-v2-6's capability map (api-brief §2.4): which (mode, sound, first+last frame) combinations exist
CAPABILITY_MAP = [
    ("std", "off", False, None),
    ("std", "on", False, "sound.requires_pro"),
    ("pro", "off", False, None),
    ("pro", "on", False, None),
    ("pro", "off", True, None),
    ("pro", "on", True, "image_tail.requires_silent"),
    ("std", "off", True, "image_tail.requires_pro"),
]


@pytest.mark.parametrize(("mode", "sound", "last_frame", "refused_by"), CAPABILITY_MAP)
@pytest.mark.parametrize("duration", ["5", "10"])
def test_kling_v2_6_follows_its_capability_map(
    mode: str, sound: str, last_frame: bool, refused_by: str | None, duration: str
) -> None:
    body = {**V26, "prompt": "x", "image": URL, "mode": mode, "sound": sound, "duration": duration}
    if last_frame:
        body["image_tail"] = URL
    assert judge("kling-v2-6", "image2video", body).refused_by == refused_by


OTHER_MODELS = [
    pytest.param(
        "kling-v1", "text2video", {"prompt": "x", "sound": "on", "mode": "pro"}, "schema:sound", id="v1-has-no-sound"
    ),
    pytest.param(
        "kling-v1",
        "text2video",
        {"prompt": "x", "multi_shot": True, "shot_type": "intelligence"},
        "multi_shot.unsupported",
        id="v1-has-no-multi-shot",
    ),
    pytest.param(
        "kling-v1",
        "image2video",
        {"image": URL, "prompt": "x", "camera_control": {"type": "forward_up"}},
        "camera_control.unsupported",
        id="v1-camera-only-text2video",
    ),
    pytest.param(
        "kling-v1-6",
        "image2video",
        {"model_name": "kling-v1-6", "image": URL, "prompt": "x", "mode": "pro", "voice_list": [{"voice_id": "v"}]},
        "voice_list.unsupported",
        id="v1-6-has-no-voice",
    ),
    pytest.param(
        "kling-v3",
        "text2video",
        {"model_name": "kling-v3", "prompt": "x", "duration": "16"},
        "schema:duration",
        id="v3-up-to-15-s",
    ),
    pytest.param(
        "kling-v3",
        "text2video",
        {"model_name": "kling-v3", "prompt": "x", "duration": "13", "sound": "on"},
        None,
        id="v3-13-s-with-sound-in-std",
    ),
]


@pytest.mark.parametrize(("model", "mode", "body", "refused_by"), OTHER_MODELS)
def test_other_models_follow_their_capability_rows(
    model: str, mode: str, body: Mapping[str, Any], refused_by: str | None
) -> None:
    assert judge(model, mode, body).refused_by == refused_by


def test_image2video_only_models_have_no_text2video_request() -> None:
    only_image = [m for m, spec in INDEX["models"].items() if list(spec["requests"]) == ["image2video"]]
    assert only_image == ["kling-v1-5", "kling-v2-1"]


# -- rules -----------------------------------------------------------------------------------------

RULE_FILES = sorted((FACE / "models").glob("*/rules.json"))


@pytest.mark.parametrize("path", RULE_FILES, ids=_rel)
def test_every_rule_is_named_uses_a_known_kind_and_blames_a_field(path: Path) -> None:
    data = _read(path)
    form = _read(path.with_name("form.json"))
    fields = {f["name"] for f in form["fields"]}
    ids = [r["id"] for r in data["rules"]]
    assert len(ids) == len(set(ids))
    for rule in data["rules"]:
        assert rule["kind"] in {"requires", "sum_equals", "image"}, rule["id"]
        assert rule["id"].split(".")[0] in fields
        assert re.split(r"[.\[]", rule["param"])[0] in fields
        assert set(rule.get("modes", [])) <= set(form["modes"])
        if rule.get("warning"):
            assert "error" not in rule, rule["id"]
            assert rule["phase"] == "before_schema", rule["id"]
        else:
            assert ERRORS[rule["error"]]["code"] == 1201, rule["id"]
        if rule["kind"] == "requires":
            Draft202012Validator.check_schema(rule["when"])
            Draft202012Validator.check_schema(rule["then"])


def test_image_rules_refuse_data_uris_and_check_the_aspect_of_the_first_frame_only() -> None:
    data = _read(FACE / INDEX["models"]["kling-v2-6"]["rules"])
    limits = data["image_limits"]
    assert limits["data_uri"] is False
    assert (limits["formats"], limits["max_bytes"], limits["min_side"]) == (["JPEG", "PNG"], 10 * 1024 * 1024, 300)
    assert (limits["min_aspect"], limits["max_aspect"]) == (0.4, 2.5)
    checks = {(r["param"], r["check"]) for r in data["rules"] if r["kind"] == "image"}
    assert ("image", "aspect_ratio") in checks
    assert ("image_tail", "aspect_ratio") not in checks
    assert {c for p, c in checks if p == "image_tail"} == {c for p, c in checks if p == "image"} - {"aspect_ratio"}


def test_output_renders_std_at_720p_and_pro_at_1080p_in_the_three_aspect_ratios() -> None:
    output = _read(FACE / INDEX["models"]["kling-v2-6"]["rules"])["output"]
    sizes = {mode: output["frame_sizes"][res] for mode, res in output["resolution_by_mode"].items()}
    assert sizes["std"]["16:9"] == [1280, 720]
    assert sizes["pro"]["16:9"] == [1920, 1080]
    assert all(set(s) == {"16:9", "9:16", "1:1"} for s in sizes.values())


# -- responses ---------------------------------------------------------------------------------------


def validator(relpath: str) -> Draft202012Validator:
    schema = _read(FACE / relpath)
    return Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


REQUEST_ID = "9d0c8a52-4f8e-4b16-9a43-5d4c4a1f3e21"
TASK: dict[str, Any] = {
    "task_id": "846713158229651513",
    "task_status": "succeed",
    "task_status_msg": "",
    "task_info": {"external_task_id": "order-42"},
    "task_result": {
        "videos": [
            {
                "id": "6f2c0b1e-6a4f-4c0e-9d3b-2b8f5d7c1a90",
                "url": "https://cdn.klingai.com/bs2/upload-kling-api/846713158229651513.mp4",
                "watermark_url": "https://cdn.klingai.com/bs2/upload-kling-api/846713158229651513-wm.mp4",
                "duration": "5.1",
            }
        ]
    },
    "watermark_info": {"enabled": True},
    "final_unit_deduction": "1",
    "created_at": 1767225600000,
    "updated_at": 1767225661000,
}
FAILED = {
    "task_id": "846713158229651514",
    "task_status": "failed",
    "task_status_msg": "Failure to pass the risk control system",
    "task_info": {},
    "created_at": 1767225600000,
    "updated_at": 1767225605000,
}


def _envelope(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "SUCCEED", "request_id": REQUEST_ID, "data": data}


def _without(mapping: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


CREATED = {k: TASK[k] for k in ("task_id", "task_info", "task_status", "created_at", "updated_at")} | {
    "task_status": "submitted"
}
COSTS = {
    "code": 0,
    "msg": "",
    "resource_pack_subscribe_infos": [
        {
            "resource_pack_name": "Video generation - 100 units",
            "resource_pack_id": "509f3fd3d4f84f0fb5f4b2b1e1f0c1a7",
            "resource_pack_type": "decreasing_total",
            "total_quantity": 100.0,
            "remaining_quantity": 99.0,
            "purchase_time": 1767225600000,
            "effective_time": 1767225600000,
            "invalid_time": 1798761600000,
            "status": "online",
        }
    ],
}

RESPONSES_OK = [
    pytest.param("responses/task.schema.json", TASK, id="task-succeed"),
    pytest.param("responses/task.schema.json", FAILED, id="task-failed"),
    pytest.param(
        "responses/task.schema.json",
        {**FAILED, "task_status": "processing", "task_status_msg": ""},
        id="task-processing",
    ),
    pytest.param("responses/callback.schema.json", TASK, id="callback-is-the-bare-task"),
    pytest.param("responses/task.get.response.schema.json", _envelope(TASK), id="get"),
    pytest.param("responses/task.create.response.schema.json", _envelope(CREATED), id="create"),
    pytest.param("responses/task.list.response.schema.json", _envelope([TASK, FAILED]), id="list"),
    pytest.param("responses/task.list.response.schema.json", _envelope([]), id="empty-list"),
    pytest.param("responses/account.costs.response.schema.json", _envelope(COSTS), id="account-costs"),
    pytest.param(
        "responses/error.schema.json",
        {"code": 1303, "message": "parallel task over resource pack limit", "request_id": REQUEST_ID, "data": None},
        id="error",
    ),
    pytest.param(
        "responses/error.schema.json",
        {"code": 1203, "message": "Resource does not exist", "request_id": REQUEST_ID},
        id="error-without-data",
    ),
]


@pytest.mark.parametrize(("relpath", "body"), RESPONSES_OK)
def test_response_schemas_accept_realistic_answers(relpath: str, body: Any) -> None:
    validator(relpath).validate(body)


RESPONSES_BAD = [
    pytest.param("responses/task.schema.json", {**TASK, "task_id": 846713158229651513}, id="numeric-task-id"),
    pytest.param("responses/task.schema.json", {**TASK, "task_status": "succeeded"}, id="gateway-status-spelling"),
    pytest.param("responses/task.schema.json", _without(TASK, "task_info"), id="no-task-info"),
    pytest.param("responses/task.schema.json", {**TASK, "created_at": 1767225600.5}, id="fractional-timestamp"),
    pytest.param(
        "responses/task.schema.json",
        {**TASK, "task_result": {"videos": [{**TASK["task_result"]["videos"][0], "duration": 5.1}]}},
        id="numeric-video-duration",
    ),
    pytest.param(
        "responses/task.schema.json",
        {**TASK, "task_result": {"videos": [{**TASK["task_result"]["videos"][0], "url": "/relative.mp4"}]}},
        id="relative-url",
    ),
    pytest.param("responses/task.schema.json", _without(TASK, "task_result"), id="succeed-without-result"),
    pytest.param("responses/task.schema.json", _without(FAILED, "task_status_msg"), id="failed-without-reason"),
    pytest.param("responses/task.schema.json", {**FAILED, "task_result": TASK["task_result"]}, id="failed-with-videos"),
    pytest.param("responses/callback.schema.json", _envelope(TASK), id="callback-with-envelope"),
    pytest.param("responses/task.get.response.schema.json", _without(_envelope(TASK), "code"), id="get-without-code"),
    pytest.param(
        "responses/task.get.response.schema.json", _without(_envelope(TASK), "request_id"), id="get-without-request-id"
    ),
    pytest.param(
        "responses/task.get.response.schema.json", {**_envelope(TASK), "code": 1203}, id="get-with-error-code"
    ),
    pytest.param(
        "responses/task.create.response.schema.json",
        _envelope({**CREATED, "task_info": None}),
        id="create-task-info-null",
    ),
    pytest.param("responses/task.list.response.schema.json", _envelope({"tasks": [TASK]}), id="list-data-not-an-array"),
    pytest.param(
        "responses/error.schema.json",
        {"message": "boom", "request_id": REQUEST_ID, "data": None},
        id="error-without-code",
    ),
    pytest.param(
        "responses/error.schema.json",
        {"code": 0, "message": "SUCCEED", "request_id": REQUEST_ID, "data": None},
        id="error-with-code-0",
    ),
    pytest.param(
        "responses/error.schema.json",
        {"code": "1303", "message": "x", "request_id": REQUEST_ID},
        id="error-code-as-string",
    ),
]


@pytest.mark.parametrize(("relpath", "body"), RESPONSES_BAD)
def test_response_schemas_refuse_what_clients_would_misread(relpath: str, body: Any) -> None:
    assert not validator(relpath).is_valid(body)
