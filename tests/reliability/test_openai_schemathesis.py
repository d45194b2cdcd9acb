"""Schemathesis against the openai face's ``/openapi.json`` (its own run, as for the other faces).

In-process through the ASGI app, ``strict`` (an unknown field, which the face drops, is refused
as invalid data), in both generation modes. As on the gateway face, the one 5xx the real gateway
answers to valid HTTP is an unknown model's new-api 503 ``model_not_found``; positive data can be
refused by kling-v2-6's rules (``sound=on`` needs a pro size, image bytes must be a real image),
which JSON Schema cannot express.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mockserver import Engine, Service, VirtualClock, create_app, load_contract

CONTRACT = load_contract("openai")
MODEL_NOT_FOUND = CONTRACT.errors["model_not_found"]
SERVICE = Service(Engine(clock=VirtualClock(), seed=5), faces=["openai"], strict=True)
CONFIG = SchemathesisConfig.from_dict(
    {
        "headers": {"Authorization": "Bearer sk-test"},
        "generation": {"mode": "all", "max-examples": 100, "deterministic": True},
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SERVICE), config=CONFIG)


def no_server_error_but_an_unknown_model(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    if response.status_code < 500:
        return None
    body = case.body if isinstance(case.body, dict) else {}
    # A form sends a non-string value as its text (None as "null"): no model name either.
    sent = body.get("model")
    unknown_model = "model" in body and (not isinstance(sent, str) or sent not in CONTRACT.models)
    code = json.loads(response.content).get("error", {}).get("code") if response.content else None
    if unknown_model and (response.status_code, code) == (MODEL_NOT_FOUND.http_status, MODEL_NOT_FOUND.code):
        return True
    raise AssertionError(f"server error {response.status_code}: {response.content[:300]!r}")


@schema.parametrize()
def test_the_openai_face_conforms_to_its_own_openapi_document(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(
        excluded_checks=[positive_data_acceptance, not_a_server_error],
        additional_checks=[no_server_error_but_an_unknown_model],
    )
