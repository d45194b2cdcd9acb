"""What the OpenAPI document promises a fuzzer (issue 13): the cross-field rules JSON Schema can
state as ``if``/``then``, id patterns for task ids and media files, every catalogued status an
operation can answer (door bounds included), and the running fake's own address in ``servers``."""

from __future__ import annotations

import re

import httpx
import jsonschema
import pytest
from reliability_helpers import Live

from mockserver import Service, load_contract
from mockserver.contract.openapi import build_openapi

FACES = ("gateway", "official")


@pytest.fixture(scope="module")
def document() -> dict:  # type: ignore[type-arg]
    return build_openapi([("", load_contract(f)) for f in FACES])


@pytest.mark.parametrize("face", FACES)
def test_every_requires_rule_is_stated_as_if_then(face: str, document: dict) -> None:  # type: ignore[type-arg]
    contract = load_contract(face)
    schemas = document["components"]["schemas"]
    for model in contract.models.values():
        for mode in model.request_schemas:
            name = f"{face}_{model.name.replace('-', '_').replace('.', '_')}_{mode}_request"
            stated = {part.get("x-rule") for part in schemas[name].get("allOf", [])}
            wanted = {r.id for r in model.rules if r.kind == "requires" and not r.warning and r.applies_to(mode)}
            assert wanted <= stated, (name, wanted - stated)


def test_the_if_then_reads_the_body_before_defaults() -> None:
    """``sound=on`` needs ``mode=pro``; ``mode`` absent means the default ``std``: refused."""
    doc = build_openapi(load_contract())
    schema = {**doc["components"]["schemas"]["kling_v2_6_text2video_request"], "components": doc["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    shot = [{"prompt": "a fox", "duration": 5}]
    assert validator.is_valid({"model": "kling-v2-6", "multi_prompt": shot})
    assert not validator.is_valid({"model": "kling-v2-6", "multi_prompt": shot, "sound": "on"})
    assert validator.is_valid({"model": "kling-v2-6", "multi_prompt": shot, "sound": "on", "mode": "pro"})
    assert not validator.is_valid({"model": "kling-v2-6", "multi_prompt": [{"prompt": "a", "duration": 10}]})


@pytest.mark.parametrize("face", FACES)
def test_task_ids_and_media_files_carry_the_faces_id_pattern(face: str) -> None:
    contract = load_contract(face)
    doc = build_openapi(contract)
    pattern = contract.id_format.pattern
    seen = 0
    for path, item in doc["paths"].items():
        for operation in item.values():
            for param in operation.get("parameters", []):
                if param["name"] == "file":
                    assert param["schema"]["pattern"] == f"^{pattern}\\.mp4$", path
                    assert re.fullmatch(param["schema"]["pattern"][1:-1], "x.mp4") is None
                    seen += 1
                elif param["name"] == "task_id" and "external_task_id" not in contract.index.get("lookup", {}).get(
                    "by", []
                ):
                    assert param["schema"]["pattern"] == f"^{pattern}$", path
                    seen += 1
    assert seen


@pytest.mark.parametrize("face", FACES)
def test_every_catalogued_status_an_operation_can_answer_is_documented(face: str) -> None:
    contract = load_contract(face)
    doc = build_openapi(contract)
    for op in contract.operations.values():
        responses = doc["paths"][op.path][op.method.lower()]["responses"]
        keys = [*op.errors, "headers_too_large", "server_busy"]
        if op.method == "POST":
            keys += ["body_too_large", "body_too_complex", "request_timeout"]
        for key in keys:
            status = contract.errors[key].http_status
            assert str(status) in responses, (op.id, key, status)


def test_the_running_fakes_address_is_the_first_server(live: Live) -> None:
    servers = httpx.get(live.base_url + "/openapi.json").json()["servers"]
    assert servers[0]["url"] == live.base_url
    assert {s["url"] for s in servers[1:]} >= set(load_contract().base_urls)


def test_an_in_process_document_lists_the_providers_hosts() -> None:
    doc = Service().handle_simple("GET", "/openapi.json")
    assert doc.status == 200


@pytest.mark.parametrize("face", [*FACES, "openai"])
def test_a_create_documents_every_media_type_its_contract_takes(face: str) -> None:
    """JSON everywhere; on the OpenAI-compatible route also the form the OpenAI SDK sends, its
    file part binary with the media types the contract lets it declare."""
    contract = load_contract(face)
    doc = build_openapi(contract)
    mapping = contract.form_mapping
    for op in contract.operations.values():
        if op.verb != "task.create":
            continue
        content = doc["paths"][op.path]["post"]["requestBody"]["content"]
        assert list(content) == list(contract.request.content_types)
        form = content.get("multipart/form-data")
        if form is None:
            continue
        assert mapping is not None
        assert mapping.file_field is not None
        assert form["encoding"][mapping.file_field]["contentType"].split(", ") == list(mapping.file_types)
        for ref in form["schema"]["anyOf"]:
            schema = doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]
            part = schema["properties"].get(mapping.file_field)
            assert part is None or part["contentMediaType"] == "application/octet-stream"
