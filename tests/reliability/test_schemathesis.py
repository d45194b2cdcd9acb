"""Schemathesis (an external, maintained property-based API tester) against ``/openapi.json``.

It runs in-process through the ASGI app (Schemathesis 4 loads the schema with ``from_asgi``
and calls the same app), once per face with that face's credentials (``Bearer sk-test`` on the
gateway, a JWT signed with the default access/secret pair on Kling's own API), in both
generation modes, with **every check** Schemathesis has except those in :data:`EXCLUDED`: the
one place that names a check that cannot pass by design, with its reason. Each excluded check
that is only partly impossible is replaced by a narrower one (:data:`ADDED`) that keeps the rest
of its promise. The servers run ``strict`` so that an unknown field, which the faces drop, is
also refused as invalid data.

``KLING_SCHEMATHESIS_REPORT=1`` prints the run's numbers (cases, creates accepted) at the end.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance, unsupported_method

from mockserver import Engine, Progression, Service, VirtualClock, create_app, load_contract

CONTRACT = load_contract()
IMMEDIATE = Progression.parse("immediate")
MODEL_NOT_FOUND = CONTRACT.errors["model_not_found"]
# Tasks end at once, so the run never exhausts an account's concurrency slots.
SERVICE = Service(Engine(clock=VirtualClock(), seed=5, progression=IMMEDIATE), faces=["gateway"], strict=True)
OFFICIAL = Service(Engine(clock=VirtualClock(), seed=5, progression=IMMEDIATE), faces=["official"], strict=True)
_PAIR = load_contract("official").index["auth"]["default_keys"][0]
# Valid for the whole run: the virtual clock stands still unless a test advances it.
_NOW = OFFICIAL.engine.clock.now()
TOKEN = jwt.encode({"iss": _PAIR["access_key"], "exp": _NOW + 3600, "nbf": _NOW - 5}, _PAIR["secret_key"])

#: Rules JSON Schema cannot state: the document carries them in ``x-rules`` only (every
#: ``requires`` rule is in the request schemas as ``if``/``then``). A schema-valid body that
#: breaks one of these is rightly refused with the rule's documented 400.
UNSTATABLE_KINDS = ("sum_equals", "image")
#: Refusals that depend on what came before, not on the body: an external_task_id the account
#: already used (Schemathesis repeats values). No schema can promise against them.
STATEFUL_RULES = frozenset({"external_task_id.unique", "concurrency.slots"})


def _unstatable(service: Service) -> frozenset[str]:
    return frozenset(
        rule.id
        for face in service.faces.values()
        for model in face.contract.models.values()
        for rule in model.rules
        if rule.kind in UNSTATABLE_KINDS
    )


#: The one place that excludes a Schemathesis check, per face, each with its reason.
EXCLUDED: dict[str, dict[Callable[..., Any], str]] = {
    "gateway": {
        not_a_server_error: (
            "the real gateway answers an unknown `model` with new-api's 503 model_not_found "
            "(catalogued and documented); replaced by no_server_error_but_the_gateways_unknown_model"
        ),
        positive_data_acceptance: (
            "cross-field rules JSON Schema cannot state (shot durations summing to `duration`; "
            "image bytes being a real JPEG/PNG of >= 300 px) refuse some schema-valid bodies; "
            "replaced by positive_data_accepted_unless_an_unstatable_rule_refuses_it"
        ),
    },
    "official": {
        unsupported_method: (
            "Kling's own API answers a wrong method with HTTP 404 and code 1202 (its error table), not 405"
        ),
        positive_data_acceptance: (
            "as on the gateway: the sums and image content JSON Schema cannot state; replaced by "
            "positive_data_accepted_unless_an_unstatable_rule_refuses_it"
        ),
    },
}

TALLY: Counter[str] = Counter()


def _config(authorization: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": authorization},
            "generation": {
                "mode": "all",
                # The suite's ci count per operation (about 10 s in all); deterministic, so CI
                # cannot flake on a new seed. Schemathesis's own phases add coverage cases.
                "max-examples": 100,
                "deterministic": True,
            },
        }
    )


schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SERVICE), config=_config("Bearer sk-test"))
official_schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(OFFICIAL), config=_config(f"Bearer {TOKEN}")
)


def no_server_error_but_the_gateways_unknown_model(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """``not_a_server_error``, except for the one 5xx the real gateway answers to valid HTTP:
    an unknown ``model`` gets new-api's 503 ``model_not_found`` (catalogued, documented in the
    OpenAPI document). No fault is armed in this run, so any other 5xx is a defect."""
    if response.status_code < 500:
        return None
    body = case.body if isinstance(case.body, dict) else {}
    unknown_model = isinstance(body.get("model"), str) and body["model"] not in CONTRACT.models
    code = json.loads(response.content).get("error", {}).get("code") if response.content else None
    if unknown_model and (response.status_code, code) == (MODEL_NOT_FOUND.http_status, MODEL_NOT_FOUND.code):
        return True
    raise AssertionError(f"server error {response.status_code}: {response.content[:300]!r}")


def _accepting(service: Service, face: str) -> Callable[..., bool | None]:
    unstatable = _unstatable(service)

    def positive_data_accepted_unless_an_unstatable_rule_refuses_it(
        ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
    ) -> bool | None:
        """``positive_data_acceptance`` for what the document can promise: a body generated
        as valid is accepted (2xx), unless the journal says the refusal came from a rule JSON
        Schema cannot state, from the state of the account (an external id used before), or
        from an unknown model (the gateway's documented 503)."""
        meta = case.meta
        if meta is None or not meta.generation.mode.is_positive or case.operation.method.upper() != "POST":
            return None
        TALLY[f"{face} positive creates"] += 1
        if response.status_code < 300:
            TALLY[f"{face} positive creates accepted"] += 1
            return True
        entry = service.engine.journal.entries()[-1]
        if entry.rule in unstatable or entry.rule in STATEFUL_RULES or entry.rule == "model.known":
            TALLY[f"{face} refused by {entry.rule}"] += 1
            return True
        raise AssertionError(
            f"a body valid by the document was refused: {response.status_code} rule {entry.rule!r} "
            f"param {entry.param!r}: {response.content[:300]!r}"
        )

    return positive_data_accepted_unless_an_unstatable_rule_refuses_it


def _count(face: str) -> Callable[..., None]:
    def count_cases(
        ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
    ) -> None:
        TALLY[f"{face} cases"] += 1
        TALLY[f"{face} {response.status_code // 100}xx"] += 1

    return count_cases


ADDED: dict[str, list[Any]] = {
    "gateway": [no_server_error_but_the_gateways_unknown_model, _accepting(SERVICE, "gateway"), _count("gateway")],
    "official": [_accepting(OFFICIAL, "official"), _count("official")],
}


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    if os.environ.get("KLING_SCHEMATHESIS_REPORT"):
        print("\nSchemathesis run:", json.dumps(dict(sorted(TALLY.items())), indent=1))


@schema.parametrize()
def test_the_fake_conforms_to_its_own_openapi_document(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(excluded_checks=list(EXCLUDED["gateway"]), additional_checks=ADDED["gateway"])


@official_schema.parametrize()
def test_the_official_face_conforms_to_its_own_openapi_document(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(excluded_checks=list(EXCLUDED["official"]), additional_checks=ADDED["official"])


def test_every_exclusion_names_a_check_and_a_reason() -> None:
    for face, checks in EXCLUDED.items():
        assert face in ("gateway", "official")
        for check, reason in checks.items():
            assert callable(check)
            assert len(reason) > 40, check
