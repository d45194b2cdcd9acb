"""``kling-testkit``: the command line.

Commands::

    kling-testkit serve [options]                         the fake on localhost (see --help)
    kling-testkit check FILE... [--junit-xml P] [--json P] [--strict] [--checks a,b]
    kling-testkit verify --base-url URL [--face F] [--api-key KEY | --access-key AK --secret-key SK]
                         [--max-requests N] [--poll-interval S] [--timeout S] [--dry-run]
                         [--record P] [--junit-xml P] [--json P]
    kling-testkit contract export DIR [--face F]
    kling-testkit contract diff OLD NEW [--json P]

Every face is covered: ``check`` finds each exchange's face, ``verify --face`` picks the dialect
to verify (the gateway by default), ``contract`` exports and diffs every face folder.

Exit codes: 0 success (no failing violation, no breaking change), 1 contract violations found
(or a breaking contract change), 2 usage or input error (unreadable, truncated or empty
recording, unreachable server, broken contract folder). Progress goes to stderr when it is a
terminal (``--progress`` / ``--no-progress`` override); results go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

ENV_API_KEY = "KLING_TESTKIT_API_KEY"
ENV_ACCESS_KEY = "KLING_TESTKIT_ACCESS_KEY"
ENV_SECRET_KEY = "KLING_TESTKIT_SECRET_KEY"
#: ``check`` reports progress every this many exchanges (when progress is on).
PROGRESS_EVERY = 1000


class _UsageError(Exception):
    """Bad input: printed as one line, exit 2."""


def _progress_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress lines on stderr (default: only when stderr is a terminal)",
    )


def _report_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report")
    parser.add_argument("--json", metavar="PATH", dest="json_path", help="write a JSON report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kling-testkit",
        description="A contract-driven fake of the Kling v2.6 video API, and contract checks for CI.",
        epilog="exit codes: 0 ok, 1 contract violations (or breaking changes), 2 usage or input error",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the fake server (every face) on localhost")
    from mockserver.serve import add_arguments

    add_arguments(serve)

    check = commands.add_parser(
        "check",
        help="check recorded traffic (JSON Lines or HAR) against the contract",
        description="Check every request and response of recorded traffic, and each task's timeline, "
        "against the contract. Files: JSON Lines (the fake's journal format) or HAR, by extension or content.",
    )
    check.add_argument("files", nargs="*", metavar="FILE", help="recordings (.jsonl, .har, or detected by content)")
    check.add_argument(
        "--checks", metavar="NAMES", help="comma-separated check names (default: all; see --list-checks)"
    )
    check.add_argument("--list-checks", action="store_true", help="list the checks and exit")
    check.add_argument("--strict", action="store_true", help="warnings fail the run too")
    _report_flags(check)
    _progress_flags(check)

    from mockserver.faces import face_names

    verify = commands.add_parser(
        "verify",
        help="verify a running server (the gateway, Kling's API, a proxy, or the fake) against the contract",
        description="Send contract-derived valid and invalid requests within a request budget, follow tasks "
        "to a terminal status, and check every answer and transition.",
    )
    verify.add_argument("--base-url", required=True, help="e.g. https://api.modelstream.ai or http://127.0.0.1:8000")
    verify.add_argument(
        "--face",
        choices=face_names(),
        default=face_names()[0],
        help=f"the wire dialect to verify (default {face_names()[0]})",
    )
    verify.add_argument("--api-key", help=f"API key (default: ${ENV_API_KEY}); sent as Authorization: Bearer KEY")
    verify.add_argument(
        "--access-key",
        help=f"access key of a face that signs tokens (default: ${ENV_ACCESS_KEY}); the JWT's iss",
    )
    verify.add_argument(
        "--secret-key",
        help=f"secret key that signs the JWTs (default: ${ENV_SECRET_KEY}); never sent or printed",
    )
    from kling_testkit.verify import DEFAULT_MAX_REQUESTS

    verify.add_argument(
        "--max-requests",
        type=_positive_int,
        default=DEFAULT_MAX_REQUESTS,
        help=f"hard budget of requests, polls and retries included (default {DEFAULT_MAX_REQUESTS})",
    )
    verify.add_argument("--poll-interval", type=_non_negative, default=5.0, help="seconds between polls (default 5)")
    verify.add_argument("--timeout", type=_positive, default=600.0, help="seconds to wait for tasks (default 600)")
    verify.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    verify.add_argument("--record", metavar="PATH", help="write every exchange as JSON Lines (re-check with `check`)")
    verify.add_argument("--strict", action="store_true", help="warnings fail the run too")
    _report_flags(verify)
    _progress_flags(verify)

    contract = commands.add_parser("contract", help="export the contract, or diff two versions")
    actions = contract.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write OpenAPI and the derived JSON Schemas of every face to DIR")
    export.add_argument("dir", metavar="DIR")
    export.add_argument("--face", choices=face_names(), help="export this face alone (flat, one manifest)")
    diff = actions.add_parser(
        "diff",
        help="list changes between two contract versions; exit 1 on breaking changes",
        description="OLD and NEW are contract folders (with lifecycle.json) or `contract export` folders.",
    )
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")
    diff.add_argument("--json", metavar="PATH", dest="json_path", help="write the changes as JSON")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _non_negative(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _progress_on(flag: bool | None, stream: TextIO) -> bool:
    return flag if flag is not None else stream.isatty()


def _cannot_write(option: str, path: str, exc: OSError) -> str:
    return f"cannot write {option} {path}: {exc.strerror or exc}"


def _write_reports(report: object, junit: str | None, json_path: str | None) -> list[str]:
    """Write every requested report that can be written (parents are created); return one line
    per report that could not be, so the caller still prints what was measured and says so."""
    from kling_testkit.failures import Report

    assert isinstance(report, Report)
    problems = []
    for option, path, write in (
        ("--junit-xml", junit, report.write_junit_xml),
        ("--json", json_path, report.write_json),
    ):
        if path:
            try:
                write(path)
            except OSError as exc:
                problems.append(_cannot_write(option, path, exc))
    return problems


def _finish(command: str, report: object, problems: list[str], out: TextIO, err: TextIO) -> int:
    from kling_testkit.failures import Report

    assert isinstance(report, Report)
    out.write(report.render_text() + "\n")
    for problem in problems:
        err.write(f"kling-testkit {command}: error: {problem}\n")
    if problems:
        err.write(f"kling-testkit {command}: the results above are complete; only the output named is missing\n")
        return 2
    return report.exit_code()


def _check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from kling_testkit.checks import CHECKS, CheckContext, check_exchange
    from kling_testkit.failures import ContractViolation, Report
    from kling_testkit.recording import iter_recording

    if args.list_checks:
        for registered in CHECKS:
            out.write(
                f"{registered.name:<28} {registered.side:<6} {registered.severity.value:<7} {registered.description}\n"
            )
        return 0
    if not args.files:
        raise _UsageError("give at least one recording FILE (.jsonl or .har)")
    names = [n.strip() for n in args.checks.split(",") if n.strip()] if args.checks else None
    try:
        selected = CHECKS.select(names)
    except KeyError as exc:
        raise _UsageError(str(exc.args[0])) from None
    progress = _progress_on(args.progress, err)
    report = Report("check", strict=args.strict)
    exchanges = tasks = unmatched = 0
    for file in args.files:
        ctx = CheckContext()
        cases: dict[str, list[ContractViolation]] = {f"{file}::{c.name}": [] for c in selected}
        count = 0
        for exchange in iter_recording(file):
            for violation in check_exchange(ctx, exchange, selected):
                cases[f"{file}::{violation.check}"].append(violation)
            count += 1
            if progress and count % PROGRESS_EVERY == 0:
                err.write(f"{file}: {count} exchanges checked\n")
                err.flush()
        if progress:
            err.write(f"{file}: {count} exchanges, {len(ctx.timelines)} tasks\n")
        report.cases.update(cases)
        exchanges += count
        tasks += len(ctx.timelines)
        unmatched += ctx.unmatched
    report.stats = {"files": len(args.files), "exchanges": exchanges, "tasks": tasks}
    if unmatched:
        report.stats["not in the contract (skipped)"] = unmatched
    return _finish("check", report, _write_reports(report, args.junit_xml, args.json_path), out, err)


def _line_writer(stream: TextIO) -> Callable[[str], None]:
    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


def _verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import httpx

    from kling_testkit.recording import write_exchanges
    from kling_testkit.verify import Verifier
    from mockserver.contract import load_contract

    if not args.base_url.startswith(("http://", "https://")):
        raise _UsageError(f"--base-url must start with http:// or https://, got {args.base_url!r}")
    key = args.api_key or os.environ.get(ENV_API_KEY)
    access = args.access_key or os.environ.get(ENV_ACCESS_KEY)
    secret = args.secret_key or os.environ.get(ENV_SECRET_KEY)
    signs = "jwt" in load_contract(args.face).index.get("auth", {})
    if signs and bool(access) != bool(secret):
        raise _UsageError(
            f"an access key and a secret key go together: --access-key/${ENV_ACCESS_KEY} "
            f"and --secret-key/${ENV_SECRET_KEY}"
        )
    if not args.dry_run and not key and not (signs and access and secret):
        if signs:
            raise _UsageError(
                f"keys are needed: --access-key AK --secret-key SK (or ${ENV_ACCESS_KEY}, ${ENV_SECRET_KEY}), "
                f"or --api-key KEY (${ENV_API_KEY})"
            )
        raise _UsageError(f"an API key is needed: --api-key KEY or ${ENV_API_KEY}")
    progress = _progress_on(args.progress, err)
    verifier = Verifier(
        args.base_url,
        key or None,
        face=args.face,
        access_key=access if signs else None,
        secret_key=secret if signs else None,
        max_requests=args.max_requests,
        poll_interval=args.poll_interval,
        timeout=args.timeout,
        progress=_line_writer(err) if progress else None,
    )
    if args.dry_run:
        out.write(verifier.dry_run() + "\n")
        return 0
    try:
        with httpx.Client(timeout=30.0) as client:
            client.get(args.base_url.rstrip("/") + "/")  # reachability only; any HTTP answer will do
    except httpx.HTTPError as exc:
        raise _UsageError(f"cannot reach {args.base_url}: {type(exc).__name__}: {exc}") from None
    result = verifier.run()
    report = result.report
    report.strict = args.strict
    problems = []
    if args.record:
        try:
            write_exchanges(result.exchanges, args.record)
        except OSError as exc:
            problems.append(_cannot_write("--record", args.record, exc))
    problems += _write_reports(report, args.junit_xml, args.json_path)
    return _finish("verify", report, problems, out, err)


def _contract(args: argparse.Namespace, out: TextIO, _err: TextIO) -> int:
    from kling_testkit.contract_tools import ContractLoadError, diff_contracts, export_contract
    from mockserver.contract import load_contract

    if args.action == "export":
        try:
            written = export_contract(load_contract(args.face) if args.face else None, args.dir)
        except OSError as exc:
            raise _UsageError(f"cannot write to {args.dir}: {exc.strerror or exc}") from None
        out.write(f"wrote {len(written)} files to {args.dir}\n")
        for path in written:
            out.write(f"  {path}\n")
        return 0
    try:
        changes = diff_contracts(args.old, args.new)
    except ContractLoadError as exc:
        raise _UsageError(str(exc)) from None
    breaking = [c for c in changes if c.breaking]
    for change in changes:
        out.write(change.line() + "\n")
    out.write(
        f"contract diff: {len(changes)} change{'s' if len(changes) != 1 else ''}, {len(breaking)} breaking"
        + (" — FAILED" if breaking else " — ok")
        + "\n"
    )
    if args.json_path:
        payload = {"changes": [c.to_json() for c in changes], "breaking": len(breaking)}
        try:
            Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise _UsageError(f"cannot write {args.json_path}: {exc.strerror or exc}") from None
    return 1 if breaking else 0


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Entry point of the ``kling-testkit`` console script; returns the exit code.

    >>> import io
    >>> out = io.StringIO()
    >>> main(["contract", "diff", "nowhere", "nowhere"], stdout=out, stderr=out)
    2
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from mockserver.serve import run

        return run(args)
    from kling_testkit.recording import RecordingError

    handlers = {"check": _check, "verify": _verify, "contract": _contract}
    try:
        return handlers[args.command](args, out, err)
    except (RecordingError, _UsageError) as exc:
        err.write(f"kling-testkit {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
