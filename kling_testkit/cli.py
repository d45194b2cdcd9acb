"""``kling-testkit``: the command line.

Exit codes: 0 success, 1 contract violations found, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kling-testkit",
        description="A contract-driven fake of the Kling v2.6 video API, and contract checks for CI.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the fake server (gateway face) on localhost")
    from mockserver.serve import add_arguments

    add_arguments(serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kling-testkit`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from mockserver.serve import run

        return run(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse enforces the choices


if __name__ == "__main__":
    sys.exit(main())
