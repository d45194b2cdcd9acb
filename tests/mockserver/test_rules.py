"""Every rule of the contract, broken alone, gets its catalogued error naming the field.

``BREAKERS`` holds one request per named rule that breaks that rule and no other; a rule added
to ``rules.json`` without an entry here fails ``test_every_contract_rule_has_a_breaking_request``.
``SCHEMA_CASES`` does the same for the JSON Schema keywords the derived schemas use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mock_bodies import b64, i2v, image_bytes, png_claiming, t2v

from mockserver.contract import load_contract

CONTRACT = load_contract()
RULES = {rule.id: rule for rule in CONTRACT.models["kling-v2-6"].rules}
PNG = image_bytes(640, 360)
TRUNCATED_PNG = PNG[: len(PNG) // 2]
TOO_BIG = b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024)


def _image(field: str, value: str) -> dict[str, Any]:
    """An image2video body whose ``field`` is ``value`` and whose other settings allow image_tail."""
    body = i2v(mode="pro")
    body[field] = value
    if field == "image_tail":
        body["image"] = b64(PNG)
    return body


def _image_rules(field: str) -> dict[str, Callable[[], dict[str, Any]]]:
    return {
        f"{field}.encoding": lambda: _image(field, "not base64 at all!"),
        f"{field}.max_bytes": lambda: _image(field, b64(TOO_BIG)),
        f"{field}.format": lambda: _image(field, b64(image_bytes(400, 400, "GIF"))),
        f"{field}.max_pixels": lambda: _image(field, b64(png_claiming(7000, 7000))),
        f"{field}.decodable": lambda: _image(field, b64(TRUNCATED_PNG)),
        f"{field}.min_side": lambda: _image(field, b64(image_bytes(299, 400))),
        f"{field}.aspect_ratio": lambda: _image(field, b64(image_bytes(1000, 300))),
    }


TWO_SHOTS = [{"prompt": "a fox wakes", "duration": 2}, {"prompt": "the fox runs", "duration": 3}]
BREAKERS: dict[str, Callable[[], dict[str, Any]]] = {
    "multi_shot.single_item": lambda: t2v(multi_prompt=TWO_SHOTS),
    "shot_type.required_with_multi_shot": lambda: t2v(multi_shot=True, multi_prompt=TWO_SHOTS),
    "shot_type.intelligence_single_item": lambda: t2v(
        multi_shot=True, shot_type="intelligence", multi_prompt=TWO_SHOTS
    ),
    "multi_prompt.durations_sum": lambda: t2v(multi_prompt=[{"prompt": "a fox", "duration": 4}]),
    "sound.requires_pro": lambda: t2v(sound="on"),
    "image_tail.requires_image": lambda: t2v(image_tail=b64(PNG), mode="pro"),
    "image_tail.requires_pro": lambda: i2v(image_tail=b64(PNG)),
    "image_tail.requires_silent": lambda: i2v(image_tail=b64(PNG), mode="pro", sound="on"),
    **_image_rules("image"),
    **_image_rules("image_tail"),
}


def test_every_contract_rule_has_a_breaking_request() -> None:
    assert set(RULES) == set(BREAKERS), "add a breaking request for each new rule (and drop removed ones)"


@pytest.mark.parametrize("rule_id", sorted(RULES), ids=str)
def test_breaking_only_one_rule_gets_its_catalogued_error(rule_id: str, create: Callable[..., Any]) -> None:
    rule = RULES[rule_id]
    spec = CONTRACT.errors[rule.error]
    response = create(BREAKERS[rule_id]())
    assert response.status == spec.http_status
    error = response.payload["error"]
    assert (error["code"], error["type"], error["param"]) == (spec.code, spec.type, rule.param)
    assert error["message"].endswith(f"(rule {rule_id})")
    CONTRACT.error_validator().validate(response.payload)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(t2v(), id="text2video"),
        pytest.param(i2v(), id="image2video"),
        pytest.param(i2v(image_tail=b64(PNG), mode="pro"), id="first-and-last-frame"),
        pytest.param(t2v(multi_shot=True, shot_type="customize", multi_prompt=TWO_SHOTS), id="multi-shot"),
        pytest.param(t2v(multi_shot=True, shot_type="intelligence"), id="intelligence"),
        pytest.param(
            t2v(sound="on", mode="pro", duration=10, multi_prompt=[{"prompt": "x", "duration": 10}]), id="sound"
        ),
        pytest.param(i2v(image="data:image/png;base64," + b64(PNG)), id="data-uri"),
        pytest.param(i2v(image=b64(image_bytes(400, 400, "JPEG"))), id="jpeg"),
        pytest.param(i2v(image="https://example.com/first.png"), id="url-image"),
    ],
)
def test_the_breakers_start_from_bodies_the_contract_accepts(body: dict[str, Any], create: Callable[..., Any]) -> None:
    response = create(body)
    assert response.status == 200, response.payload


LONG = "x" * 2501
SCHEMA_CASES = [
    # (body, param, rule)
    pytest.param(t2v(mode=1), "mode", "schema:properties/mode/type", id="type"),
    pytest.param(t2v(mode="ultra"), "mode", "schema:properties/mode/enum", id="enum"),
    pytest.param(t2v(size="4K"), "size", "schema:properties/size/enum", id="enum-size"),
    pytest.param(
        t2v(duration=7, multi_prompt=[{"prompt": "x", "duration": 7}]),
        "duration",
        "schema:properties/duration/enum",
        id="enum-duration",
    ),
    pytest.param(t2v(cfg_scale=1.5), "cfg_scale", "schema:properties/cfg_scale/maximum", id="maximum"),
    pytest.param(t2v(cfg_scale=-0.1), "cfg_scale", "schema:properties/cfg_scale/minimum", id="minimum"),
    pytest.param(
        t2v(multi_prompt=[{"prompt": "", "duration": 5}]),
        "multi_prompt[0].prompt",
        "schema:properties/multi_prompt/items/properties/prompt/minLength",
        id="minLength",
    ),
    pytest.param(
        t2v(multi_prompt=[{"prompt": LONG, "duration": 5}]),
        "multi_prompt[0].prompt",
        "schema:properties/multi_prompt/items/properties/prompt/maxLength",
        id="maxLength-prompt",
    ),
    pytest.param(
        t2v(negative_prompt=LONG),
        "negative_prompt",
        "schema:properties/negative_prompt/maxLength",
        id="maxLength-negative",
    ),
    pytest.param(t2v(multi_prompt=[]), "multi_prompt", "schema:properties/multi_prompt/minItems", id="minItems"),
    pytest.param(
        t2v(multi_prompt=[{"prompt": "x", "duration": 1}] * 7),
        "multi_prompt",
        "schema:properties/multi_prompt/maxItems",
        id="maxItems",
    ),
    pytest.param({"model": "kling-v2-6"}, "multi_prompt", "schema:required", id="required"),
    pytest.param(
        t2v(multi_prompt=[{"prompt": "x"}]),
        "multi_prompt[0].duration",
        "schema:properties/multi_prompt/items/required",
        id="required-in-item",
    ),
    pytest.param(
        t2v(multi_prompt=[{"prompt": "x", "duration": "5"}]),
        "multi_prompt[0].duration",
        "schema:properties/multi_prompt/items/properties/duration/type",
        id="item-type",
    ),
    pytest.param(
        t2v(multi_prompt=[{"prompt": "x", "duration": 0}]),
        "multi_prompt[0].duration",
        "schema:properties/multi_prompt/items/properties/duration/minimum",
        id="item-minimum",
    ),
    pytest.param(
        t2v(watermark_enabled="yes"), "watermark_enabled", "schema:properties/watermark_enabled/type", id="boolean"
    ),
    pytest.param(i2v(image=""), "image", "schema:properties/image/minLength", id="empty-image"),
    pytest.param({"multi_prompt": []}, "model", "schema:required", id="no-model"),
    pytest.param(t2v(model=5), "model", "schema:properties/model/type", id="model-type"),
]


@pytest.mark.parametrize(("body", "param", "rule"), SCHEMA_CASES)
def test_schema_keyword_violations_name_field_and_rule(
    body: Any, param: str, rule: str, create: Callable[..., Any]
) -> None:
    response = create(body)
    assert response.status == 400
    error = response.payload["error"]
    assert (error["code"], error["param"]) == ("invalid_request", param)
    assert error["message"].endswith(f"(rule {rule})")
    assert LONG not in error["message"], "the message never echoes a huge value"


def test_unknown_model_is_model_not_found_on_model() -> None:
    from mockserver import Service

    response = Service().handle_simple(
        "POST", "/v1/video/generations", t2v(model="kling-v9"), [("authorization", "Bearer sk-test")]
    )
    assert (response.status, response.payload["error"]["code"], response.payload["error"]["param"]) == (
        503,
        "model_not_found",
        "model",
    )


def test_decompression_bomb_beyond_pillows_own_limit_is_max_pixels(create: Callable[..., Any]) -> None:
    response = create(_image("image", b64(png_claiming(20000, 20000))))
    assert response.payload["error"]["message"].endswith("(rule image.max_pixels)")


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        pytest.param("data:image/jpeg;base64," + b64(PNG), "declares JPEG but the bytes are PNG", id="lying-data-uri"),
        pytest.param("data:text/plain;base64," + b64(PNG), "declares text/plain", id="non-image-data-uri"),
        pytest.param("ftp://example.com/a.png", "URL scheme not allowed", id="ftp-url"),
        pytest.param("data:image/png," + b64(PNG), "data URI must look like", id="data-uri-without-base64"),
    ],
)
def test_image_problems_explain_themselves(value: str, detail: str, create: Callable[..., Any]) -> None:
    response = create(_image("image", value))
    assert response.status == 400
    assert detail in response.payload["error"]["message"]
