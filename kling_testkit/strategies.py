"""Hypothesis strategies derived from the contract: requests, labelled invalid requests, answers.

Every strategy reads ``contracts/`` through :func:`mockserver.contract.load_contract` when it
is first drawn from (never at import), so a test module can build strategies at import time
and a broken contract or an impossible narrowing shows up as ``InvalidArgument`` in the test
that draws, not as an import error.

- :func:`valid_requests` -- create bodies the fake accepts, built by construction;
- :func:`invalid_requests` -- ``(body, Rejection)`` pairs, each body breaking exactly one rule;
- :func:`images` -- image field values, valid or broken in a labelled way;
- :func:`responses` and :func:`task_timelines` -- what the gateway answers, for client tests;
- :func:`from_contract` -- the same, chosen by operation id and direction.

Narrowing arguments are keyword-only and take a fixed value or a strategy (``mode="pro"``,
``mode=st.sampled_from(["std", "pro"])``); :data:`ABSENT` leaves a field out.

>>> from hypothesis import given
>>> @given(valid_requests(kinds="image2video", multi_shot=True))
... def test(body): assert "image" in body and body["shot_type"] in ("customize", "intelligence")
>>> test()
"""

from __future__ import annotations

from typing import Any, Literal

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from kling_testkit._strategies.common import ABSENT
from kling_testkit._strategies.images import IMAGE_PROBLEMS, ImagePayload, images
from kling_testkit._strategies.requests import (
    Rejection,
    invalid_case_ids,
    invalid_requests,
    valid_requests,
)
from kling_testkit._strategies.responses import WireResponse, responses, task_ids, task_timelines
from mockserver.contract import load_contract

__all__ = [
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


@st.composite
def _from_contract(draw: st.DrawFn, operation: str, direction: str, valid: bool, kwargs: dict[str, Any]) -> Any:
    operations = load_contract().operations
    if operation not in operations:
        raise InvalidArgument(f"unknown operation {operation!r}; the contract has {sorted(operations)}")
    if direction == "response":
        return draw(responses(operation, **kwargs))
    if direction != "request":
        raise InvalidArgument(f"direction must be 'request' or 'response', got {direction!r}")
    if operation != "video_generations.create":
        raise InvalidArgument(f"{operation} takes no request body; only video_generations.create does")
    return draw(valid_requests(**kwargs) if valid else invalid_requests(**kwargs))


def from_contract(
    operation: str,
    *,
    direction: Literal["request", "response"] = "request",
    valid: bool = True,
    **kwargs: Any,
) -> SearchStrategy[Any]:
    """The strategy for ``operation`` in ``direction``: the one entry point by operation id.

    ``("video_generations.create", direction="request")`` is :func:`valid_requests`, with
    ``valid=False`` :func:`invalid_requests`; ``direction="response"`` is :func:`responses`
    for that operation. Other keyword arguments go to that strategy. Unknown operations raise
    ``InvalidArgument`` when drawn.

    >>> from hypothesis import given
    >>> @given(from_contract("video_generations.get", direction="response", statuses="queued"))
    ... def test(answer): assert answer.body["status"] == "queued"
    >>> test()
    """
    return _from_contract(operation, direction, valid, kwargs)
