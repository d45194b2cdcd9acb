"""kling_testkit.strategies: what each strategy promises, checked against the fake in-process.

The fake is driven through ``Service.handle_simple``, the handler every door uses, so
"accepted by the fake" here is the same answer a respx route or a live server would give.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from kling_testkit import strategies
from kling_testkit._strategies.requests import Pins, build_body, shape_of
from kling_testkit.strategies import (
    ABSENT,
    IMAGE_PROBLEMS,
    Rejection,
    from_contract,
    images,
    invalid_case_ids,
    invalid_requests,
    responses,
    task_timelines,
    valid_requests,
)
from mockserver import Engine, Service, VirtualClock
from mockserver.contract import ModelContract, Rule, load_contract
from mockserver.http import ApiResponse
from mockserver.validation import inspect_image

CONTRACT = load_contract()
MODEL = CONTRACT.models["kling-v2-6"]
AUTH = (("authorization", "Bearer sk-test"),)
CREATE = CONTRACT.operations["video_generations.create"].path
#: Hypothesis regards a several-megabyte body (the over-limit image case) as large data
LARGE = settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
)


def share(rows: int) -> settings:
    """Settings for a test parametrized over ``rows`` cases: the profile's example count split
    between them (at least 5 each), so a table costs about one property in CI and scales with
    the ``long`` profile. The unparametrized property beside each table runs the full count."""
    return settings(LARGE, max_examples=max(5, settings().max_examples // rows))


def send(body: Any, *, strict: bool = False) -> ApiResponse:
    """One create through a fresh fake: built inside the test (per example), as L2 advises."""
    service = Service(Engine(clock=VirtualClock()), strict=strict)
    return service.handle_simple("POST", CREATE, json=body, headers=AUTH)


# -- the public surface ----------------------------------------------------------------------


def test_public_names_are_locked() -> None:
    assert strategies.__all__ == [
        "ABSENT",
        "IMAGE_PROBLEMS",
        "ImagePayload",
        "Rejection",
        "WireResponse",
        "from_contract",
        "images",
        "invalid_case_ids",
        "invalid_requests",
        "responses",
        "task_ids",
        "task_timelines",
        "valid_requests",
    ]


@pytest.mark.parametrize("name", [n for n in strategies.__all__ if callable(getattr(strategies, n))])
def test_every_public_callable_documents_an_example(name: str) -> None:
    assert ">>>" in (getattr(strategies, name).__doc__ or "")


# -- valid requests --------------------------------------------------------------------------


@LARGE
@given(body=valid_requests())
def test_every_valid_request_is_accepted_by_the_fake(body: dict[str, Any]) -> None:
    response = send(body)
    assert response.status == 200, response.payload
    assert response.payload["status"] == CONTRACT.status_projection["submitted"]


@LARGE
@given(body=valid_requests())
def test_valid_requests_keep_their_shot_durations_summing_to_duration(body: dict[str, Any]) -> None:
    total = body.get("duration", MODEL.defaults["duration"])
    assert sum(shot["duration"] for shot in body["multi_prompt"]) == total


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


@pytest.mark.parametrize(("kwargs", "holds"), NARROWING)
@share(4)
@given(data=st.data())
def test_narrowed_valid_requests_keep_the_narrowing_and_stay_valid(
    kwargs: dict[str, Any], holds: Any, data: st.DataObject
) -> None:
    body = data.draw(valid_requests(**kwargs))
    assert holds(body), body
    assert send(body).status == 200


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param(valid_requests(sound="on", mode="std"), id="contradicts-a-rule"),
        pytest.param(valid_requests(colour="red"), id="unknown-field"),
        pytest.param(valid_requests("kling-v9"), id="unknown-model"),
        pytest.param(valid_requests(kinds="image2video", image=ABSENT), id="kind-needs-the-field"),
        pytest.param(invalid_requests(rules="no.such.rule"), id="unknown-rule"),
        pytest.param(invalid_requests(rules="schema:additionalProperties"), id="strict-case-without-strict"),
        pytest.param(images(problems="blurry"), id="unknown-image-problem"),
        pytest.param(images(sizes=(100, 100)), id="size-outside-limits"),
        pytest.param(responses("video_generations.get", errors="body_too_large"), id="error-not-of-operation"),
        pytest.param(task_timelines(outcomes="queued"), id="non-terminal-outcome"),
        pytest.param(from_contract("video_generations.get"), id="get-has-no-request-body"),
    ],
)
def test_impossible_arguments_raise_when_drawn_not_when_built(strategy: st.SearchStrategy[Any]) -> None:
    with pytest.raises(InvalidArgument):
        find(strategy, lambda _: True, settings=settings(database=None, max_examples=1))


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
        out[key] = member
    return out, found


def broken_rules(model: ModelContract, body: Any) -> set[str]:
    """Every rule ``body`` breaks, found independently of the fake: all schema errors of the
    reference validator (not just the best match), and every named rule checked on its own."""
    if not isinstance(body, dict):
        return {"body.object"}
    if "model" not in body:
        return {"schema:required"}
    if body["model"] not in CONTRACT.models:
        return {"model.known"}

    def breaks(rule: Rule, target: Mapping[str, Any]) -> bool:
        if rule.kind == "requires":
            when = jsonschema.Draft202012Validator(rule.spec["when"])
            return when.is_valid(target) and not jsonschema.Draft202012Validator(rule.spec["then"]).is_valid(target)
        if rule.kind == "sum_equals":
            total = target.get(rule.spec["total"])
            return total is not None and sum(i[rule.spec["item_field"]] for i in target[rule.spec["items"]]) != total
        value = target.get(rule.param)
        found = inspect_image(value, model.image_limits) if isinstance(value, str) else None
        return bool(getattr(found, "check", None) == rule.spec["check"])

    broken = {r.id for r in model.rules if r.phase == "before_schema" and breaks(r, body)}
    kind = model.mode_for(body)
    cleaned, unknown = _drop_unknown(body, model.request_schemas[kind])
    if unknown and not broken:  # a broken before-schema rule is about a field of the other mode
        broken.add("unknown_field")
    errors = list(model.explainers[kind].iter_errors(cleaned))
    if errors:
        return broken | {"schema:" + "/".join(map(str, e.relative_schema_path)) for e in errors}
    full = {**model.defaults, **cleaned}
    return broken | {r.id for r in model.rules if r.phase != "before_schema" and breaks(r, full)}


def assert_breaks_exactly(body: Any, label: Rejection) -> None:
    found = broken_rules(MODEL, body)
    if label.case.endswith("/type") and label.rule == label.case:
        # a value of the wrong type cannot be in an enum (or equal a const) of the right type
        sibling = label.case.rsplit("/", 1)[0]
        found -= {f"{sibling}/enum", f"{sibling}/const"}
    assert found == {label.rule}, f"{label.case}: breaks {found}"


@LARGE
@given(case=invalid_requests())
def test_every_invalid_request_gets_exactly_its_label(case: tuple[Any, Rejection]) -> None:
    body, label = case
    response = send(body)
    assert label.diff(response.status, response.payload) == [], response.payload
    assert_breaks_exactly(body, label)


@LARGE
@given(case=invalid_requests(strict=True))
def test_every_invalid_request_gets_exactly_its_label_from_a_strict_fake(case: tuple[Any, Rejection]) -> None:
    body, label = case
    response = send(body, strict=True)
    assert label.diff(response.status, response.payload) == [], response.payload


@pytest.mark.parametrize("case_id", sorted(invalid_case_ids()))
@share(12)
@given(data=st.data())
def test_each_invalid_case_breaks_its_rule_only(case_id: str, data: st.DataObject) -> None:
    body, label = data.draw(invalid_requests(rules=case_id, strict=True))
    assert label.case == case_id
    response = send(body, strict=True)
    assert label.diff(response.status, response.payload) == [], response.payload
    assert_breaks_exactly(body, label)


def _family(case_id: str) -> str:
    """Cases that are built the same way: a schema keyword, or a rule kind (and phase)."""
    if case_id.startswith("schema:"):
        return "keyword:" + case_id.rsplit("/", 1)[-1].removeprefix("schema:")
    rule = next(r for r in MODEL.rules if r.id == case_id)
    return f"rule:{rule.kind}:{rule.phase}"


def _shrink_cases() -> list[str]:
    """Shrinking costs about 2 s a case (the shrinker replays hundreds of bodies). CI shrinks
    the first case of each family -- each family is built by the same code -- and the ``long``
    profile shrinks every case."""
    ids = sorted(invalid_case_ids())
    if settings().max_examples > 100:
        return ids
    firsts: dict[str, str] = {}
    for case_id in ids:
        firsts.setdefault(_family(case_id), case_id)
    return sorted(firsts.values())


@pytest.mark.parametrize("case_id", _shrink_cases())
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # find() prints the 14 MB image case
def test_a_shrunk_case_still_breaks_its_rule_and_only_it(case_id: str) -> None:
    # find() with an always-true condition returns the first example *shrunk* to its minimum
    body, label = find(
        invalid_requests(rules=case_id, strict=True),
        lambda _: True,
        settings=settings(database=None, max_examples=1),
    )
    response = send(body, strict=True)
    assert label.diff(response.status, response.payload) == []
    assert_breaks_exactly(body, label)


def _contract_rule_ids(model: ModelContract) -> set[str]:
    """What must have a generator, read from the contract independently of the strategies:
    every rule id in rules.json, and every assertion keyword of the derived request schemas."""
    annotations = {"description", "default", "title", "$comment", "$schema", "$id", "x-content"}

    def walk(schema: Mapping[str, Any], pointer: str) -> Iterator[str]:
        for key, value in schema.items():
            if key in annotations or (key == "additionalProperties" and value is True):
                continue
            if key == "properties":
                for name, sub in value.items():
                    yield from walk(sub, f"{pointer}properties/{name}/")
            elif key == "items":
                yield from walk(value, f"{pointer}items/")
            else:
                yield f"schema:{pointer}{key}"

    keywords = {site for schema in model.request_schemas.values() for site in walk(schema, "")}
    return {rule.id for rule in model.rules} | keywords


def test_every_rule_and_schema_keyword_of_the_contract_has_an_invalid_case() -> None:
    assert _contract_rule_ids(MODEL) - invalid_case_ids(MODEL) == set()
    assert invalid_case_ids(MODEL) - _contract_rule_ids(MODEL) == set()


def test_schema_keywords_in_use_are_all_covered() -> None:
    keywords = {
        i.rsplit("/", 1)[-1].removeprefix("schema:") for i in _contract_rule_ids(MODEL) if i.startswith("schema:")
    }
    assert {"type", "enum", "const", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"} <= keywords
    assert {"required", "additionalProperties"} <= keywords


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


def test_a_schema_keyword_without_a_generator_is_reported_and_refused_by_valid_requests() -> None:
    changed = _with(MODEL, schema_patch={"pattern": "^[a-z ]*$"})
    assert _contract_rule_ids(changed) - invalid_case_ids(changed) == {"schema:properties/negative_prompt/pattern"}
    with pytest.raises(InvalidArgument, match="pattern"):
        find(build_body(shape_of(changed), Pins(fields={"negative_prompt": "x"})), lambda _: True)


# -- the compiled validator agrees with the reference ----------------------------------------


@LARGE
@given(body=st.one_of(valid_requests(), invalid_requests(strict=True).map(lambda case: case[0])))
def test_compiled_and_reference_validators_agree(body: Any) -> None:
    for mode in MODEL.request_schemas:
        assert MODEL.fast_validators[mode].is_valid(body) == MODEL.explainers[mode].is_valid(body)


# -- images ----------------------------------------------------------------------------------


@given(payload=images())
def test_valid_images_pass_every_image_check(payload: strategies.ImagePayload) -> None:
    found = inspect_image(payload.value, MODEL.image_limits)
    assert not hasattr(found, "check"), found
    if payload.encoding != "url":
        assert found is not None
        assert (found.format, found.width, found.height) == (payload.format, payload.width, payload.height)


@pytest.mark.parametrize("problem", sorted(IMAGE_PROBLEMS))
@share(10)
@given(data=st.data())
def test_each_image_problem_breaks_its_labelled_check(problem: str, data: st.DataObject) -> None:
    payload = data.draw(images(problems=problem))
    assert (payload.problem, payload.check) == (problem, IMAGE_PROBLEMS[problem])
    found = inspect_image(payload.value, MODEL.image_limits)
    assert getattr(found, "check", None) == payload.check


def test_every_image_check_of_the_contract_has_a_problem_generator() -> None:
    checks = {rule.spec["check"] for rule in MODEL.rules if rule.kind == "image"}
    assert checks == set(IMAGE_PROBLEMS.values())


# -- responses and timelines -----------------------------------------------------------------


@given(answer=responses())
def test_every_response_validates_against_the_contract(answer: strategies.WireResponse) -> None:
    CONTRACT.response_validator(answer.schema).validate(answer.body)
    operation = CONTRACT.operations[answer.operation]
    if answer.status == 200:
        assert answer.schema == operation.responses["200"]
    else:
        (key,) = [k for k in operation.errors if CONTRACT.errors[k].code == answer.body["error"]["code"]][:1]
        assert CONTRACT.errors[key].http_status == answer.status
    if answer.status == 429:
        assert int(dict(answer.headers)["retry-after"]) >= 1


CATALOGUE = [
    pytest.param(op, key, id=f"{op}-{key}") for op, spec in CONTRACT.operations.items() for key in spec.errors
] + [pytest.param("video_generations.get", None, id=f"status-{s}") for s in CONTRACT.status_projection.values()]


@pytest.mark.parametrize(("operation", "error"), CATALOGUE)
@share(20)
@given(data=st.data())
def test_each_catalogued_answer_is_generated_and_valid(operation: str, error: str | None, data: st.DataObject) -> None:
    answer = data.draw(responses(operation, errors=error) if error else responses(operation))
    CONTRACT.response_validator(answer.schema).validate(answer.body)
    if error:
        assert (answer.status, answer.body["error"]["code"]) == (
            CONTRACT.errors[error].http_status,
            CONTRACT.errors[error].code,
        )


@pytest.mark.parametrize("status", sorted(CONTRACT.status_projection.values()))
def test_every_query_status_is_generated(status: str) -> None:
    answer = find(responses("video_generations.get", statuses=status), lambda a: True)
    assert answer.body["status"] == status
    CONTRACT.response_validator(answer.schema).validate(answer.body)


def _allowed_pairs() -> set[tuple[str, str]]:
    wire = CONTRACT.status_projection
    return {(wire[t["from"]], wire[t["to"]]) for t in CONTRACT.lifecycle["transitions"]}


@given(timeline=task_timelines())
def test_task_timelines_are_what_a_real_task_could_produce(timeline: list[dict[str, Any]]) -> None:
    wire = CONTRACT.status_projection
    validator = CONTRACT.response_validator("responses/video_generations.get.response.schema.json")
    for body in timeline:
        validator.validate(body)
        assert (body["url"] is not None) == (body["status"] == wire["succeeded"])
    statuses = [b["status"] for b in timeline]
    assert statuses[0] == wire[CONTRACT.lifecycle["initial"]]
    terminal = {wire[s] for s in CONTRACT.lifecycle["terminal"]}
    assert statuses[-1] in terminal
    assert not terminal & set(statuses[:-1])
    for before, after in itertools.pairwise(timeline):
        pair = (before["status"], after["status"])
        assert pair[0] == pair[1] or pair in _allowed_pairs()
        assert before["updated_at"] <= after["updated_at"]
        assert before["progress"] <= after["progress"]
    assert len({(b["task_id"], b["created_at"]) for b in timeline}) == 1


@pytest.mark.parametrize("outcome", sorted(CONTRACT.status_projection[s] for s in CONTRACT.lifecycle["terminal"]))
def test_task_timelines_reach_each_outcome_and_every_transition(outcome: str) -> None:
    longest = find(task_timelines(outcomes=outcome), lambda t: len({b["status"] for b in t}) >= 3 or len(t) >= 3)
    assert longest[-1]["status"] == outcome


def test_task_timelines_cover_every_transition_of_the_lifecycle() -> None:
    seen: set[tuple[str, str]] = set()

    @settings(max_examples=100, database=None)
    @given(timeline=task_timelines())
    def collect(timeline: list[dict[str, Any]]) -> None:
        statuses = [b["status"] for b in timeline]
        seen.update((a, b) for a, b in itertools.pairwise(statuses) if a != b)

    collect()
    assert seen == _allowed_pairs()
