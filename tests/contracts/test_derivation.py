"""The committed request schemas are exactly what the derivation makes of the published form."""

from __future__ import annotations

import json

import pytest

from mockserver.contract import load_contract
from mockserver.contract.derive import derive_request_schema, render

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
