"""Suite-wide settings. Test-specific fixtures live beside their tests.

Hypothesis profiles: ``ci`` (the default: enough examples to mean something, deterministic so
CI cannot flake on a new seed) and ``long`` for local runs before a release:
``HYPOTHESIS_PROFILE=long python3 dev.py test``.

Network guard (``tests/support/network_guard.py``): for the whole run, any connect to an
AF_INET/AF_INET6 address outside loopback raises ``NetworkGuardError`` before a packet leaves.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import network_guard  # tests/support, on pytest's pythonpath
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,  # shared 2-core machines: timing is not what these tests assert
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_GUARD_OWNER = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    # Installed at configure time, not in a fixture: collection, doctests and pytester runs are
    # guarded too. Tests talk only to 127.0.0.1; anything else is a bug (or the real provider).
    if not network_guard.installed():
        network_guard.install()
        config.stash[_GUARD_OWNER] = True  # a nested (pytester) session must not remove it


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_GUARD_OWNER, False):
        network_guard.uninstall()


@pytest.fixture(autouse=True)
def _trace_hook_is_left_as_found() -> Iterator[None]:
    """Coverage measures the suite through ``sys.settrace``: a test that takes the hook and does
    not hand it back silently unmeasures every test after it, so it fails here instead."""
    before = sys.gettrace()
    yield
    after = sys.gettrace()
    assert after is before, f"the test left sys.settrace at {after!r}; it found {before!r}"
