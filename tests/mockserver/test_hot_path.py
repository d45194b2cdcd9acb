"""The hot path's shortcuts say exactly what the reference code they replace says.

Each shortcut (issue 14) stands in for a slower, obviously right computation on every request;
these properties compare the two on generated inputs, so a shortcut that drifts fails here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from python_multipart.multipart import parse_options_header

from mockserver import Engine, Service, VirtualClock
from mockserver._frozen import fast_init
from mockserver.engine import TaskView
from mockserver.engine.core import uuid_text
from mockserver.faces.base import Handled
from mockserver.faces.official import OfficialFace, video_uuid
from mockserver.http import ApiRequest, ApiResponse
from mockserver.multipart import FormLimits, FormProblem, boundary_of
from mockserver.service import _Route
from mockserver.validation.request import Accepted


@given(st.integers(min_value=0, max_value=2**128 - 1), st.integers(min_value=1, max_value=5))
def test_uuid_text_is_the_uuid_modules_rendering(bits: int, version: int) -> None:
    assert uuid_text(bits, version) == str(uuid.UUID(int=bits, version=version))


@given(st.text(min_size=1, max_size=40))
def test_video_uuid_is_uuid5_of_the_task_url(task_id: str) -> None:
    try:
        expected = str(uuid.uuid5(uuid.NAMESPACE_URL, f"kling-testkit:{task_id}"))
    except UnicodeEncodeError:  # a lone surrogate (no task id is one): both refuse it
        with pytest.raises(UnicodeEncodeError):
            video_uuid(task_id)
        return
    assert video_uuid(task_id) == expected


def _reference_match(service: Service, method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
    """Routing as it was before the slash-count index: every route's regex, in table order."""
    for route in service._routes:
        if route.prefix and not path.startswith(route.prefix + "/"):
            continue
        params = route.operation.match(path[len(route.prefix) :] if route.prefix else path)
        if params is not None and method in route.methods:
            return route.face.name, route.operation.id, params
    return None


_SERVICE = Service(Engine(clock=VirtualClock()))
_TEMPLATES = sorted({route.prefix + route.operation.path for route in _SERVICE._routes})
_SEGMENT = st.text(alphabet="abc/{}._-%0", max_size=6)


@st.composite
def _paths(draw: st.DrawFn) -> str:
    """Paths near the route table: templates with their parameters filled (or emptied), cut,
    extended, or with a segment changed."""
    template = draw(st.sampled_from(_TEMPLATES))
    filled = re.sub(r"\{\w+\}", lambda _: draw(_SEGMENT), template)
    return draw(
        st.sampled_from(
            [filled, filled + "/" + draw(_SEGMENT), filled.rsplit("/", 1)[0], filled.replace("/v1", draw(_SEGMENT))]
        )
    )


@given(st.sampled_from(["GET", "HEAD", "POST", "DELETE"]), _paths())
def test_routing_by_segment_count_finds_what_every_route_finds(method: str, path: str) -> None:
    found = _SERVICE.match(method, path)
    got = None if found is None else (found[0].name, found[1].id, found[2])
    assert got == _reference_match(_SERVICE, method, path)


def _shapes() -> list[Any]:
    from mockserver.validation.request import _compiled

    return [
        shape
        for face in _SERVICE.faces.values()
        for model in face.contract.models.values()
        for shape in _compiled(model).shapes.values()
    ]


_SHAPES = _shapes()
_JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3))


@st.composite
def _bodies(draw: st.DrawFn) -> tuple[Any, Any]:
    """A shape and a body near it: its own member names (nested objects and arrays of objects
    included) mixed with unknown ones, at every level."""
    shape = draw(st.sampled_from(_SHAPES))

    def near(shape: Any, depth: int) -> Any:
        names = draw(st.lists(st.sampled_from(sorted(shape.keys)), max_size=6, unique=True))
        names += draw(st.lists(st.sampled_from(["x", "extra", "prompt_", "mode "]), max_size=1))
        out: dict[str, Any] = {}
        for name in names:
            child = shape.children.get(name)
            if child is None or depth > 2:
                out[name] = draw(_JSON_LEAF)
            elif name in shape.arrays:
                out[name] = [near(child, depth + 1) for _ in range(draw(st.integers(0, 3)))]
            else:
                out[name] = near(child, depth + 1)
        return out

    return shape, near(shape, 0)


@settings(max_examples=500)
@given(_bodies())
def test_all_known_says_what_the_unknown_paths_walk_says(case: tuple[Any, Any]) -> None:
    from mockserver.validation.request import _all_known, _unknown_paths

    shape, body = case
    assert _all_known(body, shape) == (not _unknown_paths(body, shape))


def test_the_kept_match_is_forgotten_when_the_route_table_is_rebuilt() -> None:
    service = Service(Engine(clock=VirtualClock()))
    before = service.match("GET", "/v1/video/generations/t1")
    service.configure(keys=["sk-other"])  # new faces, new route table
    after = service.match("GET", "/v1/video/generations/t1")
    assert before is not None
    assert after is not None
    assert before[0] is not service.faces["gateway"]
    assert after[0] is service.faces["gateway"]
    answer = service.handle_simple("GET", "/v1/video/generations/t1", headers=[("authorization", "Bearer sk-test")])
    assert answer.status == 401  # the old key is refused: the answer came from the new face


def test_a_kept_match_is_for_its_method_and_path_only() -> None:
    service = Service(Engine(clock=VirtualClock()))
    assert service.match("GET", "/v1/video/generations/t1") is not None
    assert service.match("DELETE", "/v1/video/generations/t1") is None
    assert service.match("GET", "/v1/video/generations/t1/x") is None
    found = service.match("GET", "/v1/video/generations/t2")
    assert found is not None
    assert found[2] == {"task_id": "t2"}


@st.composite
def _rule_bodies(draw: st.DrawFn) -> tuple[Any, str, dict[str, Any]]:
    """A model, one of its modes and a body drawn from the values its rules name."""
    model = draw(st.sampled_from(_MODELS))
    mode = draw(st.sampled_from(sorted(model.request_schemas)))
    props = model.request_schemas[mode].get("properties", {})
    body: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(sorted(props)), max_size=8, unique=True)):
        sub = props[name]
        options = [*sub.get("enum", []), *([sub["const"]] if "const" in sub else [])]
        body[name] = draw(st.sampled_from(options) if options else _JSON_LEAF)
    return model, mode, body


_MODELS = [model for face in _SERVICE.faces.values() for model in face.contract.models.values()]


@settings(max_examples=300)
@given(_rule_bodies())
def test_one_check_per_rule_group_agrees_with_checking_each_rule(case: tuple[Any, str, dict[str, Any]]) -> None:
    from mockserver.validation.request import _check_requires, _compiled

    model, mode, body = case
    rules = _compiled(model).by_mode[mode]
    for group, combined in (
        (rules.refuse_early, rules.refuse_early_ok),
        (rules.warn_early, rules.warn_early_ok),
        (rules.warn_late, rules.warn_late_ok),
    ):
        fires = any(_check_requires(rule, body) for rule in group)
        assert (combined is not None and not combined.is_valid(body)) == fires


def _official_token(service: Service, **claims: Any) -> list[tuple[str, str]]:
    import jwt

    pair = service.faces["official"].contract.index["auth"]["default_keys"][0]
    now = service.engine.clock.now()
    token = jwt.encode({"iss": pair["access_key"], "exp": now + 600, **claims}, pair["secret_key"], algorithm="HS256")
    return [("authorization", f"Bearer {token}")]


def _auth_rule(service: Service, headers: list[tuple[str, str]]) -> str | None:
    service.handle_simple("GET", "/v1/videos/text2video/1", headers=headers)
    return service.engine.journal.entries()[-1].rule  # task_exists: the token was accepted


def test_a_cached_token_is_refused_once_the_clock_passes_its_exp() -> None:
    service = Service(Engine(clock=VirtualClock()))
    headers = _official_token(service)
    skew = float(service.faces["official"].contract.index["auth"]["jwt"]["clock_skew_seconds"])
    assert _auth_rule(service, headers) == "task.exists"  # verified, and now cached
    service.engine.advance_clock(600 + skew - 1)
    assert _auth_rule(service, headers) == "task.exists"
    service.engine.advance_clock(1)
    assert _auth_rule(service, headers) == "auth.exp"
    assert _auth_rule(service, headers) == "auth.exp"


def test_a_cached_token_is_accepted_once_the_clock_reaches_its_nbf() -> None:
    service = Service(Engine(clock=VirtualClock()))
    skew = float(service.faces["official"].contract.index["auth"]["jwt"]["clock_skew_seconds"])
    headers = _official_token(service, nbf=service.engine.clock.now() + 60)
    assert _auth_rule(service, headers) == "auth.nbf"
    service.engine.advance_clock(60 - skew)
    assert _auth_rule(service, headers) == "task.exists"


@pytest.mark.parametrize(
    ("spelling", "rule"),
    [
        pytest.param("bearer  {token} ", "task.exists", id="another-spelling-of-bearer-is-verified-too"),
        pytest.param("Basic {token}", "auth.header", id="the-same-token-under-another-scheme"),
        pytest.param("Bearer {token}x", "auth.signature", id="the-token-with-a-byte-more"),
    ],
)
def test_the_token_cache_answers_only_for_the_header_it_verified(spelling: str, rule: str) -> None:
    # The cache is keyed by the whole header value: a header that differs from a verified one
    # in any way is parsed and checked afresh, whatever token it carries.
    service = Service(Engine(clock=VirtualClock()))
    headers = _official_token(service)
    assert _auth_rule(service, headers) == "task.exists"
    token = headers[0][1].removeprefix("Bearer ")
    assert _auth_rule(service, [("authorization", spelling.format(token=token))]) == rule
    assert _auth_rule(service, [*headers, *headers]) == "auth.header"  # two headers, each verified before


def test_a_token_that_is_no_jwt_is_still_looked_up_as_an_api_key() -> None:
    service = Service(Engine(clock=VirtualClock()))
    _auth_rule(service, _official_token(service))  # a cache that holds a token
    assert _auth_rule(service, [("authorization", "Bearer not-a-jwt-key")]) == "auth.api_key"


@given(st.integers(min_value=0, max_value=2**64))
def test_a_tasks_seed_is_drawn_as_randrange_draws_it(seed: int) -> None:
    import random

    engine = Engine(clock=VirtualClock(), seed=seed)
    reference = random.Random(seed)
    for _ in range(5):
        assert engine._seed_draw() == reference.randrange(2**31)


def test_terminal_by_value_is_the_lifecycles_terminal_set() -> None:
    from mockserver.engine.lifecycle import Status, terminal_statuses

    assert {status for status in Status if status.terminal} == terminal_statuses()


_BOUNDARY = b"kling-b0undary"


@st.composite
def _forms(draw: st.DrawFn) -> bytes:
    """Multipart bodies around the plain shape clients send (half of them plain throughout):
    names and file names with and without characters that need care, values holding CRLF,
    dashes and the boundary itself, extra and duplicated headers, odd spacing, LF lines, a
    preamble, cut or missing endings."""
    plain = draw(st.booleans())

    def pick(usual: bytes, *others: bytes) -> bytes:  # one deviation at a time, mostly
        return usual if plain or draw(st.integers(0, 3)) else draw(st.sampled_from(others))

    crlf = pick(b"\r\n", b"\n")
    names = [b"prompt", b"model", b"seconds", b"a.b", b"x[1]"] + ([] if plain else [b"na me", b'q"uote', b""])
    values = st.lists(
        st.sampled_from(
            [b"a fox", b"", b"\r\n", b"--", b"--" + _BOUNDARY, b"\r\n--" + _BOUNDARY + b"x", b" pad ", b"\xff"]
        ),
        max_size=3,
    ).map(b"".join)
    out = pick(b"", b"preamble\r\n")
    for _ in range(draw(st.integers(0, 4))):
        out += b"--" + _BOUNDARY + crlf
        disposition = b'form-data; name="' + draw(st.sampled_from(names)) + b'"'
        if draw(st.booleans()):
            file_names = [b"a.png", b"", b"a b.jpg"] + ([] if plain else [b"c:\\x.png"])
            disposition += b'; filename="' + draw(st.sampled_from(file_names)) + b'"'
        headers = [b"Content-Disposition" + pick(b": ", b":", b":  ", b" : ") + disposition]
        if draw(st.booleans()):
            extra = [b"Content-Type: image/png", b"X-A: 1"] + ([] if plain else [b"content-type: text/plain "])
            headers.append(draw(st.sampled_from(extra)))
        if not plain and draw(st.booleans()):
            headers = headers[::-1] + headers[:1]
        out += crlf.join(headers) + crlf + crlf + draw(values) + crlf
    return out + pick(b"--" + _BOUNDARY + b"--\r\n", b"--" + _BOUNDARY + b"--", b"--" + _BOUNDARY, b"")


def _plain_part(name: bytes = b"prompt", extra: bytes = b"", data: bytes = b"a fox") -> bytes:
    return (
        b"--"
        + _BOUNDARY
        + b'\r\nContent-Disposition: form-data; name="'
        + name
        + b'"\r\n'
        + extra
        + b"\r\n"
        + data
        + b"\r\n"
    )


_END = b"--" + _BOUNDARY + b"--\r\n"


@settings(max_examples=500)
# the edges a plain reading must leave to python-multipart, each on its own
@example(_plain_part() * 3 + _END, FormLimits(max_parts=2))
@example(b"preamble\r\n" + _plain_part() + _END, FormLimits())
@example(_plain_part(extra=b'Content-Disposition: form-data; name="model"\r\n') + _END, FormLimits())
@example(_plain_part(data=b"12345") + _END, FormLimits(max_field_bytes=4))
@example(_plain_part() + b"--" + _BOUNDARY + b"--\r\nepilogue", FormLimits())
@example(_plain_part() + b"--" + _BOUNDARY, FormLimits())
@example(b"x" * (len(_BOUNDARY) + 2) + _plain_part()[len(_BOUNDARY) + 2 :] + _END, FormLimits())
@given(
    _forms(),
    st.sampled_from(
        [FormLimits(), FormLimits(max_parts=2), FormLimits(max_field_bytes=4), FormLimits(max_header_bytes=60)]
    ),
)
def test_a_plain_form_reads_as_python_multipart_reads_it(body: bytes, limits: FormLimits) -> None:
    from mockserver.multipart import _parse, _plain_form

    plain = _plain_form(body, _BOUNDARY, limits)
    if plain is not None:
        assert plain == _parse(body, _BOUNDARY, limits)


def test_the_openai_sdks_form_is_a_plain_form() -> None:
    import httpx

    from mockserver.multipart import _plain_form, boundary_of

    request = httpx.Request(
        "POST",
        "https://api.modelstream.ai/v1/videos",
        data={"model": "kling-v2-6", "prompt": "a red fox", "seconds": "5"},
        files={"input_reference": ("frame.png", b"\x89PNG\r\n--x", "image/png")},
    )
    boundary = boundary_of(request.headers["content-type"])
    assert isinstance(boundary, bytes)
    parts = _plain_form(request.read(), boundary, FormLimits())
    assert parts is not None
    assert [(p.name, p.filename, p.content_type) for p in parts][-1] == ("input_reference", "frame.png", "image/png")


def test_a_remembered_key_is_the_faces_until_the_keys_change() -> None:
    service = Service(Engine(clock=VirtualClock()))

    def status(*values: str) -> int:
        headers = [("authorization", value) for value in values]
        return service.handle_simple("GET", "/v1/video/generations/t1", headers=headers).status

    accepted = 400  # past auth: the gateway's task_not_exist for t1
    assert status("Bearer sk-test") == status("Bearer sk-test") == accepted  # the second is remembered
    assert status("Bearer sk-other") == 401
    assert status("Bearer sk-test", "Bearer sk-test") == 401  # two headers: refused, remembered or not
    service.configure(keys=["sk-other"])
    assert status("Bearer sk-test") == 401
    assert status("Bearer sk-other") == accepted


_FAST_INIT = [ApiRequest, ApiResponse, Handled, TaskView, Accepted, _Route]


def _reference(cls: type[Any]) -> type[Any]:
    """The same fields as a plain frozen, slotted dataclass: what ``fast_init`` replaces."""
    return dataclasses.make_dataclass(
        cls.__name__,
        [
            (f.name, f.type, dataclasses.field(default=f.default, default_factory=f.default_factory))
            for f in dataclasses.fields(cls)
        ],
        frozen=True,
        slots=True,
    )


def _shown(default: Any) -> Any:
    # a factory default is a marker object in both (dataclasses' own, fast_init's): each shows
    # as <factory>
    return repr(default) if repr(default) == "<factory>" else default


@pytest.mark.parametrize("cls", _FAST_INIT, ids=lambda c: c.__name__)
def test_a_fast_init_takes_the_dataclass_init_arguments(cls: type[Any]) -> None:
    fast, reference = inspect.signature(cls.__init__), inspect.signature(_reference(cls).__init__)
    assert [(p.name, p.kind, _shown(p.default)) for p in fast.parameters.values()] == [
        (p.name, p.kind, _shown(p.default)) for p in reference.parameters.values()
    ]


@pytest.mark.parametrize("cls", _FAST_INIT, ids=lambda c: c.__name__)
@given(data=st.data())
def test_a_fast_init_stores_every_field_and_stays_frozen(cls: type[Any], data: st.DataObject) -> None:
    fields = dataclasses.fields(cls)
    values = {f.name: data.draw(st.integers() | st.text(max_size=3) | st.none(), label=f.name) for f in fields}
    # positionally for some, by keyword for the rest, defaults left out where the test draws so
    split = data.draw(st.integers(min_value=0, max_value=len(fields)), label="positional")
    omit = {f.name for f in fields[split:] if f.default is not dataclasses.MISSING and data.draw(st.booleans())}
    args = [values[f.name] for f in fields[:split]]
    kwargs = {f.name: values[f.name] for f in fields[split:] if f.name not in omit}
    built, expected = cls(*args, **kwargs), _reference(cls)(*args, **kwargs)
    assert [getattr(built, f.name) for f in fields] == [getattr(expected, f.name) for f in fields]
    assert built == cls(*args, **kwargs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, fields[0].name, "changed")
    assert getattr(dataclasses.replace(built, **{fields[0].name: "changed"}), fields[0].name) == "changed"


def test_fast_init_refuses_what_it_cannot_build() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Later:
        x: int
        y: int = dataclasses.field(default=0, init=False)

    for cls in (NoSlots, Later):
        with pytest.raises(TypeError, match="fast_init"):
            fast_init(cls)


def test_a_factory_default_is_a_new_value_for_each_instance() -> None:
    @fast_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class Bag:
        items: list[int] = dataclasses.field(default_factory=list)

    first, second = Bag(), Bag()
    first.items.append(1)
    assert (first.items, second.items, Bag([2]).items) == ([1], [], [2])


def _reference_boundary(content_type: str | None) -> bytes | None:
    """The boundary as python-multipart reads it (before the fast path for what clients send)."""
    _, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    return boundary if boundary and len(boundary) <= 70 else None


_TOKEN = st.text(alphabet="abcXYZ019'+_.-", max_size=75)
_CONTENT_TYPES = st.builds(
    lambda head, sep, value, tail: f"{head}{sep}boundary={value}{tail}",
    # mostly the form clients send, so the fast path's edges are what gets explored
    st.sampled_from(["multipart/form-data"] * 4 + ["Multipart/Form-Data", "multipart/form-data ", "text/plain"]),
    st.sampled_from(["; "] * 4 + [";", ";  ", "; x=1; "]),
    _TOKEN,
    st.just("") | st.text(alphabet='abc"; =/\\(),', max_size=6),
)


@settings(max_examples=500)
@example("multipart/form-data; boundary=kling-bench-boundary")
@example("multipart/form-data; boundary=" + "a" * 71)
@example("multipart/form-data; boundary='quoted'")
@example("multipart/form-data; boundary=abc;x")
@given(_CONTENT_TYPES)
def test_a_simple_content_type_gives_the_boundary_python_multipart_reads(content_type: str) -> None:
    found = boundary_of(content_type)
    assert (None if isinstance(found, FormProblem) else found) == _reference_boundary(content_type)


@settings(max_examples=60)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"mode": st.sampled_from(["std", "pro"]), "duration": st.sampled_from(["5", "10"])},
            optional={"watermark_info": st.fixed_dictionaries({"enabled": st.booleans()})},
        ),
        min_size=1,
        max_size=4,
    )
)
def test_the_official_projection_reads_each_tasks_own_request(bodies: list[dict[str, Any]]) -> None:
    # Kept parts are keyed by the stored request, not the task id: after a reset the same seeded
    # ids come back for other requests, and each task must still show its own watermark and units.
    from mockserver import Progression

    engine = Engine(clock=VirtualClock(), seed=3, progression=Progression(mode="immediate"))
    service = Service(engine)
    face = service.faces["official"]
    assert isinstance(face, OfficialFace)
    pair = face.contract.index["auth"]["default_keys"][0]
    for body in bodies:
        engine.reset()
        task = engine.create_task(
            model="kling-v2-6",
            kind="text2video",
            request={"model_name": "kling-v2-6", "prompt": "a fox", **body},
            video=_video(int(body["duration"])),
            account="ak:" + pair["access_key"],
        )
        shown = face.project(task, "http://x.test")
        face._from_request.clear()
        assert shown == face.project(task, "http://x.test")
        assert shown["watermark_info"] == {"enabled": body.get("watermark_info", {}).get("enabled") is True}
        assert shown["final_unit_deduction"] == face._units(task.request, task)


def _video(duration: int) -> Any:
    from mockserver.engine.core import video_spec

    return video_spec(duration, 1280, 720, 24, False)


class _Never:
    """A compiled schema that accepts nothing: validation without its first check."""

    @staticmethod
    def is_valid(instance: Any) -> bool:  # noqa: ARG004 - a schema's signature
        return False


@contextlib.contextmanager
def _rule_by_rule(contract: Any) -> Iterator[None]:
    """Validation as it ran before the two-check path: each model's ``clean_body`` refuses all."""
    from mockserver.validation.request import _compiled

    saved = []
    for model in contract.models.values():
        by_mode = _compiled(model).by_mode
        saved.append((by_mode, dict(by_mode)))
        for mode, rules in list(by_mode.items()):
            by_mode[mode] = dataclasses.replace(rules, clean_body=_Never())  # type: ignore[index]
    try:
        yield
    finally:
        for by_mode, before in saved:
            by_mode.update(before)  # type: ignore[attr-defined]


def _creates(face: str) -> st.SearchStrategy[Any]:
    from kling_testkit.strategies import invalid_requests, valid_requests

    return valid_requests(face=face) | invalid_requests(face=face).map(lambda case: case[0])


@settings(max_examples=150, deadline=None)
@given(st.data(), st.sampled_from(["gateway", "official"]), st.booleans())
def test_two_checks_accept_exactly_what_the_rule_by_rule_path_accepts(
    data: st.DataObject, face: str, strict: bool
) -> None:
    from mockserver.validation import validate_create

    contract = _SERVICE.faces[face].contract
    body = data.draw(_creates(face), label="body")
    modes = [None, *sorted({m for model in contract.models.values() for m in model.request_schemas})]
    fast = [validate_create(contract, body, strict=strict, mode=mode) for mode in modes]
    with _rule_by_rule(contract):
        slow = [validate_create(contract, body, strict=strict, mode=mode) for mode in modes]
    assert fast == slow


@settings(max_examples=300)
@given(_rule_bodies(), st.data())
def test_the_clean_checks_are_the_checks_they_stand_for(
    case: tuple[Any, str, dict[str, Any]], data: st.DataObject
) -> None:
    from mockserver.validation.request import _all_known, _compiled

    model, mode, body = case
    compiled = _compiled(model)
    shape, rules = compiled.shapes[mode], compiled.by_mode[mode]
    if data.draw(st.booleans(), label="unknown member"):
        body = {**body, data.draw(st.sampled_from(["x", "prompt_", *sorted(shape.keys)])): data.draw(_JSON_LEAF)}

    def none_fires(check: Any, value: Any) -> bool:
        return check is None or check.is_valid(value)

    assert rules.clean_body.is_valid(body) == (
        _all_known(body, shape)
        and none_fires(rules.refuse_early_ok, body)
        and none_fires(rules.warn_early_ok, body)
        and model.fast_validators[mode].is_valid(body)
    )
    full = {**model.defaults, **body}
    assert none_fires(rules.clean_full, full) == (
        compiled.requires_ok[mode].is_valid(full) and none_fires(rules.warn_late_ok, full)
    )


@settings(max_examples=500)
@given(_bodies())
def test_the_closed_schema_says_what_all_known_says(case: tuple[Any, Any]) -> None:
    # the contracts' schemas close their objects themselves today; this check does not rely on it
    from mockserver.contract import compile_schema
    from mockserver.validation.request import _all_known, _closed

    shape, body = case
    assert compile_schema(_closed(shape)).is_valid(body) == _all_known(body, shape)


@st.composite
def _with_unknown(draw: st.DrawFn, body: Any, shape: Any) -> Any:
    """``body`` as it is, or with a member no schema names added at one of the places
    :func:`_shape` looks: the top, a nested object, an item of an array of objects."""
    if not isinstance(body, dict) or not draw(st.booleans(), label="add a member"):
        return body
    out = dict(body)
    node, here = out, shape
    while True:
        present = [n for n in sorted(here.children) if isinstance(node.get(n), (dict, list))]
        name = draw(st.sampled_from([None, *present]), label="go into")
        if name is None:
            break
        member = node[name]
        if isinstance(member, list):
            items = [i for i, item in enumerate(member) if isinstance(item, dict)]
            if name not in here.arrays or not items:
                break
            index = draw(st.sampled_from(items), label="item")
            node[name] = member = list(member)
            member[index] = dict(member[index])
            node, here = member[index], here.children[name]
        elif name in here.arrays:
            break
        else:
            node[name] = dict(member)
            node, here = node[name], here.children[name]
    node[draw(st.sampled_from(["x", "prompt_", "mode "]), label="unknown")] = 1
    return out


_NESTED = {
    "properties": {
        "a": {"properties": {"b": {}}},
        "shots": {"items": {"properties": {"c": {}}}},
    }
}


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"a": {"b": 1}, "shots": [{"c": 1}]}, True),
        ({"a": {"b": 1, "z": 1}}, False),  # a nested object's unknown member
        ({"shots": [{"c": 1}, {"z": 1}]}, False),  # an array item's
        ({"z": 1}, False),  # the top's
        ({"a": 5, "shots": "not an array"}, True),  # the closing applies to objects and arrays only
        ({"shots": [5, {"c": 2}]}, True),
    ],
)
def test_a_shut_schema_refuses_unknown_members_where_the_walk_looks(body: Any, accepted: bool) -> None:
    from mockserver.contract import compile_schema
    from mockserver.validation.request import _all_known, _closed_and, _shape

    assert _all_known(body, _shape(_NESTED)) is accepted
    assert compile_schema({"allOf": _closed_and(_NESTED)}).is_valid(body) is accepted


def _opened(schema: Any) -> Any:
    """``schema`` with every ``additionalProperties`` removed: the contracts close their objects
    themselves today, and the shut schema must not rely on it."""
    if isinstance(schema, dict):
        return {k: _opened(v) for k, v in schema.items() if k != "additionalProperties"}
    if isinstance(schema, list):
        return [_opened(v) for v in schema]
    return schema


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["gateway", "official"]), st.booleans(), st.booleans(), st.data())
def test_the_shut_schema_accepts_what_the_closed_check_and_the_schema_accept(
    face: str, opened: bool, patterned: bool, data: st.DataObject
) -> None:
    from mockserver.contract import compile_schema
    from mockserver.validation.request import _all_known, _closed_and, _shape

    contract = _SERVICE.faces[face].contract
    body = data.draw(_creates(face), label="body")
    named = body.get(contract.request.model_field) if isinstance(body, dict) else None
    model = contract.models.get(named) if isinstance(named, str) else None
    if model is None:
        model = data.draw(st.sampled_from(list(contract.models.values())), label="model")
    for mode, schema in model.request_schemas.items():
        if opened:
            schema = _opened(schema)
        if patterned:  # additionalProperties would let a patterned member through: the two checks stay
            schema = {**schema, "patternProperties": {"^x": {}}}
        shape = _shape(schema)
        sent = data.draw(_with_unknown(body, shape), label=f"{mode} body")
        assert len(_closed_and(schema)) == (2 if patterned else 1)
        together = compile_schema({"allOf": _closed_and(schema)})
        expected = _all_known(sent, shape) and compile_schema(schema).is_valid(sent)
        assert together.is_valid(sent) == expected, (mode, sent)


@settings(max_examples=50)
@given(st.integers(min_value=0, max_value=2**64), st.integers(min_value=1, max_value=200))
def test_request_ids_are_drawn_ahead_as_they_were_drawn_one_by_one(seed: int, count: int) -> None:
    import random

    engine = Engine(clock=VirtualClock(), seed=seed)

    def one_by_one() -> list[str]:
        stream = random.Random(seed)
        return [uuid_text(stream.getrandbits(128), 4) for _ in range(count)]

    assert [engine.new_request_id() for _ in range(count)] == one_by_one()
    engine.reset()  # ids drawn ahead are forgotten with the stream
    assert [engine.new_request_id() for _ in range(count)] == one_by_one()


_FORM_TEXT = st.text(alphabet=st.sampled_from('ab"\\\n\u00e9'), max_size=1500)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["prompt", "model", "seconds", "input_reference"]),
        _FORM_TEXT | st.integers(min_value=-(2**63), max_value=2**64 - 1),  # what a face reads
    ),
    st.integers(min_value=0, max_value=3000),
)
def test_a_journaled_body_is_the_shortened_rendering(value: dict[str, Any], wire_bytes: int) -> None:
    from mockserver.engine.journal import MAX_STRING, shorten
    from mockserver.http import dump_json, kept
    from mockserver.service import journaled_json

    # the body a value was read from is at least as long as its longest string, in bytes
    longest = max((len(v.encode()) for v in value.values() if isinstance(v, str)), default=0)
    wire_bytes = max(wire_bytes, longest * 3 // 4)  # a file's bytes grow by a third as base64
    rendered = journaled_json(value, wire_bytes)
    assert rendered == kept(dump_json(shorten(value)))
    assert all(len(v) <= MAX_STRING or v.startswith("<") for v in orjson.loads(rendered).values() if isinstance(v, str))


@pytest.mark.parametrize(
    ("value", "extra"),
    [({"a": 1}, ()), ({"b": 2}, ()), ({"a": 1}, (("retry-after", "5"),)), ([], (("x-one", "1"), ("x-two", "2")))],
)
def test_json_answers_of_one_length_share_their_head_and_keep_extra_headers_after_it(
    value: Any, extra: tuple[tuple[str, str], ...]
) -> None:
    answer = ApiResponse.json(200, value, extra)
    length = str(len(answer.body))
    assert answer.headers == (("content-type", "application/json"), ("content-length", length), *extra)
    again = ApiResponse.json(200, value, extra)
    if not extra:  # the same tuple: the journal keeps one for every answer of this length
        assert again.headers is answer.headers
