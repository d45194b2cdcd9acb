"""Every code block of README.md and docs/*.md runs in the test suite (Sybil collects them).

The root ``conftest.py`` hands pytest this module's ``pytest_collect_file``; each block becomes
one test item, reported with its file and line.

``python`` blocks:

* a block that defines tests (``def test_...``, ``TestX = ...``) is a test module: it runs as a
  fresh project would run it, under pytest with the kit's plugin (pytester, in process, warnings
  as errors), and every test in it must pass;
* any other block is a snippet that runs inside a test: it may use the ``kling_mock`` and
  ``kling_server`` fixtures, ``task_id`` (a task on that ``kling_mock``) and ``AUTH``/``BODY``.

Either kind may use the declared placeholders of ``doc_placeholders.PLACEHOLDERS`` (``my_sdk``,
``my_app``, ``MyClient``... : "your code") without defining them; nothing else is stubbed, so a
missing import or an undefined name fails the block.

``json`` blocks must parse, and every line of a ``jsonl`` block. ``sh`` blocks: each ``kling-testkit ...`` command must be accepted
by the real command line parser, and each ``python3 dev.py ...`` must name a dev.py command.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import json
import shlex
import textwrap
from pathlib import Path
from typing import Any

import doc_placeholders
import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parents[2]
_BUILTINS = set(dir(builtins))


def _free_names(tree: ast.AST) -> set[str]:
    """Names a block reads but never binds (an over-approximation is harmless: bound names win)."""
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound - _BUILTINS


def _defines_tests(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            return True
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id.startswith("Test") for t in node.targets
        ):
            return True
    return False


def run_python(example: Example) -> None:
    source = textwrap.dedent(str(example.parsed))
    tree = ast.parse(source, filename=str(example.path))
    request: pytest.FixtureRequest = example.namespace["request"]
    free = _free_names(tree)
    placeholders = sorted(free & set(doc_placeholders.PLACEHOLDERS))
    if _defines_tests(tree):
        _run_as_test_module(request, source, placeholders, example)
        return
    namespace: dict[str, Any] = {"__name__": "doc_example"}
    for name in sorted(free):
        if name in doc_placeholders.PLACEHOLDERS:
            namespace[name] = doc_placeholders.PLACEHOLDERS[name]
        elif name in doc_placeholders.SNIPPET_VALUES:
            namespace[name] = doc_placeholders.SNIPPET_VALUES[name]
        elif name == "task_id":
            kling_mock = request.getfixturevalue("kling_mock")
            with kling_mock.client(headers=doc_placeholders.AUTH) as client:
                namespace[name] = client.post("/v1/video/generations", json=doc_placeholders.BODY).json()["task_id"]
        else:
            # An undefined name stays undefined: the block fails with NameError, as for a reader.
            with contextlib.suppress(pytest.FixtureLookupError):
                namespace[name] = request.getfixturevalue(name)
    exec(compile(source, f"{example.path}:{example.line}", "exec"), namespace)


def _run_as_test_module(request: pytest.FixtureRequest, source: str, placeholders: list[str], example: Example) -> None:
    pytester: pytest.Pytester = request.getfixturevalue("pytester")
    header = (
        f"from doc_placeholders import {', '.join(placeholders)}  # declared placeholders\n" if placeholders else ""
    )
    pytester.makepyfile(test_doc_example=header + source)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    ran_clean = outcomes.get("passed", 0) > 0 and not any(outcomes.get(k) for k in ("failed", "errors", "error"))
    if not ran_clean:
        raise AssertionError(
            f"the tests of the example at {Path(example.path).name}:{example.line} did not all pass "
            f"({outcomes}):\n{result.stdout.str()}"
        )


def run_json(example: Example) -> None:
    json.loads(str(example.parsed))


def run_jsonl(example: Example) -> None:
    for line in str(example.parsed).splitlines():
        if line.strip():
            json.loads(line)


def run_sh(example: Example) -> None:
    from kling_testkit.cli import build_parser

    for line in str(example.parsed).replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]  # leading VAR=value assignments
        if words[:1] == ["kling-testkit"]:
            args = [w for w in words[1:] if not w.startswith(">")]
            try:
                build_parser().parse_args(args)
            except SystemExit as exc:
                raise AssertionError(f"kling-testkit does not accept: {line.strip()}") from exc
        elif words[:2] == ["python3", "dev.py"]:
            assert words[2] in {"serve", "test", "slow", "lowest", "bench"}, (
                f"dev.py has no command {words[2]!r}: {line.strip()}"
            )


SYBIL = Sybil(
    parsers=[
        CodeBlockParser("python", run_python),
        CodeBlockParser("json", run_json),
        CodeBlockParser("jsonl", run_jsonl),
        CodeBlockParser("sh", run_sh),
        SkipParser(),
    ],
    patterns=["README.md", "docs/*.md"],
    # docs/strategies.md's blocks build on each other (one namespace, as a reader runs them in
    # order); tests/testkit/test_strategies.py runs them that way, as written, every run.
    excludes=["docs/strategies.md"],
    path=str(ROOT),
    fixtures=["request"],
)

pytest_collect_file = SYBIL.pytest()
