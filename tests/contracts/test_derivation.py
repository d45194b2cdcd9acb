"""The committed request schemas (and the official face's per-model forms and rules) are exactly what the
derivation makes of their sources."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mockserver.contract import contracts_root, load_contract
from mockserver.contract.derive import (
    derive_model_form,
    derive_model_rules,
    derive_request_schema,
    derived_files,
    faces,
    render,
)

CONTRACT = load_contract()
CASES = [
    pytest.param(name, mode, rel, id=f"{name}:{mode}")
    for name, spec in CONTRACT.index["models"].items()
    for mode, rel in spec["requests"].items()
]


@pytest.mark.parametrize(("model", "mode", "relpath"), CASES)
def test_committed_schema_equals_derivation(model: str, mode: str, relpath: str) -> None:
    form = CONTRACT.models[model].form
    committed = (CONTRACT.root / "gateway" / relpath).read_text(encoding="utf-8")
    assert committed == render(derive_request_schema(form, mode)), (
        f"{relpath} drifted from form.json: run `python -m mockserver.contract.derive`"
    )


@pytest.mark.parametrize(("model", "mode", "relpath"), CASES)
def test_every_form_field_of_the_mode_is_in_the_schema(model: str, mode: str, relpath: str) -> None:
    form = CONTRACT.models[model].form
    schema = CONTRACT.models[model].request_schemas[mode]
    expected = {f["name"] for f in form["fields"] if mode in f.get("modes", [mode])}
    assert set(schema["properties"]) == expected
    assert set(schema["required"]) == {f["name"] for f in form["fields"] if f["name"] in expected and f["required"]}


def test_text2video_has_no_image_fields_and_image2video_requires_image() -> None:
    schemas = CONTRACT.models["kling-v2-6"].request_schemas
    assert not {"image", "image_tail"} & set(schemas["text2video"]["properties"])
    assert "image" in schemas["image2video"]["required"]


def test_published_defaults_and_limits_reach_the_schema() -> None:
    props = CONTRACT.models["kling-v2-6"].request_schemas["text2video"]["properties"]
    assert props["size"]["default"] == "1080P"
    assert props["cfg_scale"] == {**props["cfg_scale"], "minimum": 0, "maximum": 1, "default": 0.5}
    assert props["multi_prompt"]["items"]["properties"]["prompt"]["maxLength"] == 2500
    assert props["negative_prompt"]["maxLength"] == 2500


def test_derivation_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="no mode 'video2video'"):
        derive_request_schema(CONTRACT.models["kling-v2-6"].form, "video2video")


def test_every_decision_names_its_source() -> None:
    form = CONTRACT.models["kling-v2-6"].form
    decisions = [d for f in form["fields"] for d in f.get("decisions", [])]
    assert decisions, "the form records the brief's Decisions"
    assert all(d["source"] and d["decision"] for d in decisions), json.dumps(decisions, indent=1)


# -- every face: the committed derived files, including the official face's per-model files ----

ROOT = contracts_root()
DERIVED = {path: text for face in faces(ROOT) for path, text in derived_files(ROOT, face).items()}
OFFICIAL = ROOT / "official"
CAPABILITIES = json.loads((OFFICIAL / "capabilities.json").read_text(encoding="utf-8"))


def test_faces_are_the_folders_with_an_index() -> None:
    assert faces(ROOT) == ["gateway", "official", "openai"]


@pytest.mark.parametrize("path", sorted(DERIVED), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_derived_file_is_committed_exactly_as_derived(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == DERIVED[path], (
        f"{path.relative_to(ROOT)} drifted from its sources: run `python -m mockserver.contract.derive`"
    )


def test_the_official_models_folder_holds_only_derived_files() -> None:
    on_disk = set((OFFICIAL / "models").rglob("*.json"))
    assert on_disk == {p for p in DERIVED if OFFICIAL / "models" in p.parents}
    assert len(on_disk) == sum(2 + len(row["modes"]) for row in CAPABILITIES["models"].values())


def _official(model: str, name: str) -> Any:
    return json.loads((OFFICIAL / "models" / model / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("model", sorted(CAPABILITIES["models"]))
def test_an_official_models_schemas_take_its_capability_rows_values(model: str) -> None:
    row = CAPABILITIES["models"][model]
    form = _official(model, "form.json")
    for mode in row["modes"]:
        props = _official(model, f"{mode}.request.schema.json")["properties"]
        assert set(props) == {f["name"] for f in form["fields"] if mode in f.get("modes", [mode])}
        assert props["model_name"] == {**props["model_name"], "const": model}
        assert props["model"]["const"] == model
        assert props["mode"]["enum"] == row["values"]["mode"]
        durations = row["values"]["duration"]
        assert props["duration"]["enum"] == [*durations, *map(int, durations)]
        sounds = {s for m in row["values"]["mode"] for s in row["sound_by_mode"][m]}
        assert set(props["sound"]["enum"]) == sounds
        assert ("default" in props["cfg_scale"]) == ("cfg_scale" not in row.get("ignored", {}))


def test_only_the_default_model_keeps_the_model_name_default() -> None:
    defaults = {m: _official(m, "form.json")["fields"][0].get("default") for m in CAPABILITIES["models"]}
    assert {m: d for m, d in defaults.items() if d is not None} == {"kling-v1": "kling-v1"}


OFFICIAL_FORM = json.loads((OFFICIAL / "form.json").read_text(encoding="utf-8"))
OFFICIAL_RULES = json.loads((OFFICIAL / "rules.json").read_text(encoding="utf-8"))


def _row(**changes: Any) -> dict[str, Any]:
    caps: dict[str, Any] = copy.deepcopy(CAPABILITIES)
    caps["models"]["kling-v2-6"].update(changes)
    return caps


def _features(**changes: Any) -> dict[str, Any]:
    return {**CAPABILITIES["models"]["kling-v2-6"]["features"], **changes}


BAD_ROWS = [
    pytest.param(_row(modes=["video2video"]), "unknown kinds", id="unknown-kind"),
    pytest.param(
        _row(values={"mode": ["pro"], "duration": ["5"]}, sound_by_mode={"pro": ["off"]}),
        "default mode",
        id="default-outside-values",
    ),
    pytest.param(
        _row(features=_features(first_last_frame={"values": {"duration": ["15"]}})),
        "the model only",
        id="feature-wider-than-model",
    ),
    pytest.param(
        _row(features=_features(first_last_frame={"values": {"aspect_ratio": ["1:1"]}})),
        "not one of",
        id="unknown-narrowing",
    ),
]


def _derive(capabilities: dict[str, Any]) -> dict[str, Any]:
    return derive_model_rules(
        OFFICIAL_RULES, capabilities, derive_model_form(OFFICIAL_FORM, capabilities, "kling-v2-6")
    )


def test_the_committed_capability_map_derives_cleanly() -> None:
    assert _derive(CAPABILITIES)["model"] == "kling-v2-6"


@pytest.mark.parametrize(("capabilities", "message"), BAD_ROWS)
def test_derivation_refuses_an_inconsistent_capability_row(capabilities: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _derive(capabilities)


def test_capability_rules_come_first_and_the_shared_rules_follow_in_order() -> None:
    ids = [r["id"] for r in _official("kling-v2-6", "rules.json")["rules"]]
    shared = [r["id"] for r in OFFICIAL_RULES["rules"]]
    assert ids[-len(shared) :] == shared
    assert ids[:3] == ["sound.requires_pro", "image_tail.requires_pro", "image_tail.requires_silent"]
