"""Hypothesis strategies derived from the contract: requests, labelled invalid requests, answers.

Every strategy takes ``face=`` (a registered face: ``"gateway"``, the default,
``"official"`` for Kling's own API, ``"openai"`` for the gateway's OpenAI-compatible
``/v1/videos``, whose creates are also ``multipart/form-data`` forms) and reads that face's contract through
:func:`mockserver.contract.load_contract` when it is first drawn from (never at import), so a
test module can build strategies at import time and a broken contract or an impossible
narrowing shows up as ``InvalidArgument`` in the test that draws, not as an import error.

- :func:`valid_requests` -- create bodies the fake accepts, built by construction;
  :func:`valid_creates` -- the same with the operation and path each goes to;
- :func:`invalid_requests` -- ``(body, Rejection)`` pairs, each body breaking exactly one rule;
- :func:`images` -- image field values, valid or broken in a labelled way;
- :func:`responses` and :func:`task_timelines` -- what the face answers, for client tests;
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

from kling_testkit._strategies.common import ABSENT, contract_for
from kling_testkit._strategies.images import IMAGE_PROBLEMS, ImagePayload, image_problems, images
from kling_testkit._strategies.requests import (
    CreateRequest,
    Rejection,
    invalid_case_ids,
    invalid_requests,
    valid_creates,
    valid_requests,
)
from kling_testkit._strategies.responses import WireResponse, responses, task_ids, task_timelines
from kling_testkit._strategies.wire import EncodedBody

__all__ = [
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


@st.composite
def _from_contract(
    draw: st.DrawFn, operation: str, face: str | None, direction: str, valid: bool, kwargs: dict[str, Any]
) -> Any:
    contract = contract_for(face)
    operations = contract.operations
    if operation not in operations:
        raise InvalidArgument(f"unknown operation {operation!r}; face {contract.face!r} has {sorted(operations)}")
    if direction == "response":
        return draw(responses(operation, face=face, **kwargs))
    if direction != "request":
        raise InvalidArgument(f"direction must be 'request' or 'response', got {direction!r}")
    op = operations[operation]
    if op.verb != "task.create":
        creates = sorted(o.id for o in operations.values() if o.verb == "task.create")
        raise InvalidArgument(f"{operation} takes no request body; only {', '.join(creates)} do")
    if op.kind is not None:
        kwargs = {"kinds": op.kind, **kwargs}
    return draw(valid_requests(face=face, **kwargs) if valid else invalid_requests(face=face, **kwargs))


def from_contract(
    operation: str,
    *,
    face: str | None = None,
    direction: Literal["request", "response"] = "request",
    valid: bool = True,
    **kwargs: Any,
) -> SearchStrategy[Any]:
    """The strategy for ``operation`` of ``face`` in ``direction``: the one entry point by
    operation id.

    A create operation (``"video_generations.create"``; ``"text2video.create"`` or
    ``"image2video.create"`` on Kling's own API, which narrow the kind) with
    ``direction="request"`` is :func:`valid_requests`, with ``valid=False``
    :func:`invalid_requests`; ``direction="response"`` is :func:`responses` for that operation.
    Other keyword arguments go to that strategy. Unknown operations raise ``InvalidArgument``
    when drawn.

    >>> from hypothesis import given
    >>> @given(from_contract("video_generations.get", direction="response", statuses="queued"))
    ... def test(answer): assert answer.body["status"] == "queued"
    >>> test()
    >>> @given(from_contract("image2video.create", face="official"))
    ... def test_official(body): assert "image" in body or "image_tail" in body
    >>> test_official()
    """
    return _from_contract(operation, face, direction, valid, kwargs)
