"""The harness that runs the documentation's code blocks (tests/support/doc_examples.py) can fail.

The documentation's own blocks are collected from README.md and docs/*.md (see the root
conftest.py); these tests show that a block with a missing import, a failing test, an unknown
placeholder or a command line the CLI refuses fails, and that no Python block escapes collection.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import doc_examples
import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
from sybil import Sybil
from sybil.parsers.markdown import CodeBlockParser

import doc_examples

pytest_plugins = ["pytester"]
pytest_collect_file = Sybil(
    parsers=[
        CodeBlockParser("python", doc_examples.run_python),
        CodeBlockParser("json", doc_examples.run_json),
        CodeBlockParser("sh", doc_examples.run_sh),
    ],
    patterns=["*.md"],
    fixtures=["request"],
).pytest()
"""

FENCE = "```"


def _doc(*blocks: tuple[str, str]) -> str:
    return "\n".join(f"Text.\n\n{FENCE}{lang}\n{textwrap.dedent(code).strip()}\n{FENCE}\n" for lang, code in blocks)


@pytest.mark.parametrize(
    ("blocks", "outcome", "message"),
    [
        pytest.param(
            [("python", "client = httpx.Client()\n")], "failed", "NameError: name 'httpx' is not defined", id="missing-import"
        ),
        pytest.param(
            [("python", "def test_x(kling_mock):\n    assert kling_mock.tasks() == ['nope']\n")],
            "failed",
            "did not all pass",
            id="failing-test",
        ),
        pytest.param([("python", "your_sdk.generate('a fox')\n")], "failed", "NameError: name 'your_sdk'", id="undeclared-placeholder"),
        pytest.param([("sh", "kling-testkit check run.jsonl --report-xml reports/x.xml\n")], "failed", "does not accept", id="bad-cli"),
        pytest.param([("json", '{"a": 1,}\n')], "failed", "JSONDecodeError", id="bad-json"),
        pytest.param(
            [
                ("python", "import pytest\n\n@pytest.mark.kling(virtual_time=True)\ndef test_sdk(kling_mock):\n"
                 "    assert my_sdk.generate('a fox').status == 'completed'\n"),
                ("python", "kling_mock.advance(task_id)\nassert kling_mock.task(task_id).status.value == 'processing'\n"),
                ("sh", "kling-testkit verify --base-url http://127.0.0.1:9 --dry-run   # plan only\n"),
                ("json", '{"error": {"code": "invalid_request"}}\n'),
            ],
            "passed",
            "",
            id="good-blocks",
        ),
    ],
)  # fmt: skip
def test_a_broken_block_fails_and_a_good_one_passes(
    pytester: pytest.Pytester, blocks: list[tuple[str, str]], outcome: str, message: str
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".md", guide=_doc(*blocks))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(**{outcome: len(blocks)})
    if message:
        result.stdout.fnmatch_lines([f"*{message}*"])


def test_every_python_block_of_the_docs_is_collected() -> None:
    fences = 0
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        fences += len(re.findall(r"^```python\s*$", path.read_text(encoding="utf-8"), re.M))
        assert "skip:" not in path.read_text(encoding="utf-8"), f"{path.name} skips a block"
    documents = [doc_examples.SYBIL.parse(p) for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]]
    python = [e for d in documents for e in d.examples() if e.region.evaluator is doc_examples.run_python]
    assert len(python) == fences > 10
