"""The hot path's shortcuts say exactly what the reference code they replace says.

Each shortcut (issue 14) stands in for a slower, obviously right computation on every request;
these properties compare the two on generated inputs, so a shortcut that drifts fails here.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockserver.engine.core import uuid_text
from mockserver.faces.official import video_uuid


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
