"""kling-testkit: test code that uses the Kling v2.6 video API, without the real service.

The server itself lives in :mod:`mockserver`; this package adds what tests need around it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
