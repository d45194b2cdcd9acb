"""The engine's lifecycle: progressions, outcomes, terminal finality, ids, the clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver import Engine, Outcome, OutcomeRule, Progression, Status, TaskNotFound, VideoSpec, VirtualClock
from mockserver.engine import terminal_statuses, transitions

S, P, OK, KO = Status.SUBMITTED, Status.PROCESSING, Status.SUCCEEDED, Status.FAILED
VIDEO = VideoSpec(5, 1920, 1080)


def _engine(**kwargs: object) -> Engine:
    return Engine(clock=VirtualClock(), seed=1, **kwargs)  # type: ignore[arg-type]


def _create(engine: Engine, request: dict[str, object] | None = None) -> str:
    return engine.create_task(model="kling-v2-6", kind="text2video", request=request or {}, video=VIDEO).id


@pytest.mark.parametrize(
    ("progression", "after_each_poll"),
    [
        pytest.param(Progression.after_polls(1), [P, OK, OK], id="polls:1"),
        pytest.param(Progression.after_polls(2), [S, P, P, OK, OK], id="polls:2"),
        pytest.param(Progression.after_polls(3), [S, S, P, P, P, OK], id="polls:3"),
        pytest.param(Progression.manual(), [S, S, S], id="manual"),
        pytest.param(Progression.after_seconds(30), [S, S, S], id="seconds-without-time"),
    ],
)
def test_polls_move_a_task_as_its_progression_says(progression: Progression, after_each_poll: list[Status]) -> None:
    engine = _engine(progression=progression)
    task_id = _create(engine)
    assert [engine.poll_task(task_id).status for _ in after_each_poll] == after_each_poll


@pytest.mark.parametrize(
    ("elapsed", "status"),
    [(0, S), (29.9, S), (30, P), (59.9, P), (60, OK), (3600, OK)],
)
def test_seconds_progression_follows_the_clock(elapsed: float, status: Status) -> None:
    engine = _engine(progression=Progression.after_seconds(30))
    task_id = _create(engine)
    engine.advance_clock(elapsed)
    task = engine.task(task_id)
    assert task.status is status
    if status is OK:
        assert task.updated_at == task.created_at + 60, "the transition time is when it happened, not when observed"


def test_immediate_progression_finishes_at_creation() -> None:
    engine = _engine(progression=Progression.immediate())
    assert engine.task(_create(engine)).status is OK


def test_admin_reads_do_not_count_as_polls() -> None:
    engine = _engine()
    task_id = _create(engine)
    for _ in range(5):
        engine.task(task_id)
        engine.tasks()
    assert engine.task(task_id).status is S
    assert engine.poll_task(task_id).polls == 1


def test_manual_tasks_move_on_command_and_end_as_their_outcome() -> None:
    engine = _engine(progression=Progression.manual(), outcome=Outcome.fail("content_policy"))
    task_id = _create(engine)
    assert [engine.advance(task_id).status for _ in range(2)] == [P, KO]
    with pytest.raises(ValueError, match="terminal states are final"):
        engine.advance(task_id)


def test_terminal_states_are_final() -> None:
    engine = _engine(progression=Progression.immediate())
    task_id = _create(engine)
    with pytest.raises(ValueError, match="terminal states are final"):
        engine.set_outcome(Outcome.fail(), task_id=task_id)
    engine.set_progression(Progression.after_polls(1), task_id=task_id)
    assert [engine.poll_task(task_id).status for _ in range(3)] == [OK, OK, OK]


def test_outcome_per_task_by_rule_and_by_default() -> None:
    engine = _engine(progression=Progression.immediate())
    engine.add_outcome_rule(
        OutcomeRule(
            when={"properties": {"tag": {"const": "bad"}}, "required": ["tag"]}, outcome=Outcome.fail("content_policy")
        )
    )
    assert engine.task(_create(engine, {"tag": "bad"})).outcome.reason == "content_policy"
    assert engine.task(_create(engine, {"tag": "good"})).status is OK
    engine.set_outcome(Outcome.fail("timeout"))
    assert engine.task(_create(engine, {"tag": "good"})).outcome.reason == "timeout"
    engine.set_progression(Progression.manual())
    task_id = _create(engine)
    engine.set_outcome(Outcome.succeed(), task_id=task_id)
    engine.advance(task_id)
    assert engine.advance(task_id).status is OK


def test_reset_forgets_everything_and_rewinds_the_virtual_clock() -> None:
    engine = _engine()
    first = _create(engine)
    engine.advance_clock(100)
    engine.set_progression(Progression.manual())
    engine.reset()
    assert engine.tasks() == []
    assert engine.clock.now() == VirtualClock().now()
    assert engine.policies()["progression"] == Progression().to_json()
    assert _create(engine) == first, "a seeded engine gives the same ids after a reset"


def test_unknown_task_raises_task_not_found() -> None:
    with pytest.raises(TaskNotFound, match="task_nope"):
        _engine().poll_task("task_nope")


def test_system_clock_cannot_be_advanced() -> None:
    from mockserver import SystemClock

    with pytest.raises(ValueError, match="system clock"):
        Engine(clock=SystemClock()).advance_clock(1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("polls:2", Progression.after_polls(2)),
        ("polls", Progression.after_polls(1)),
        ("seconds:45", Progression.after_seconds(45)),
        ("manual", Progression.manual()),
        ("immediate", Progression.immediate()),
    ],
)
def test_progression_parses_the_cli_spelling(text: str, expected: Progression) -> None:
    assert Progression.parse(text) == expected


@pytest.mark.parametrize("text", ["polls:0", "polls:x", "seconds:-1", "seconds:nan", "manual:3", "later"])
def test_bad_progression_spelling_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="progression"):
        Progression.parse(text)


@pytest.mark.parametrize(
    "data",
    [{"mode": "sometimes"}, {"polls": True}, {"seconds": 0}, {"mode": "polls", "speed": 2}, {"polls": 1.5}],
)
def test_progression_from_json_names_the_bad_field(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="progression"):
        Progression.from_json(data)


@pytest.mark.parametrize(
    "data",
    [
        {"status": "done"},
        {"status": "failed", "reason": "bad luck"},
        {"status": "succeeded", "reason": "content_policy"},
    ],
)
def test_outcome_from_json_refuses_what_the_contract_does_not_know(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="outcome"):
        Outcome.from_json(data)


@given(
    st.lists(st.sampled_from(["poll", "tick", "advance"]), max_size=30),
    st.sampled_from(["polls:1", "polls:2", "seconds:10", "manual"]),
)
def test_every_observed_history_follows_the_lifecycle(steps: list[str], progression: str) -> None:
    engine = _engine(progression=Progression.parse(progression))
    task_id = _create(engine)
    for step in steps:
        if step == "poll":
            engine.poll_task(task_id)
        elif step == "tick":
            engine.advance_clock(7)
        elif not engine.task(task_id).status.terminal:
            engine.advance(task_id)
    history = engine.task(task_id).history
    pairs = list(itertools.pairwise(history))
    assert all((a[0], b[0]) in transitions() for a, b in pairs)
    assert all(a[1] <= b[1] for a, b in pairs), "transition times never go backwards"
    assert all(status not in terminal_statuses() for status, _ in history[:-1])
    task = engine.task(task_id)
    assert 0 <= task.progress <= 100
    assert (task.progress == 100) == (task.status is OK)


def test_seeded_engines_agree_and_ids_have_the_gateway_format() -> None:
    import re

    ids = [[_create(e) for _ in range(50)] for e in (_engine(), _engine())]
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == 50
    assert all(re.fullmatch(r"task_[A-Za-z0-9]{32}", i) for i in ids[0])


@pytest.mark.parametrize(
    "text", ["polls:x", "polls:0", "polls:1.5", "seconds:soon", "seconds:-3", "sometimes", "manual:2"]
)
def test_a_bad_progression_names_the_accepted_forms_not_pythons_error(text: str) -> None:
    with pytest.raises(ValueError, match="accepted") as refused:
        Progression.parse(text)
    message = str(refused.value)
    assert message.startswith(f"bad progression {text!r}: ")
    for form in ("polls:N", "seconds:T", "manual", "immediate"):
        assert form in message
    for python_error in ("invalid literal", "could not convert"):
        assert python_error not in message
