"""Suite-wide settings. Test-specific fixtures live beside their tests.

Hypothesis profiles: ``ci`` (the default: enough examples to mean something, deterministic so
CI cannot flake on a new seed) and ``long`` for local runs before a release:
``HYPOTHESIS_PROFILE=long python3 dev.py test``.
"""

from __future__ import annotations

import os

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
