"""How a scenario speaks each face: credentials, a valid body, and the paths, read from the
face's contract (operations by verb and kind, answers through its reader).

Only the credentials and the sample bodies are written here (a client supplies those); every
path, status spelling and answer field comes from ``contracts/<face>/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from mockserver import load_contract
from mockserver.contract import Contract, Operation
from mockserver.engine.clock import DEFAULT_EPOCH

#: every door's virtual clock starts here, so one token serves every door of a run
_START = DEFAULT_EPOCH


def official_token(*, lifetime: float = 10 * 365 * 86_400, access_key: str | None = None) -> str:
    """A JWT as public Kling clients sign one (HS256, iss = access key, exp, nbf = now - 5)."""
    pair = load_contract("official").index["auth"]["default_keys"][0]
    claims = {"iss": access_key or pair["access_key"], "exp": int(_START + lifetime), "nbf": int(_START - 5)}
    return jwt.encode(claims, pair["secret_key"], algorithm="HS256", headers={"typ": "JWT"})


@dataclass(frozen=True)
class FaceClient:
    """One face as a scenario drives it."""

    name: str
    auth: dict[str, str]
    body: dict[str, Any]
    kind: str

    @property
    def contract(self) -> Contract:
        return load_contract(self.name)

    def _op(self, verb: str) -> Operation:
        ops = [op for op in self.contract.operations.values() if op.verb == verb]
        return next(op for op in ops if op.kind in (None, self.kind))

    @property
    def create_path(self) -> str:
        return self._op("task.create").path

    def poll_path(self, task_id: str) -> str:
        return self._op("task.get").path.replace("{task_id}", task_id)

    def read(self, what: str, body: Any) -> Any:
        return self.contract.reader.get(what, body)

    def result_url(self, body: Any, base_url: str) -> str | None:
        """The result URL an answer names, or derives from its task id (the openai face)."""
        return self.contract.result_url(body, base_url)

    def status(self, internal: str) -> str:
        return self.contract.status_projection[internal]


GATEWAY = FaceClient(
    "gateway",
    {"Authorization": "Bearer sk-test"},
    {"model": "kling-v2-6", "multi_prompt": [{"prompt": "a red fox in snow", "duration": 5}]},
    "text2video",
)
OFFICIAL = FaceClient(
    "official",
    {"Authorization": f"Bearer {official_token()}"},
    {"model_name": "kling-v2-6", "prompt": "a red fox in snow", "duration": "5", "mode": "std"},
    "text2video",
)
OPENAI = FaceClient(
    "openai",
    {"Authorization": "Bearer sk-test"},
    {"model": "kling-v2-6", "prompt": "a red fox in snow"},
    "text2video",
)
FACES = {"gateway": GATEWAY, "official": OFFICIAL, "openai": OPENAI}
