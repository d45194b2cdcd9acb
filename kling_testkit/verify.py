"""Provider verification: send contract-derived requests to a running server and check every answer.

``kling-testkit verify --base-url URL --api-key KEY`` works against the real gateway, a staging
proxy or the fake. The requests come from a small, deterministic case list built from the
contract (:func:`build_cases`):

- valid requests: one text-to-video, one image-to-video with a generated PNG; each task is
  followed to a terminal status (poll interval and timeout), every answer and transition checked;
- a request without a key, and a query for a task that does not exist;
- invalid requests: one per named rule of the model (cross-field and image rules), and one per
  schema keyword in use (required, enum, type, maximum, maxLength, minItems, const).

Each invalid request is built from a valid one and confirmed with the fake's own validator
(``mockserver.validation.validate_create``) to break exactly the intended rule; its expected
answer (HTTP status, ``error.code``, ``error.param``) comes from the error catalogue. A case the
builder cannot produce is listed as omitted with its reason, never silently dropped.

Safety against a paid API: a hard request budget (``max_requests``, polls and retries included)
that is never exceeded, only two billable creates, and a dry run that prints the plan without
sending anything. Time is injected (``sleep``, ``monotonic``) so tests never wait.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image

from kling_testkit.checks import CHECKS, CheckContext, check_exchange, retry_after_seconds
from kling_testkit.failures import ContractViolation, Report, Severity
from kling_testkit.recording import Exchange
from mockserver.contract import Contract, ModelContract, Rule, load_contract
from mockserver.validation import Violation, validate_create

__all__ = [
    "DEFAULT_MAX_REQUESTS",
    "Case",
    "Expectation",
    "VerifyResult",
    "Verifier",
    "build_cases",
    "omitted_cases",
]

DEFAULT_MAX_REQUESTS = 50
CREATE = "video_generations.create"
GET = "video_generations.get"
MAX_RATE_LIMIT_RETRIES = 3


@dataclass(frozen=True)
class Expectation:
    """The refusal an invalid case must get: from the contract's error catalogue."""

    error: str
    status: int
    code: str
    param: str | None
    rule: str


@dataclass(frozen=True)
class Case:
    """One request verify sends. ``expect`` None means: must be accepted (and is followed).

    >>> case = build_cases()[0]
    >>> case.name, case.method, case.expect is None
    ('valid:text2video', 'POST', True)
    """

    name: str
    method: str
    path: str
    body: Any = None
    auth: bool = True
    expect: Expectation | None = None

    @property
    def follow(self) -> bool:
        return self.expect is None and self.method == "POST"

    def describe(self) -> str:
        """One line for the dry run: method, path, expectation, the body with long strings cut."""
        text = f"{self.method} {self.path}  [{self.name}]"
        if self.expect is not None:
            text += f"  expect {self.expect.status} {self.expect.code} param={self.expect.param}"
        elif self.follow:
            text += "  expect 200, then poll to a terminal status"
        if not self.auth:
            text += "  (no Authorization header)"
        if self.body is not None:
            text += "\n    body " + json.dumps(_cut(self.body))
        return text


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 80:
        return f"{value[:40]}...<{len(value)} chars>"
    if isinstance(value, Mapping):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


# -- building cases from the contract --------------------------------------------------------


@functools.cache
def _image(kind: str, width: int, height: int) -> str:
    """A data URI (or deliberately broken value) of a generated image."""
    buffer = io.BytesIO()
    if kind == "png":
        image = Image.new("RGB", (width, height))
        image.putdata([((x * 3) % 256, (y * 3) % 256, 128) for y in range(height) for x in range(width)])
        image.save(buffer, format="PNG")
    elif kind == "gif":
        Image.new("P", (width, height)).save(buffer, format="GIF")
    elif kind == "bilevel":  # many pixels, few bytes: exercises the pixel limit cheaply
        Image.new("1", (width, height)).save(buffer, format="PNG")
    elif kind == "truncated":
        Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()[:120]).decode("ascii")
    else:
        raise ValueError(kind)
    mime = "image/gif" if kind == "gif" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _bad_image(check: str, limits: Mapping[str, Any]) -> str | None:
    side = int(limits["min_side"])
    if check == "encoding":
        return "this is neither a URL nor base64 %%%"
    if check == "format":
        return _image("gif", side + 100, side)
    if check == "decodable":
        return _image("truncated", side + 100, side)
    if check == "min_side":
        return _image("png", side - 1, side - 1)
    if check == "aspect_ratio":
        return _image("png", side, int(side / float(limits["min_aspect"])) + side)
    if check == "max_pixels":
        width = int((float(limits["max_pixels"]) * 4 / 3) ** 0.5) + 100
        return _image("bilevel", width, width * 3 // 4)
    return None  # max_bytes needs an upload over the limit: too costly for a default run


def _valid_image(limits: Mapping[str, Any]) -> str:
    side = int(limits["min_side"])
    return _image("png", side * 4 // 3, side)


def _valid_bodies(model: ModelContract) -> dict[str, dict[str, Any]]:
    duration = int(model.defaults.get("duration", 5))
    t2v: dict[str, Any] = {
        "model": model.name,
        "multi_prompt": [{"prompt": "a red fox running through fresh snow, cinematic", "duration": duration}],
    }
    i2v = {**t2v, "image": _valid_image(model.image_limits)}
    i2v["multi_prompt"] = [{"prompt": "the subject slowly turns its head", "duration": duration}]
    return {"text2video": t2v, "image2video": i2v}


def _field_schema(model: ModelContract, name: str) -> Mapping[str, Any]:
    props: Mapping[str, Any] = model.request_schemas["image2video"].get("properties", {})
    return props.get(name) or model.request_schemas["text2video"].get("properties", {}).get(name) or {}


_NOTHING = object()


def _some_value(model: ModelContract, name: str, avoid: Any = _NOTHING) -> Any:
    schema = _field_schema(model, name)
    if schema.get("x-content") == "image":
        return _valid_image(model.image_limits)
    if "const" in schema and schema["const"] != avoid:
        return schema["const"]
    for value in schema.get("enum", []):
        if value != avoid:
            return value
    if schema.get("type") == "boolean":
        return not avoid if isinstance(avoid, bool) else True
    return None


def _items(body: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    total = int(body.get("duration", 5))
    first = dict(body["multi_prompt"][0])
    out = []
    for i in range(count):
        item = {**first, "prompt": f"shot {i + 1}: {first['prompt']}"}
        item["duration"] = total - (count - 1) if i == count - 1 else 1
        out.append(item)
    return out


def _apply(model: ModelContract, schema: Mapping[str, Any], body: dict[str, Any], *, satisfy: bool) -> dict[str, Any]:
    """``body`` changed to match (or to fail) a rule's ``when``/``then`` schema."""
    out = dict(body)
    for name, sub in schema.get("properties", {}).items():
        if "const" in sub:
            out[name] = sub["const"] if satisfy else _some_value(model, name, avoid=sub["const"])
            if not satisfy:
                return out
        if "maxItems" in sub:
            limit = int(sub["maxItems"])
            if satisfy:
                out[name] = list(out.get(name, []))[:limit]
            else:
                out[name] = _items(out, limit + 1)
                return out
    for name in schema.get("required", []):
        if satisfy and name not in out:
            out[name] = _some_value(model, name)
        elif not satisfy:
            out.pop(name, None)
            return out
    return out


def _oracle(contract: Contract, body: Any) -> Violation | None:
    result = validate_create(contract, body)
    return result if isinstance(result, Violation) else None


def _repair(
    contract: Contract, model: ModelContract, body: dict[str, Any], target: str, depth: int = 5
) -> dict[str, Any] | None:
    """Adjust ``body`` until the contract refuses it for ``target`` and nothing before it.

    A small depth-first search: when another rule fires first, try both ways of getting it out
    of the way (make its ``when`` false, or its ``then`` true) and look again.
    """
    found = _oracle(contract, body)
    if found is None:
        return None
    if found.rule == target:
        return body
    other = next((r for r in model.rules if r.id == found.rule), None)
    if other is None or depth == 0:
        return None
    if other.kind == "sum_equals":
        spec = other.spec
        total = sum(i.get(spec["item_field"], 0) for i in body.get(spec["items"], []))
        candidates = [{**body, spec["total"]: total}]
    elif other.kind == "requires":
        candidates = [
            _apply(model, other.spec["then"], body, satisfy=True),
            _apply(model, other.spec["when"], body, satisfy=False),
        ]
    else:
        return None
    for candidate in candidates:
        if (repaired := _repair(contract, model, candidate, target, depth - 1)) is not None:
            return repaired
    return None


def _expectation(contract: Contract, found: Violation) -> Expectation:
    spec = contract.errors[found.error]
    return Expectation(found.error, spec.http_status, spec.code, found.param, found.rule)


def _rule_body(model: ModelContract, rule: Rule, valid: Mapping[str, dict[str, Any]]) -> dict[str, Any] | None:
    if rule.kind == "requires":
        body = _apply(model, rule.spec["when"], dict(valid["text2video"]), satisfy=True)
        return _apply(model, rule.spec["then"], body, satisfy=False)
    if rule.kind == "sum_equals":
        spec = rule.spec
        body = dict(valid["text2video"])
        body[spec["items"]] = _items(body, 2)
        body[spec["items"]][-1][spec["item_field"]] += 1
        return body
    bad = _bad_image(rule.spec["check"], model.image_limits)
    if bad is None:
        return None
    return {**valid["image2video"], rule.param: bad}


def _schema_bodies(model: ModelContract, valid: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One body per schema keyword in use, each breaking the first field that has it."""
    base = valid["text2video"]
    schema = model.request_schemas["text2video"]
    props: Mapping[str, Any] = schema["properties"]
    out: list[dict[str, Any]] = []
    required = [n for n in schema.get("required", []) if "const" not in props[n]]
    if required:
        out.append({k: v for k, v in base.items() if k != required[0]})
    makers: list[tuple[str, Callable[[Mapping[str, Any]], Any]]] = [
        ("enum", lambda s: f"not-{s['enum'][0]}" if isinstance(s["enum"][0], str) else max(s["enum"]) + 1),
        ("type", lambda s: "yes" if s.get("type") == "boolean" else None),
        ("maximum", lambda s: s["maximum"] + 1),
        ("maxLength", lambda s: "x" * (int(s["maxLength"]) + 1)),
        ("minItems", lambda s: []),
        ("const", lambda s: f"{s['const']}-unknown"),
    ]
    for keyword, make in makers:
        for name, sub in props.items():
            if keyword in sub and (value := make(sub)) is not None:
                out.append({**base, name: value})
                break
    return out


def build_cases(contract: Contract | None = None, *, model: str = "kling-v2-6") -> list[Case]:
    """The deterministic case list verify sends, most important first.

    >>> names = [case.name for case in build_cases()]
    >>> names[:4]
    ['valid:text2video', 'valid:image2video', 'auth:missing_api_key', 'get:task_not_exist']
    >>> "invalid:sound.requires_pro" in names
    True
    """
    return _build(contract or load_contract(), model)[0]


def omitted_cases(contract: Contract | None = None, *, model: str = "kling-v2-6") -> dict[str, str]:
    """Named rules verify does not exercise, with the reason (shown in dry runs and reports).

    >>> sorted(omitted_cases())
    ['invalid:image.max_bytes', 'invalid:image_tail.max_bytes']
    """
    return _build(contract or load_contract(), model)[1]


@functools.cache
def _build(contract: Contract, model_name: str) -> tuple[list[Case], dict[str, str]]:
    model = contract.models[model_name]
    create = contract.operations[CREATE]
    get = contract.operations[GET]
    valid = _valid_bodies(model)
    cases = [Case(f"valid:{mode}", create.method, create.path, body) for mode, body in valid.items()]
    for mode, body in valid.items():
        if _oracle(contract, body) is not None:
            raise AssertionError(f"verify's valid {mode} request is refused by the contract: {_oracle(contract, body)}")
    missing_key = contract.errors["missing_api_key"]
    cases.append(
        Case(
            "auth:missing_api_key",
            create.method,
            create.path,
            valid["text2video"],
            auth=False,
            expect=Expectation("missing_api_key", missing_key.http_status, missing_key.code, None, "auth"),
        )
    )
    prefix = contract.index["task_id"]["prefix"]
    unknown = prefix + "0" * int(contract.index["task_id"]["length"])
    not_found = contract.errors["task_not_exist"]
    cases.append(
        Case(
            "get:task_not_exist",
            get.method,
            get.path.replace("{task_id}", unknown),
            expect=Expectation("task_not_exist", not_found.http_status, not_found.code, "task_id", "task.exists"),
        )
    )
    invalid: list[Case] = []
    omitted: dict[str, str] = {}
    seen: set[str] = set()
    ordered = sorted(model.rules, key=lambda r: (r.kind == "image" and r.param != "image", r.kind == "image"))
    for rule in ordered:
        name = f"invalid:{rule.id}"
        draft = _rule_body(model, rule, valid)
        if draft is None:
            omitted[name] = "needs an upload over the size limit"
            continue
        repaired = _repair(contract, model, draft, rule.id)
        if repaired is None:
            omitted[name] = f"no request breaking {rule.id} alone could be built from the contract"
            continue
        body = repaired
        found = _oracle(contract, body)
        assert found is not None
        seen.add(found.rule)
        invalid.append(Case(name, create.method, create.path, body, expect=_expectation(contract, found)))
    schema_cases = []
    for body in _schema_bodies(model, valid):
        found = _oracle(contract, body)
        if found is None or found.rule in seen:
            continue
        seen.add(found.rule)
        schema_cases.append(
            Case(f"invalid:{found.rule}", create.method, create.path, body, expect=_expectation(contract, found))
        )
    # Named rules on the main image first, then schema keywords, then the image_tail variants.
    head = [c for c in invalid if not c.name.startswith("invalid:image_tail.")]
    tail = [c for c in invalid if c.name.startswith("invalid:image_tail.")]
    return cases + head + schema_cases + tail, omitted


# -- running ---------------------------------------------------------------------------------


@dataclass
class VerifyResult:
    """What a run did: the report, every exchange (for ``--record``), requests sent."""

    report: Report
    exchanges: list[Exchange] = field(default_factory=list)
    requests_sent: int = 0


class BudgetExhausted(Exception):
    """No request left in the budget."""


class Verifier:
    """Runs the case list against ``base_url`` within ``max_requests`` requests.

    ``client`` (an ``httpx.Client``) may be injected, e.g. one bound to a test server;
    ``sleep`` and ``monotonic`` are injected so tests never wait; ``progress`` receives one
    line per step (the CLI prints them to stderr on a terminal).

    >>> verifier = Verifier("http://127.0.0.1:9", "sk-test", max_requests=3)
    >>> [case.name for case in verifier.plan()][:2]
    ['valid:text2video', 'valid:image2video']
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        poll_interval: float = 5.0,
        timeout: float = 600.0,
        client: httpx.Client | None = None,
        contract: Contract | None = None,
        cases: Sequence[Case] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        if poll_interval < 0 or timeout <= 0:
            raise ValueError("poll_interval must be >= 0 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.max_requests = max_requests
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.contract = contract or load_contract()
        self._cases = list(cases) if cases is not None else build_cases(self.contract)
        self._client = client
        self.sleep, self.monotonic, self.wall = sleep, monotonic, wall
        self.progress = progress or (lambda line: None)
        self.sent = 0

    def plan(self) -> list[Case]:
        """The cases in the order they are sent (a dry run prints these)."""
        return list(self._cases)

    def dry_run(self) -> str:
        """What a run would send, without sending anything."""
        lines = [
            f"verify (dry run) against {self.base_url}: {len(self._cases)} cases, budget {self.max_requests} "
            f"requests (polls every {self.poll_interval:g} s, timeout {self.timeout:g} s); nothing is sent"
        ]
        lines += [f"{i:3}. {case.describe()}" for i, case in enumerate(self._cases, start=1)]
        lines += [f"     omitted {name}: {why}" for name, why in omitted_cases(self.contract).items()]
        creates = sum(1 for c in self._cases if c.follow)
        lines.append(f"billable creates: {creates}; the rest are refused by contract or cost nothing")
        return "\n".join(lines)

    def run(self) -> VerifyResult:
        """Send the cases, follow accepted tasks, check everything; never exceed the budget."""
        own = self._client is None
        client = self._client or httpx.Client(timeout=30.0)
        report = Report("verify")
        result = VerifyResult(report)
        ctx = CheckContext(self.contract)
        server_checks = CHECKS.select(side="server")
        pending: dict[str, str] = {}  # task id -> case name
        try:
            for case in self._cases:
                name = case.name
                try:
                    exchange = self._send(client, case.method, case.path, case.body, auth=case.auth, result=result)
                except BudgetExhausted:
                    report.skipped[name] = f"budget of {self.max_requests} requests exhausted"
                    continue
                except httpx.HTTPError as exc:
                    report.cases[name] = [_transport_violation(case.name, exc)]
                    continue
                found = check_exchange(ctx, exchange, server_checks)
                found += self._expectations(case, exchange)
                report.cases[name] = found
                self.progress(f"[{self.sent}/{self.max_requests}] {name}: {_verdict(found)}")
                if case.follow and exchange.status == 200:
                    task_id = ctx.task_id_of(exchange)
                    if task_id:
                        pending[task_id] = name
                    else:
                        report.skipped[f"{name}::follow"] = "the create answer names no task id to poll"
            self._follow(client, ctx, pending, result)
        finally:
            if own:
                client.close()
        report.stats = {
            "requests": f"{self.sent}/{self.max_requests}",
            "tasks followed": len(pending),
        }
        result.requests_sent = self.sent
        return result

    def _follow(self, client: httpx.Client, ctx: CheckContext, pending: dict[str, str], result: VerifyResult) -> None:
        report = result.report
        server_checks = CHECKS.select(side="server")
        get = self.contract.operations[GET]
        deadline = self.monotonic() + self.timeout
        open_tasks = dict(pending)
        while open_tasks:
            if self.monotonic() >= deadline:
                for task_id, name in open_tasks.items():
                    report.cases.setdefault(f"{name}::follow", []).append(
                        ContractViolation(
                            "verify.terminal_within_timeout",
                            f"task {task_id} did not reach a terminal status within {self.timeout:g} s",
                            operation=GET,
                            json_path="$.status",
                            expected=sorted(ctx.terminal),
                            actual=ctx.timelines[task_id].last_status if task_id in ctx.timelines else None,
                            check="verify",
                        )
                    )
                return
            self.sleep(self.poll_interval)
            for task_id in list(open_tasks):
                name = open_tasks[task_id]
                key = f"{name}::follow"
                try:
                    exchange = self._send(client, "GET", get.path.replace("{task_id}", task_id), None, result=result)
                except BudgetExhausted:
                    for left in open_tasks.values():
                        report.skipped[f"{left}::follow"] = (
                            f"budget of {self.max_requests} requests exhausted before a terminal status"
                        )
                    return
                except httpx.HTTPError as exc:
                    report.cases.setdefault(key, []).append(_transport_violation(name, exc))
                    del open_tasks[task_id]
                    continue
                found = check_exchange(ctx, exchange, server_checks)
                report.cases.setdefault(key, []).extend(found)
                body = exchange.response_body
                status = body.get("status") if isinstance(body, Mapping) else None
                self.progress(f"[{self.sent}/{self.max_requests}] {key}: {status} {_verdict(found)}")
                if status in ctx.terminal or status not in ctx.reachable or exchange.status >= 400:
                    # terminal, or an answer the contract cannot follow (already reported)
                    del open_tasks[task_id]

    def _send(
        self, client: httpx.Client, method: str, path: str, body: Any, *, result: VerifyResult, auth: bool = True
    ) -> Exchange:
        for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
            if self.sent >= self.max_requests:
                raise BudgetExhausted
            headers = {"Authorization": f"Bearer {self.api_key}"} if auth else {}
            self.sent += 1
            response = client.request(method, self.base_url + path, json=body, headers=headers)
            exchange = Exchange.from_httpx(response, timestamp=self.wall(), source=f"request {self.sent}")
            result.exchanges.append(exchange)
            wait = retry_after_seconds(response.headers.get("retry-after"), self.wall())
            if response.status_code != 429 or attempt == MAX_RATE_LIMIT_RETRIES:
                return exchange
            self.progress(f"429: waiting {wait if wait is not None else self.poll_interval:g} s as asked")
            self.sleep(wait if wait is not None else max(self.poll_interval, 1.0))
        raise AssertionError("unreachable")  # the loop returns on its last attempt

    def _expectations(self, case: Case, exchange: Exchange) -> list[ContractViolation]:
        out: list[ContractViolation] = []
        body = exchange.response_body
        error = body.get("error") if isinstance(body, Mapping) else None
        common: dict[str, Any] = {"operation": CREATE if case.method == "POST" else GET, "status": exchange.status}
        if case.expect is None:
            if exchange.status != 200:
                out.append(
                    ContractViolation(
                        "verify.valid_accepted",
                        f"a valid request was refused with {exchange.status}",
                        json_path="$",
                        expected=200,
                        actual=error if error is not None else exchange.status,
                        check="verify",
                        **common,
                    )
                )
            return out
        expect = case.expect
        if exchange.status != expect.status:
            out.append(
                ContractViolation(
                    "verify.invalid_rejected",
                    f"expected {expect.status} {expect.code} for {case.name}, got {exchange.status}",
                    json_path="$",
                    expected=f"{expect.status} {expect.code} (param {expect.param})",
                    actual=exchange.status,
                    check="verify",
                    **common,
                )
            )
            return out
        if not isinstance(error, Mapping):
            return out  # error_object_well_formed reports the shape
        for name, wanted, says in (("code", expect.code, "should be"), ("param", expect.param, "should name")):
            if error.get(name) != wanted:
                out.append(
                    ContractViolation(
                        f"verify.error_{name}",
                        f"{case.name}: error.{name} {says} {wanted!r}",
                        json_path=f"$.error.{name}",
                        expected=wanted,
                        actual=error.get(name),
                        check="verify",
                        **common,
                    )
                )
        return out


def _transport_violation(name: str, exc: Exception) -> ContractViolation:
    return ContractViolation(
        "verify.transport",
        f"{name}: no HTTP answer ({type(exc).__name__}: {exc})",
        json_path="$",
        part="response",
        expected="an HTTP response",
        actual=str(exc),
        severity=Severity.ERROR,
        check="verify",
    )


def _verdict(found: Sequence[ContractViolation]) -> str:
    return "ok" if not found else f"{len(found)} violation(s): " + ", ".join(v.rule for v in found)
