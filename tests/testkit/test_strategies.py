"""kling_testkit.strategies: what each strategy promises, checked against the fake in-process,
for every face.

The fake is driven through ``Service.handle_simple``, the handler every door uses, so
"accepted by the fake" here is the same answer a respx route or a live server would give.
Answers are read through each face's contract ``reader``; where a check needs a field the
reader has no slot for (timestamps), the face's path is named in a table here.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import jwt
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import run_state_machine_as_test

from kling_testkit import strategies
from kling_testkit._strategies.requests import Pins, build_body, cases, shape_of
from kling_testkit.stateful import TaskLifecycleMachine
from kling_testkit.strategies import (
    ABSENT,
    IMAGE_PROBLEMS,
    CreateRequest,
    EncodedBody,
    Rejection,
    from_contract,
    image_problems,
    images,
    invalid_case_ids,
    invalid_requests,
    responses,
    task_timelines,
    valid_creates,
    valid_requests,
)
from mockserver import Engine, Service, VirtualClock
from mockserver.contract import Contract, ModelContract, Reader, Rule, load_contract
from mockserver.engine import JournalEntry
from mockserver.faces import face_names
from mockserver.http import ApiRequest, ApiResponse
from mockserver.multipart import FormLimits, FormProblem, parse_form
from mockserver.validation import inspect_image

#: every registered face: the strategies read each one's contract, none is special-cased
FACES = face_names()
CONTRACTS = {face: load_contract(face) for face in FACES}
GATEWAY = CONTRACTS["gateway"]
OFFICIAL = CONTRACTS["official"]
OPENAI = CONTRACTS["openai"]
MODEL = GATEWAY.models["kling-v2-6"]
#: the model each face's per-case tables run on (every model is covered by the properties)
MAIN = {"gateway": MODEL, "official": OFFICIAL.models["kling-v2-6"], "openai": OPENAI.models["kling-v2-6"]}


def checked_by(contract: Contract, model: ModelContract) -> ModelContract:
    """The model whose named rules and image limits check ``model``'s requests: its own, or
    for a form mapped onto another face's model (``request.maps_onto``), that model."""
    mapping = contract.form_mapping
    if mapping is None:
        return model
    face, name = mapping.target
    return load_contract(face).models[name]


#: find() without shrinking: where the first example found is all a test needs
FIRST = settings(database=None, phases=[Phase.generate], max_examples=500)
#: Hypothesis regards a several-megabyte body (the over-limit image case) as large data
LARGE = settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
)


def share(rows: int) -> settings:
    """Settings for a test parametrized over ``rows`` cases: the profile's example count split
    between them (at least 5 each), so a table costs about one property in CI and scales with
    the ``long`` profile. The unparametrized property beside each table runs the full count."""
    return settings(LARGE, max_examples=max(5, settings().max_examples // rows))


def credentials(contract: Contract, now: float) -> list[tuple[str, str]]:
    """The face's documented default credentials, made here from the contract's data."""
    auth = contract.index["auth"]
    first = auth["default_keys"][0]
    if isinstance(first, dict):  # an access/secret pair: sign a token as public clients do
        claims = {"iss": first["access_key"], "exp": now + 1800, "nbf": now - 5}
        return [("authorization", "Bearer " + jwt.encode(claims, first["secret_key"]))]
    return [("authorization", f"Bearer {first}")]


@dataclasses.dataclass
class Sent:
    response: ApiResponse
    entry: JournalEntry


def send(face: str, path: str, body: Any, *, strict: bool = False) -> Sent:
    """One create through a fresh fake serving ``face`` (built per example, as L2 advises): a
    JSON body, or an :class:`EncodedBody` sent as its bytes with its Content-Type."""
    service = Service(Engine(clock=VirtualClock()), faces=[face], strict=strict)
    headers = credentials(CONTRACTS[face], service.engine.clock.now())
    if isinstance(body, EncodedBody):
        sent_headers = [*headers, ("content-type", body.content_type)]
        response = service.handle(ApiRequest.build("POST", "http://127.0.0.1" + path, sent_headers, body.data))
    else:
        response = service.handle_simple("POST", path, json=body, headers=headers)
    return Sent(response, service.engine.journal.entries()[-1])


def send_create(face: str, create: CreateRequest, *, strict: bool = False) -> Sent:
    if create.content_type == "application/json":
        return send(face, create.path, create.body, strict=strict)
    return send(face, create.path, create.encoded(), strict=strict)


def send_case(case: tuple[Any, Rejection], *, strict: bool = False) -> tuple[Sent, Rejection]:
    body, label = case
    assert label.face is not None
    assert label.path is not None
    return send(label.face, label.path, body, strict=strict), label


def accepted(face: str, sent: Sent) -> None:
    contract = CONTRACTS[face]
    assert sent.response.status == 200, sent.response.payload
    assert contract.reader.get("status", sent.response.payload) == contract.status_projection["submitted"]


# -- the public surface ----------------------------------------------------------------------


def test_public_names_are_locked() -> None:
    assert strategies.__all__ == [
        "ABSENT",
        "IMAGE_PROBLEMS",
        "CreateRequest",
        "EncodedBody",
        "ImagePayload",
        "Rejection",
        "WireResponse",
        "from_contract",
        "image_problems",
        "images",
        "invalid_case_ids",
        "invalid_requests",
        "responses",
        "task_ids",
        "task_timelines",
        "valid_creates",
        "valid_requests",
    ]


@pytest.mark.parametrize("name", [n for n in strategies.__all__ if callable(getattr(strategies, n))])
def test_every_public_callable_documents_an_example(name: str) -> None:
    assert ">>>" in (getattr(strategies, name).__doc__ or "")


def test_the_default_face_is_the_first_registered_one() -> None:
    assert FACES[0] == "gateway"
    body = find(valid_requests(), lambda _: True, settings=FIRST)
    assert body["model"] == "kling-v2-6"  # the gateway's model field


# -- valid requests --------------------------------------------------------------------------


@pytest.mark.parametrize("face", FACES)
@LARGE
@given(data=st.data())
def test_every_valid_request_is_accepted_by_the_fake(face: str, data: st.DataObject) -> None:
    create = data.draw(valid_creates(face=face))
    accepted(face, send_create(face, create))


MODELS = [pytest.param(face, name, id=f"{face}-{name}") for face in FACES for name in sorted(CONTRACTS[face].models)]


@pytest.mark.parametrize(("face", "model"), MODELS)
@share(len(MODELS))
@given(data=st.data())
def test_every_model_and_kind_is_generated_and_accepted(face: str, model: str, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(CONTRACTS[face].models[model].request_schemas)))
    create = data.draw(valid_creates(model, face=face, kinds=kind))
    assert (create.model, create.kind) == (model, kind)
    accepted(face, send_create(face, create))


def _sum_holds(model: ModelContract, body: Mapping[str, Any]) -> bool:
    """Every sum rule that applies adds up (computed here from the rule's data)."""
    full = {**model.defaults, **body}
    for rule in model.rules:
        if rule.kind != "sum_equals" or rule.spec["items"] not in full:
            continue
        if "when" in rule.spec and not jsonschema.Draft202012Validator(rule.spec["when"]).is_valid(full):
            continue
        total = sum(float(item[rule.spec["item_field"]]) for item in full[rule.spec["items"]])
        if not math.isclose(total, float(full[rule.spec["total"]])):
            return False
    return True


@pytest.mark.parametrize("face", FACES)
@LARGE
@given(data=st.data())
def test_valid_requests_keep_their_shot_durations_summing_to_duration(face: str, data: st.DataObject) -> None:
    create = data.draw(valid_creates(face=face))
    assert _sum_holds(CONTRACTS[face].models[create.model], create.body)


def test_valid_requests_compose_shots_when_the_sum_rule_applies() -> None:
    # the property above must be able to fail: a customized storyboard on Kling's own API sums
    body = find(
        valid_requests(face="official", model="kling-v3", multi_shot=True, shot_type="customize", shot_counts=3),
        lambda b: True,
        settings=FIRST,
    )
    assert sum(int(shot["duration"]) for shot in body["multi_prompt"]) == int(body.get("duration", "5"))


NARROWING = [
    pytest.param({"kinds": "image2video"}, lambda b: "image" in b, id="image2video"),
    pytest.param({"kinds": "text2video"}, lambda b: "image" not in b and "image_tail" not in b, id="text2video"),
    pytest.param({"sound": "on"}, lambda b: b["sound"] == "on" and b["mode"] == "pro", id="sound-on-forces-pro"),
    pytest.param({"mode": "std"}, lambda b: b["mode"] == "std" and b.get("sound", "off") == "off", id="std-is-silent"),
    pytest.param(
        {"multi_shot": True, "shot_type": "customize", "shot_counts": 4},
        lambda b: len(b["multi_prompt"]) == 4,
        id="four-customized-shots",
    ),
    pytest.param(
        {"shot_type": "intelligence"},
        lambda b: len(b["multi_prompt"]) == 1,
        id="intelligence-is-one-item",
    ),
    pytest.param({"multi_shot": True}, lambda b: "shot_type" in b, id="multi-shot-names-its-shot-type"),
    pytest.param({"duration": 10, "shot_counts": 6}, lambda b: len(b["multi_prompt"]) == 6, id="six-shots-in-ten-s"),
    pytest.param(
        {"image_tail": images()}, lambda b: b["mode"] == "pro" and b.get("sound", "off") == "off", id="tail-needs-pro"
    ),
    pytest.param({"negative_prompt": ABSENT}, lambda b: "negative_prompt" not in b, id="absent-field"),
    pytest.param(
        {"prompts": st.just("é" * 2500)},
        lambda b: all(len(s["prompt"]) == 2500 for s in b["multi_prompt"]),
        id="prompts-at-the-limit",
    ),
    pytest.param(
        {"mode": st.sampled_from(["std", "pro"]), "size": "720P"}, lambda b: b["size"] == "720P", id="strategy"
    ),
]

OFFICIAL_NARROWING = [
    pytest.param(
        {"model": "kling-v2-6", "sound": "on"}, lambda b: b["mode"] == "pro" and "image_tail" not in b, id="sound-pro"
    ),
    pytest.param(
        {"model": "kling-v2-6", "image_tail": images(face="official")},
        lambda b: (
            b["mode"] == "pro"
            and b.get("sound", "off") == "off"
            and not {"camera_control", "static_mask", "dynamic_masks"} & set(b)
            and b.get("multi_shot") not in (True, "true")
        ),
        id="first-and-last-frame",
    ),
    pytest.param({"kinds": "image2video"}, lambda b: "image" in b or "image_tail" in b, id="image2video"),
    pytest.param(
        {"model": "kling-v3", "multi_shot": True, "shot_type": "customize", "shot_counts": 4},
        lambda b: (
            len(b["multi_prompt"]) == 4
            and sum(int(shot["duration"]) for shot in b["multi_prompt"]) == int(b.get("duration", "5"))
        ),
        id="four-customized-shots",
    ),
    pytest.param(
        {"model": "kling-v2-6", "shot_counts": 3},
        lambda b: len(b["multi_prompt"]) == 3 and b["multi_shot"] in (True, "true") and b["shot_type"] == "customize",
        id="a-shot-count-makes-a-storyboard",
    ),
    pytest.param(
        {"model": "kling-v1", "kinds": "text2video", "camera_control": {"type": "simple", "config": {"zoom": 5}}},
        lambda b: b.get("mode", "std") == "std" and b.get("duration", "5") in ("5", 5),
        id="kling-v1-camera-is-std-5s",
    ),
    pytest.param(
        {"model": "kling-v2-6", "model_name": ABSENT},
        lambda b: "model_name" not in b and b["model"] == "kling-v2-6",
        id="the-legacy-model-field",
    ),
    pytest.param({"model": "kling-v1", "model_name": ABSENT}, lambda b: True, id="the-default-model"),
    pytest.param(
        {"model": "kling-v2-6", "kinds": "image2video", "image": images(face="official")},
        lambda b: not b["image"].startswith("data:"),
        id="raw-base64-or-url",
    ),
    pytest.param({"model": "kling-v3", "duration": "15"}, lambda b: b["duration"] == "15", id="kling-v3-15s"),
    pytest.param(
        {"model": "kling-v2-6", "camera_control": {"type": "down_back"}},
        lambda b: b["camera_control"] == {"type": "down_back"},
        id="a-preset-camera-move",
    ),
]


@pytest.mark.parametrize(("kwargs", "holds"), NARROWING)
@share(4)
@given(data=st.data())
def test_narrowed_valid_requests_keep_the_narrowing_and_stay_valid(
    kwargs: dict[str, Any], holds: Any, data: st.DataObject
) -> None:
    create = data.draw(valid_creates(**kwargs))
    assert holds(create.body), create.body
    accepted("gateway", send_create("gateway", create))


@pytest.mark.parametrize(("kwargs", "holds"), OFFICIAL_NARROWING)
@share(4)
@given(data=st.data())
def test_narrowed_official_requests_keep_the_narrowing_and_stay_valid(
    kwargs: dict[str, Any], holds: Any, data: st.DataObject
) -> None:
    create = data.draw(valid_creates(face="official", **kwargs))
    assert holds(create.body), create.body
    accepted("official", send_create("official", create))


@pytest.mark.parametrize("face", FACES)
@LARGE
@given(data=st.data())
def test_clean_requests_raise_no_contract_warning(face: str, data: st.DataObject) -> None:
    create = data.draw(valid_creates(face=face, clean=True))
    sent = send_create(face, create)
    accepted(face, sent)
    assert sent.entry.warnings == (), sent.entry.warnings


def test_every_warning_of_the_contract_is_reached_by_valid_requests() -> None:
    # valid_requests() covers what the fake accepts with a contract warning (clean=True avoids it)
    model = MAIN["official"]
    seen: set[str] = set()

    @settings(LARGE, max_examples=200, database=None)
    @given(create=valid_creates(model.name, face="official"))
    def collect(create: CreateRequest) -> None:
        sent = send_create("official", create)
        accepted("official", sent)
        seen.update(w.rule for w in sent.entry.warnings)

    collect()
    assert {r.id for r in model.rules if r.warning} <= seen


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param(valid_requests(sound="on", mode="std"), id="contradicts-a-rule"),
        pytest.param(valid_requests(colour="red"), id="unknown-field"),
        pytest.param(valid_requests(sound="loud"), id="value-outside-the-schema"),
        pytest.param(valid_requests("kling-v9"), id="unknown-model"),
        pytest.param(valid_requests(kinds="image2video", image=ABSENT), id="kind-needs-the-field"),
        pytest.param(valid_requests(face="nowhere"), id="unknown-face"),
        pytest.param(
            valid_requests("kling-v2-6", face="official", sound="on", mode="std"), id="official-contradicts-a-rule"
        ),
        pytest.param(valid_requests("kling-v1-5", face="official", kinds="text2video"), id="model-without-the-kind"),
        pytest.param(valid_requests("kling-v1", face="official", sound="on"), id="silent-model"),
        pytest.param(invalid_requests(rules="no.such.rule"), id="unknown-rule"),
        pytest.param(invalid_requests(rules="schema:additionalProperties"), id="strict-case-without-strict"),
        pytest.param(
            invalid_requests("kling-v1", face="official", rules="sound.requires_pro"), id="rule-of-another-model"
        ),
        pytest.param(images(problems="blurry"), id="unknown-image-problem"),
        pytest.param(images(problems="data_uri_prefix"), id="data-uris-are-fine-here"),
        pytest.param(images(face="official", encodings="data_uri"), id="data-uri-on-kling"),
        pytest.param(images(face="official", problems="lying_media_type"), id="no-data-uri-to-lie-in"),
        pytest.param(images(sizes=(100, 100)), id="size-outside-limits"),
        pytest.param(responses("video_generations.get", errors="body_too_large"), id="error-not-of-operation"),
        pytest.param(responses("video_generations.get", face="official"), id="operation-of-another-face"),
        pytest.param(responses("account.costs", face="official", statuses="succeed"), id="no-task-in-the-answer"),
        pytest.param(task_timelines(outcomes="queued"), id="non-terminal-outcome"),
        pytest.param(task_timelines(face="official", outcomes="completed"), id="status-of-another-face"),
        pytest.param(from_contract("video_generations.get"), id="get-has-no-request-body"),
        pytest.param(from_contract("text2video.get", face="official"), id="official-get-has-no-request-body"),
    ],
)
def test_impossible_arguments_raise_when_drawn_not_when_built(strategy: st.SearchStrategy[Any]) -> None:
    with pytest.raises(InvalidArgument):
        find(strategy, lambda _: True, settings=settings(database=None, max_examples=1))


@given(create=valid_creates(face="official"))
def test_a_create_names_the_path_of_its_kind(create: CreateRequest) -> None:
    op = OFFICIAL.operations[create.operation]
    assert (op.method, op.path, op.kind) == (create.method, create.path, create.kind)


@given(body=from_contract("image2video.create", face="official"))
def test_from_contract_narrows_an_official_create_to_its_kind(body: dict[str, Any]) -> None:
    assert "image" in body or "image_tail" in body
    accepted("official", send("official", OFFICIAL.operations["image2video.create"].path, body))


# -- invalid requests ------------------------------------------------------------------------


def _drop_unknown(value: Any, schema: Mapping[str, Any]) -> tuple[Any, bool]:
    if not isinstance(value, dict) or "properties" not in schema:
        return value, False
    props = schema["properties"]
    found = bool(value.keys() - props.keys())
    out = {}
    for key, member in value.items():
        if key not in props:
            continue
        sub = props[key]
        if isinstance(member, list) and isinstance(sub.get("items"), Mapping):
            items = [_drop_unknown(m, sub["items"]) for m in member]
            found |= any(f for _, f in items)
            member = [m for m, _ in items]
        elif isinstance(member, dict):
            member, nested = _drop_unknown(member, sub)
            found |= nested
        out[key] = member
    return out, found


def _selected(contract: Contract, body: dict[str, Any]) -> tuple[str | None, Any]:
    """(field, model id) the way contracts/*/index.json ``request`` says a body names its model."""
    spec = contract.index.get("request", {})
    fields = [spec.get("model_field", "model"), *spec.get("model_aliases", [])]
    for name in fields:
        if body.get(name) is not None:
            return name, body[name]
    return None, spec.get("default_model")


def _target_request(contract: Contract, form: Mapping[str, Any]) -> dict[str, Any]:
    """The request a form maps onto, read here from ``index.json`` ``request`` (fields, their
    tables, passthrough) and applied to the form with its defaults."""
    spec = contract.index["request"]
    out: dict[str, Any] = {}
    full = {name: row["default"] for name, row in spec["fields"].items() if "default" in row} | dict(form)
    for name, row in spec["fields"].items():
        if name not in full:
            continue
        targets = [row["kling"]] if isinstance(row["kling"], str) else row["kling"]
        if "table" in row:
            out.update({k: v for k, v in contract.index[row["table"]][full[name]].items() if k in targets})
        elif isinstance(full[name], dict):  # an image reference object
            out[targets[0]] = full[name]["image_url"]
        else:
            out[targets[0]] = full[name]
    out.update({name: full[name] for name in spec.get("passthrough", ()) if name in full})
    return out


def _form_fields(contract: Contract, body: EncodedBody) -> dict[str, Any] | set[str]:
    """A form's fields (a file as base64), or the request rule it breaks as a form (what the
    multipart parser reports, a field twice, a file of a media type the contract refuses)."""
    rules = contract.index["request_rules"]
    limits = contract.index["limits"]["multipart"]
    parts = parse_form(body.data, body.content_type, FormLimits(**limits))
    if isinstance(parts, FormProblem):
        key = {"too_many_parts": "multipart_parts", "part_too_large": "multipart_part_size"}.get(
            parts.kind, "multipart"
        )
        return {rules[key]["id"]}
    out: dict[str, Any] = {}
    for part in parts:
        if part.name in out:
            return {rules["duplicate_field"]["id"]}
        if part.is_file:
            types = contract.index["request"]["fields"][part.name]["content_types"]
            if part.content_type not in types:
                return {rules["file_content_type"]["id"]}
            out[part.name] = base64.b64encode(part.data).decode()
        elif part.name in _numeric_fields(contract):
            text = part.data.decode()
            out[part.name] = int(text) if text.lstrip("-").isdigit() else float(text)
        else:
            out[part.name] = part.data.decode()
    return out


def _numeric_fields(contract: Contract) -> set[str]:
    """Passthrough fields the target takes as numbers (a form sends them as text)."""
    spec = contract.index["request"]
    target = load_contract(spec["maps_onto"]["face"]).models[spec["maps_onto"]["model"]]
    props = target.request_schemas["text2video"]["properties"]
    return {name for name in spec.get("passthrough", ()) if props[name].get("type") in ("number", "integer")}


def broken_rules(contract: Contract, body: Any, path_kind: str | None) -> set[str]:
    """Every rule ``body`` breaks, found independently of the fake: all schema errors of the
    reference validator (not just the best match), and every named rule checked on its own
    (rules that only warn never refuse). A form mapped onto another face's model breaks its
    own schema, else what the request it maps onto breaks there."""
    if isinstance(body, EncodedBody):
        fields = _form_fields(contract, body)
        if isinstance(fields, set):
            return fields
        body = fields
    if not isinstance(body, dict):
        return {contract.request_rule("body_object")}
    _field, name = _selected(contract, body)
    if name is None:
        return {"schema:required"}
    if name not in contract.models:
        return {contract.request_rule("model_known")}
    model = contract.models[name]
    spec = contract.index.get("request", {})
    if "maps_onto" in spec:
        form_kind = model.mode_for(body, spec["mode_field"])
        cleaned_form = _drop_unknown(body, model.request_schemas[form_kind])[0]
        errors = list(model.explainers[form_kind].iter_errors(cleaned_form))
        if errors:
            return {"schema:" + "/".join(map(str, e.relative_schema_path)) for e in errors}
        target = load_contract(spec["maps_onto"]["face"])
        return broken_rules(target, _target_request(contract, body), form_kind)
    kind = (
        model.mode_for(body, spec.get("mode_field", "image")) if spec.get("mode_from", "body") == "body" else path_kind
    )
    assert kind is not None

    def breaks(rule: Rule, target: Mapping[str, Any]) -> bool:
        if rule.kind == "requires":
            when = jsonschema.Draft202012Validator(rule.spec["when"])
            return when.is_valid(target) and not jsonschema.Draft202012Validator(rule.spec["then"]).is_valid(target)
        if rule.kind == "sum_equals":
            applies = "when" not in rule.spec or jsonschema.Draft202012Validator(rule.spec["when"]).is_valid(target)
            total = target.get(rule.spec["total"])
            if not applies or total is None or rule.spec["items"] not in target:
                return False
            shots = sum(float(i[rule.spec["item_field"]]) for i in target[rule.spec["items"]])
            return not math.isclose(shots, float(total))
        value = target.get(rule.param)
        found = inspect_image(value, model.image_limits) if isinstance(value, str) else None
        return bool(getattr(found, "check", None) == rule.spec["check"])

    refusing = [r for r in model.rules if not r.warning and r.applies_to(kind)]
    broken = {r.id for r in refusing if r.phase == "before_schema" and breaks(r, body)}
    cleaned, unknown = _drop_unknown(body, model.request_schemas[kind])
    if unknown and not broken:  # a broken before-schema rule is about a field of the other mode
        broken.add(contract.request_rule("unknown_field"))
    errors = list(model.explainers[kind].iter_errors(cleaned))
    if errors:
        return broken | {"schema:" + "/".join(map(str, e.relative_schema_path)) for e in errors}
    full = {**model.defaults, **cleaned}
    return broken | {r.id for r in refusing if r.phase != "before_schema" and breaks(r, full)}


def assert_breaks_exactly(body: Any, label: Rejection) -> None:
    assert label.face is not None
    found = broken_rules(CONTRACTS[label.face], body, label.kind)
    if label.case.endswith("/type") and label.rule == label.case:
        # a value of the wrong type cannot be in an enum (or equal a const) of the right type
        sibling = label.case.rsplit("/", 1)[0]
        found -= {f"{sibling}/enum", f"{sibling}/const"}
    assert found == {label.rule}, f"{label.case}: breaks {found}"


def assert_refused_as_labelled(sent: Sent, label: Rejection) -> None:
    assert label.diff(sent.response.status, sent.response.payload, sent.entry) == [], sent.response.payload


@pytest.mark.parametrize("face", FACES)
@LARGE
@given(data=st.data())
def test_every_invalid_request_gets_exactly_its_label(face: str, data: st.DataObject) -> None:
    body, label = data.draw(invalid_requests(face=face))
    sent, _ = send_case((body, label))
    assert_refused_as_labelled(sent, label)
    assert_breaks_exactly(body, label)


@pytest.mark.parametrize("face", FACES)
@LARGE
@given(data=st.data())
def test_every_invalid_request_gets_exactly_its_label_from_a_strict_fake(face: str, data: st.DataObject) -> None:
    sent, label = send_case(data.draw(invalid_requests(face=face, strict=True)), strict=True)
    assert_refused_as_labelled(sent, label)


CASES = [
    pytest.param(face, case_id, id=f"{face}-{case_id}")
    for face in FACES
    for case_id in sorted(invalid_case_ids(MAIN[face], face=face))
]


@pytest.mark.parametrize(("face", "case_id"), CASES)
@share(len(CASES) // 8)
@given(data=st.data())
def test_each_invalid_case_breaks_its_rule_only(face: str, case_id: str, data: st.DataObject) -> None:
    body, label = data.draw(invalid_requests(MAIN[face].name, face=face, rules=case_id, strict=True))
    assert label.case == case_id
    sent, _ = send_case((body, label), strict=True)
    assert_refused_as_labelled(sent, label)
    assert_breaks_exactly(body, label)


def test_a_label_compares_the_message_and_the_journal_exactly() -> None:
    body, label = find(
        invalid_requests("kling-v2-6", face="official", rules="sound.requires_pro"), lambda _: True, settings=FIRST
    )
    sent, _ = send_case((body, label))
    assert_refused_as_labelled(sent, label)
    other = dataclasses.replace(label, param="mode")
    assert any("message" in p for p in other.diff(sent.response.status, sent.response.payload))
    assert any("journal param" in p for p in other.diff(sent.response.status, sent.response.payload, sent.entry))
    wrong_rule = dataclasses.replace(label, rule="image_tail.requires_pro")
    assert wrong_rule.diff(sent.response.status, sent.response.payload) != []
    assert label.diff(200, {"code": 0, "message": "SUCCEED", "request_id": "x", "data": {}}) != []


def _family(contract: Contract, model: ModelContract, case_id: str) -> str:
    """Cases that are built the same way: a schema keyword, or a rule kind (and phase); a
    rule of a form's own pipeline is a family of its own."""
    if case_id.startswith("schema:"):
        return "keyword:" + case_id.rsplit("/", 1)[-1].removeprefix("schema:")
    rule = next((r for r in checked_by(contract, model).rules if r.id == case_id), None)
    return f"rule:{rule.kind}:{rule.phase}" if rule is not None else f"request:{case_id}"


def _shrink_cases() -> list[Any]:
    """Shrinking costs about 2 s a case (the shrinker replays hundreds of bodies). CI shrinks
    one case of each family per face -- each family is built by the same code -- and the
    ``long`` profile shrinks every case."""
    out: list[Any] = []
    for face in FACES:
        ids = sorted(invalid_case_ids(MAIN[face], face=face))
        if settings().max_examples <= 100:
            firsts: dict[str, str] = {}
            table = cases(MAIN[face], face)

            def cost(case_id: str, table: Mapping[str, Any] = table) -> tuple[bool, int, str]:
                # text-to-video and shallow first: images and deep masks make a shrink slow
                return ("text2video" not in table[case_id].kinds, case_id.count("/"), case_id)

            for case_id in sorted(ids, key=cost):
                firsts.setdefault(_family(CONTRACTS[face], MAIN[face], case_id), case_id)
            ids = sorted(firsts.values())
        out.extend(pytest.param(face, case_id, id=f"{face}-{case_id}") for case_id in ids)
    return out


@pytest.mark.parametrize(("face", "case_id"), _shrink_cases())
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # find() prints the 14 MB image case
def test_a_shrunk_case_still_breaks_its_rule_and_only_it(face: str, case_id: str) -> None:
    # find() with an always-true condition returns the first example *shrunk* to its minimum;
    # a text-to-video body where the case has one (no images to replay: a faster shrink)
    kinds = cases(MAIN[face], face)[case_id].kinds
    kind = "text2video" if "text2video" in kinds else kinds[0]
    body, label = find(
        invalid_requests(MAIN[face].name, face=face, rules=case_id, kinds=kind, strict=True),
        lambda _: True,
        settings=settings(database=None, max_examples=1),
    )
    sent, _ = send_case((body, label), strict=True)
    assert_refused_as_labelled(sent, label)
    assert_breaks_exactly(body, label)


def _contract_rule_ids(model: ModelContract) -> set[str]:
    """What must have a generator, read from the contract independently of the strategies:
    every rule id that refuses, and every assertion keyword of the derived request schemas
    (a keyword that asserts nothing, such as ``required: []``, has nothing to break)."""
    annotations = {"description", "default", "title", "$comment", "$schema", "$id", "x-content"}
    vacuous = {("required", "[]"), ("minLength", "0"), ("minItems", "0"), ("minProperties", "0")}

    def walk(schema: Mapping[str, Any], pointer: str) -> Iterator[str]:
        for key, value in schema.items():
            if key in annotations or (key == "additionalProperties" and value is True):
                continue
            if (key, str(value)) in vacuous:
                continue
            if key == "properties":
                for name, sub in value.items():
                    yield from walk(sub, f"{pointer}properties/{name}/")
            elif key == "items":
                yield from walk(value, f"{pointer}items/")
            else:
                yield f"schema:{pointer}{key}"

    keywords = {site for schema in model.request_schemas.values() for site in walk(schema, "")}
    return {rule.id for rule in model.rules if not rule.warning} | keywords


#: the request rules of a form's own pipeline that a form body can break alone
FORM_RULES = ("multipart", "multipart_parts", "multipart_part_size", "duplicate_field", "file_content_type")


def _form_rule_ids(contract: Contract, model: ModelContract) -> set[str]:
    """What must have a generator for a form mapped onto another face's model: the form's own
    schema keywords and pipeline rules, and every refusing rule of the target model whose
    fields (its param, the fields its conditions read) all map from a form field."""
    spec = contract.index["request"]
    carried = set(spec.get("passthrough", ()))
    for row in spec["fields"].values():
        carried |= {row["kling"]} if isinstance(row["kling"], str) else set(row["kling"])

    def reads(schema: Any) -> set[str]:
        if not isinstance(schema, Mapping):
            return set()
        found = set(schema.get("required", ())) | set(schema.get("properties", {}))
        for key in ("not", "anyOf", "oneOf", "allOf"):
            value = schema.get(key)
            for sub in value if isinstance(value, list) else [value]:
                found |= reads(sub)
        return found

    target = checked_by(contract, model)
    rules = {
        rule.id
        for rule in target.rules
        if not rule.warning
        and rule.kind in ("requires", "image")
        and {rule.param, *reads(rule.spec.get("when")), *reads(rule.spec.get("then"))} <= carried
    }
    own = {contract.index["request_rules"][key]["id"] for key in FORM_RULES if key in contract.index["request_rules"]}
    return _contract_rule_ids(model) | rules | own


def _refused_outright(model: ModelContract, kind: str) -> list[tuple[str, set[str], dict[str, list[Any]]]]:
    """The model's capability rules for ``kind``: ``then`` is ``not`` ``when``, so a body
    matching ``when`` (these members present, with these values) is always refused."""
    out = []
    for rule in model.rules:
        when: Any = rule.spec.get("when")
        if rule.kind != "requires" or rule.warning or not rule.applies_to(kind) or rule.spec["then"] != {"not": when}:
            continue
        if set(when) <= {"required", "properties"} and all(
            set(sub) in ({"const"}, {"enum"}) for sub in when.get("properties", {}).values()
        ):
            values = {
                n: [sub["const"]] if "const" in sub else sub["enum"] for n, sub in when.get("properties", {}).items()
            }
            out.append((rule.id, set(when.get("required", [])), values))
    return out


def _ways_to_break(rule: Rule) -> list[tuple[set[str], dict[str, list[Any]]]]:
    """Members and values every body breaking ``rule`` has, one entry per alternative."""

    def plain(schema: Mapping[str, Any]) -> tuple[set[str], dict[str, list[Any]]]:
        required = set(schema.get("required", []))
        values = {
            n: [sub["const"]] if "const" in sub else list(sub["enum"])
            for n, sub in schema.get("properties", {}).items()
            if set(sub) in ({"const"}, {"enum"})
        }
        for part in schema.get("allOf", []):
            more, more_values = plain(part)
            required |= more
            values.update(more_values)
        return required, values

    if rule.kind == "image":
        return [({rule.param}, {})]
    if rule.kind == "sum_equals":
        return [plain({"allOf": [rule.spec.get("when", {}), {"required": [rule.spec["items"]]}]})]
    negated = rule.spec["then"].get("not", {}) if set(rule.spec["then"]) == {"not"} else {}
    branches = negated.get("anyOf", [{}])
    rest = {k: v for k, v in negated.items() if k != "anyOf"}
    return [plain({"allOf": [rule.spec["when"], rest, branch]}) for branch in branches]


def _shadowed(model: ModelContract) -> set[str]:
    """Rules the fake never refuses alone: every way of breaking one has what a capability rule
    of the model refuses outright (on kling-v1, a multi-shot rule needs ``multi_shot: true``),
    or a field the request kind does not have."""
    out = set()
    for rule in model.rules:
        if rule.warning or rule.id.endswith(".unsupported"):
            continue
        kinds = [k for k in model.request_schemas if rule.applies_to(k)]

        def covered(kind: str, rule: Rule = rule) -> bool:
            capability = _refused_outright(model, kind)
            members = set(model.request_schemas[kind]["properties"])
            return all(
                not needs <= members  # the kind has no such field: this way is closed
                or any(
                    names <= needs
                    and all(
                        n in values and set(map(str, values[n])) <= set(map(str, allowed))
                        for n, allowed in limits.items()
                    )
                    for _id, names, limits in capability
                )
                for needs, values in _ways_to_break(rule)
            )

        if kinds and all(covered(k) for k in kinds):
            out.add(rule.id)
    return out


@pytest.mark.parametrize(("face", "model"), MODELS)
def test_every_rule_and_schema_keyword_of_the_contract_has_an_invalid_case(face: str, model: str) -> None:
    contract = CONTRACTS[face]
    found = contract.models[model]
    expected = _form_rule_ids(contract, found) if contract.form_mapping else _contract_rule_ids(found)
    assert expected - _shadowed(found) - invalid_case_ids(found, face=face) == set()
    assert invalid_case_ids(found, face=face) - expected == set()
    assert invalid_case_ids(found, face=face) & _shadowed(found) == set()


def test_only_a_missing_capability_shadows_a_rule() -> None:
    # kling-v2-6 and the gateway offer every feature their rules are about: nothing is shadowed
    assert _shadowed(MAIN["official"]) == set()
    assert _shadowed(MODEL) == set()
    # kling-v1 offers no multi-shot: the rules about multi-shot can never be the one refused
    assert {"shot_type.required_with_multi_shot", "multi_prompt.durations_sum"} <= _shadowed(
        OFFICIAL.models["kling-v1"]
    )


@pytest.mark.parametrize("face", FACES)
@LARGE
@given(data=st.data())
def test_every_model_of_a_face_gets_its_invalid_cases(face: str, data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(sorted(CONTRACTS[face].models)))
    sent, label = send_case(data.draw(invalid_requests(model, face=face, strict=True)), strict=True)
    assert_refused_as_labelled(sent, label)


def test_schema_keywords_in_use_are_all_covered() -> None:
    keywords = {
        i.rsplit("/", 1)[-1].removeprefix("schema:")
        for face in FACES
        for m in CONTRACTS[face].models.values()
        for i in _contract_rule_ids(m)
        if i.startswith("schema:")
    }
    assert {"type", "enum", "const", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"} <= keywords
    assert {"required", "additionalProperties", "pattern", "minProperties"} <= keywords


def _with(
    model: ModelContract, *, rules: tuple[Rule, ...] = (), schema_patch: Mapping[str, Any] | None = None
) -> ModelContract:
    schemas = {k: dict(v) for k, v in model.request_schemas.items()}
    if schema_patch is not None:
        for schema in schemas.values():
            props = dict(schema["properties"])
            props["negative_prompt"] = {**props["negative_prompt"], **schema_patch}
            schema["properties"] = props
    return dataclasses.replace(model, rules=model.rules + rules, request_schemas=schemas)


NEW_RULES = [
    pytest.param(
        Rule("cfg.new_kind", "cfg_scale", "rule_violation", "regex", "m", "test", "after_schema", {}),
        id="rule-of-a-new-kind",
    ),
    pytest.param(
        Rule("image.exif", "image", "rule_violation", "image", "m", "test", "after_schema", {"check": "exif"}),
        id="image-check-without-generator",
    ),
    pytest.param(
        Rule(
            "cfg.multiple",
            "cfg_scale",
            "rule_violation",
            "requires",
            "m",
            "test",
            "after_schema",
            {"when": {"required": ["cfg_scale"]}, "then": {"properties": {"cfg_scale": {"multipleOf": 0.1}}}},
        ),
        id="requires-form-without-generator",
    ),
]


@pytest.mark.parametrize("rule", NEW_RULES)
def test_a_rule_added_to_the_contract_without_a_generator_is_reported(rule: Rule) -> None:
    changed = _with(MODEL, rules=(rule,))
    assert _contract_rule_ids(changed) - invalid_case_ids(changed) == {rule.id}


def test_a_rule_form_the_builder_cannot_construct_is_refused_by_valid_requests() -> None:
    rule: Any = NEW_RULES[2].values[0]
    changed = _with(MODEL, rules=(rule,))
    with pytest.raises(InvalidArgument, match="multipleOf"):
        find(build_body(shape_of(changed), Pins()), lambda _: True)


def test_a_schema_keyword_without_a_generator_is_reported_and_refused_by_valid_requests() -> None:
    changed = _with(MODEL, schema_patch={"format": "email"})
    assert _contract_rule_ids(changed) - invalid_case_ids(changed) == {"schema:properties/negative_prompt/format"}
    with pytest.raises(InvalidArgument, match="format"):
        find(build_body(shape_of(changed), Pins(fields={"negative_prompt": "x"})), lambda _: True)


# -- the compiled validator agrees with the reference ----------------------------------------


@pytest.mark.parametrize("face", FACES)
@LARGE
@given(data=st.data())
def test_compiled_and_reference_validators_agree(face: str, data: st.DataObject) -> None:
    json_cases = invalid_requests(face=face, strict=True, content_types="application/json")
    body = data.draw(st.one_of(valid_requests(face=face), json_cases.map(lambda case: case[0])))
    for model in CONTRACTS[face].models.values():
        for mode in model.request_schemas:
            assert model.fast_validators[mode].is_valid(body) == model.explainers[mode].is_valid(body)


# -- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize("face", FACES)
@given(data=st.data())
def test_valid_images_pass_every_image_check(face: str, data: st.DataObject) -> None:
    payload = data.draw(images(face=face))
    limits = checked_by(CONTRACTS[face], MAIN[face]).image_limits
    found = inspect_image(payload.value, limits)
    assert not hasattr(found, "check"), found
    if payload.encoding != "url":
        assert found is not None
        assert (found.format, found.width, found.height) == (payload.format, payload.width, payload.height)
    assert limits.get("data_uri", True) or not payload.value.startswith("data:")


PROBLEMS = [
    pytest.param(face, problem, id=f"{face}-{problem}")
    for face in FACES
    for problem in sorted(image_problems(face=face))
]


@pytest.mark.parametrize(("face", "problem"), PROBLEMS)
@share(20)
@given(data=st.data())
def test_each_image_problem_breaks_its_labelled_check(face: str, problem: str, data: st.DataObject) -> None:
    payload = data.draw(images(face=face, problems=problem))
    assert (payload.problem, payload.check) == (problem, IMAGE_PROBLEMS[problem])
    found = inspect_image(payload.value, checked_by(CONTRACTS[face], MAIN[face]).image_limits)
    assert getattr(found, "check", None) == payload.check


@pytest.mark.parametrize("face", FACES)
def test_every_image_check_of_the_contract_has_a_problem_generator(face: str) -> None:
    contract = CONTRACTS[face]
    checks = {
        rule.spec["check"]
        for m in contract.models.values()
        for rule in checked_by(contract, m).rules
        if rule.kind == "image"
    }
    assert checks == set(image_problems(face=face).values())


def test_data_uris_are_a_problem_exactly_where_the_contract_refuses_them() -> None:
    assert "data_uri_prefix" in image_problems(face="official")
    assert "data_uri_prefix" not in image_problems(face="gateway")
    assert set(image_problems(face="gateway")) | set(image_problems(face="official")) == set(IMAGE_PROBLEMS)


# -- responses and timelines -----------------------------------------------------------------


def _error_keys(contract: Contract, operation: str, answer: strategies.WireResponse) -> list[str]:
    """The operation's catalogued errors this answer can be (codes are shared: 1201...)."""
    code = contract.reader.get("error_code", answer.body)
    errors = contract.operations[operation].errors
    return [k for k in errors if (contract.errors[k].code, contract.errors[k].http_status) == (code, answer.status)]


@pytest.mark.parametrize("face", FACES)
@given(data=st.data())
def test_every_response_validates_against_the_contract(face: str, data: st.DataObject) -> None:
    contract = CONTRACTS[face]
    answer = data.draw(responses(face=face))
    contract.response_validator(answer.schema).validate(answer.body)
    operation = contract.operations[answer.operation]
    if answer.status == 200:
        assert answer.schema == operation.responses["200"]
    else:
        assert answer.schema == contract.error_envelope
        assert _error_keys(contract, answer.operation, answer), answer
    if answer.status == 429 and "retry-after" in dict(answer.headers):
        assert int(dict(answer.headers)["retry-after"]) >= 1


def test_the_gateway_sends_retry_after_on_429_and_kling_does_not() -> None:
    gateway = find(responses("video_generations.create", errors="rate_limited"), lambda a: True, settings=FIRST)
    official = find(
        responses("text2video.create", face="official", errors="rate_limited"), lambda a: True, settings=FIRST
    )
    assert "retry-after" in dict(gateway.headers)
    assert "retry-after" not in dict(official.headers)


CATALOGUE = [
    pytest.param(face, op, key, id=f"{face}-{op}-{key}")
    for face in FACES
    for op, spec in CONTRACTS[face].operations.items()
    for key in spec.errors
]


@pytest.mark.parametrize(("face", "operation", "error"), CATALOGUE)
@share(len(CATALOGUE))
@given(data=st.data())
def test_each_catalogued_error_is_generated_and_valid(
    face: str, operation: str, error: str, data: st.DataObject
) -> None:
    contract = CONTRACTS[face]
    answer = data.draw(responses(operation, face=face, errors=error))
    contract.response_validator(answer.schema).validate(answer.body)
    assert (answer.status, contract.reader.get("error_code", answer.body)) == (
        contract.errors[error].http_status,
        contract.errors[error].code,
    )


SUCCESSES = [
    pytest.param(face, op, id=f"{face}-{op}")
    for face in FACES
    for op, spec in CONTRACTS[face].operations.items()
    if spec.responses.get("200") in CONTRACTS[face].response_schemas
]


@pytest.mark.parametrize(("face", "operation"), SUCCESSES)
def test_each_successful_answer_is_the_faces_own_and_valid(face: str, operation: str) -> None:
    contract = CONTRACTS[face]
    op = contract.operations[operation]
    task_answer = op.verb in ("task.create", "task.get", "task.list")
    statuses = st.sampled_from(sorted(contract.status_projection.values())) if task_answer else None
    answer = find(responses(operation, face=face, statuses=statuses), lambda a: a.status == 200, settings=FIRST)
    contract.response_validator(op.responses["200"]).validate(answer.body)
    assert contract.reader.get("error_code", answer.body) in (None, 0)


STATUSES = [
    pytest.param(face, op.id, status, id=f"{face}-{op.id}-{status}")
    for face in FACES
    for op in CONTRACTS[face].operations.values()
    if op.verb == "task.get"
    for status in sorted(CONTRACTS[face].status_projection.values())
]


@pytest.mark.parametrize(("face", "operation", "status"), STATUSES)
@share(len(STATUSES))
@given(data=st.data())
def test_every_query_status_is_generated(face: str, operation: str, status: str, data: st.DataObject) -> None:
    contract = CONTRACTS[face]
    answer = data.draw(responses(operation, face=face, statuses=status))
    assert contract.reader.get("status", answer.body) == status
    contract.response_validator(answer.schema).validate(answer.body)
    url = contract.result_url(answer.body)
    assert (url is not None) == (status == contract.status_projection["succeeded"])
    assert bool(contract.reader.get("failure", answer.body)) == (status == contract.status_projection["failed"])


#: where each face keeps the task's creation and update times (the reader has no slot for them;
#: OpenAI's video object has no update time) and its progress, if it shows one
TIMESTAMPS: dict[str, tuple[str, str | None]] = {
    "gateway": ("/created_at", "/updated_at"),
    "official": ("/data/created_at", "/data/updated_at"),
    "openai": ("/created_at", None),
}
PROGRESS = {"gateway": "/progress", "openai": "/progress"}


def _allowed_pairs(contract: Contract) -> set[tuple[str, str]]:
    wire = contract.status_projection
    return {(wire[t["from"]], wire[t["to"]]) for t in contract.lifecycle["transitions"]}


@pytest.mark.parametrize("face", FACES)
@given(data=st.data())
def test_task_timelines_are_what_a_real_task_could_produce(face: str, data: st.DataObject) -> None:
    contract = CONTRACTS[face]
    reader = contract.reader
    timeline = data.draw(task_timelines(face=face))
    wire = contract.status_projection
    get = next(op for op in contract.operations.values() if op.verb == "task.get")
    validator = contract.response_validator(get.responses["200"])
    for body in timeline:
        validator.validate(body)
        status = reader.get("status", body)
        assert (contract.result_url(body) is not None) == (status == wire["succeeded"])
        assert bool(reader.get("failure", body)) == (status == wire["failed"])
    statuses = [reader.get("status", b) for b in timeline]
    assert statuses[0] == wire[contract.lifecycle["initial"]]
    terminal = {wire[s] for s in contract.lifecycle["terminal"]}
    assert statuses[-1] in terminal
    assert not terminal & set(statuses[:-1])
    created_at, updated_at = TIMESTAMPS[face]
    created = Reader({"at": created_at})
    for before, after in itertools.pairwise(timeline):
        pair = (reader.get("status", before), reader.get("status", after))
        assert pair[0] == pair[1] or pair in _allowed_pairs(contract)
        if updated_at is not None:
            updated = Reader({"at": updated_at})
            assert updated.get("at", before) <= updated.get("at", after)
        if face in PROGRESS:
            progress = Reader({"at": PROGRESS[face]})
            assert progress.get("at", before) <= progress.get("at", after)
    assert len({(reader.get("task_id", b), created.get("at", b)) for b in timeline}) == 1


OUTCOMES = [
    pytest.param(face, contract.status_projection[s], id=f"{face}-{s}")
    for face, contract in CONTRACTS.items()
    for s in contract.lifecycle["terminal"]
]


@pytest.mark.parametrize(("face", "outcome"), OUTCOMES)
@share(len(OUTCOMES))
@given(data=st.data())
def test_task_timelines_reach_each_outcome(face: str, outcome: str, data: st.DataObject) -> None:
    timeline = data.draw(task_timelines(face=face, outcomes=outcome))
    assert CONTRACTS[face].reader.get("status", timeline[-1]) == outcome


@pytest.mark.parametrize("face", FACES)
def test_task_timelines_cover_every_transition_of_the_lifecycle(face: str) -> None:
    contract = CONTRACTS[face]
    seen: set[tuple[str, str]] = set()

    @settings(max_examples=100, database=None)
    @given(timeline=task_timelines(face=face))
    def collect(timeline: list[dict[str, Any]]) -> None:
        statuses = [contract.reader.get("status", b) for b in timeline]
        seen.update((a, b) for a, b in itertools.pairwise(statuses) if a != b)

    collect()
    assert seen == _allowed_pairs(contract)


# -- docs/strategies.md ----------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def _doc_namespace() -> dict[str, Any]:
    """docs/strategies.md's Python blocks, run in order in one namespace (as a reader pastes them)."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) >= 6
    namespace: dict[str, Any] = {"__name__": "docs_strategies"}
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), namespace)  # the docs own examples, run as written
    return namespace


DOC_TESTS = sorted(name for name in _doc_namespace() if name.startswith("test_"))


@pytest.mark.parametrize("name", DOC_TESTS)
def test_the_examples_of_docs_strategies_md_run(name: str) -> None:
    found = _doc_namespace()[name]
    if getattr(found, "_hypothesis_internal_settings_applied", False):
        found()  # the example sets its own (small) example count
    else:
        settings(LARGE, max_examples=5, database=None)(found)()


def test_the_state_machine_example_of_docs_strategies_md_runs() -> None:
    machines = [v for v in _doc_namespace().values() if isinstance(v, type) and issubclass(v, TaskLifecycleMachine)]
    assert machines
    for machine in machines:
        if machine is not TaskLifecycleMachine:
            run_state_machine_as_test(machine, settings=settings(max_examples=5, stateful_step_count=10))


@settings(max_examples=25)
@given(data=st.data())
def test_a_repairs_lock_on_the_shots_is_revised_when_their_durations_must_add_up(data: st.DataObject) -> None:
    # Found by the lowest-versions run: a repair had soft-locked every shot's duration, so the
    # sum rule took the shots for the caller's and gave up ("the pinned multi_prompt add up to
    # ..."); a repair's lock is revisable, as repair itself treats it at a dead end.
    from kling_testkit._strategies.requests import Pins, _shape, rule_broken, settle, start

    contract = load_contract("official")
    shape = _shape(contract, contract.models["kling-v3"], "clean")
    draw: Any = data.draw  # the builder's DrawFn, as @st.composite hands it
    kind, body = start(draw, shape, Pins(kind="text2video", count=3, clean=True))
    settle(body, shape, kind, clean=True)
    shots = body.value["multi_prompt"]
    for i, shot in enumerate(shots):
        shot["duration"] = "7"  # three shots of 7 s cannot make any total the model takes
        body.soft.value.add(("multi_prompt", i, "duration"))
    settle(body, shape, kind, clean=True)
    rules = [r for r in shape.sums if r.applies_to(kind)]
    assert rules
    assert not any(rule_broken(r, body.value, shape) for r in rules), body.value["multi_prompt"]


@settings(max_examples=50)
@given(create=valid_creates("kling-v3", face="official", kinds="text2video", shot_counts=3, clean=True))
def test_a_pinned_shot_count_on_a_clean_body_turns_multi_shot_on_without_a_warning(create: CreateRequest) -> None:
    # The shot count makes the sum rule apply (multi_shot on); a clean body must not do it with
    # the string "true", which Kling reads as true but the contract flags.
    assert create.body["multi_shot"] is True
    sent = send_create("official", create)
    accepted("official", sent)
    assert sent.entry.warnings == (), sent.entry.warnings
