"""Root conftest: the code blocks of README.md and docs/*.md are tests (tests/support/doc_examples.py).

Everything else the suite shares lives in ``tests/conftest.py``.
"""

from doc_examples import pytest_collect_file  # tests/support is on pytest's pythonpath

pytest_plugins = ["pytester"]

__all__ = ["pytest_collect_file"]
