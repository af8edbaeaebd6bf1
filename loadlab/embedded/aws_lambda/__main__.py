"""``python -m loadlab.embedded.aws_lambda``: build the agent's deployment zip.

* ``package [--cache-dir DIR] [--output PATH]`` builds (or finds cached) the
  deployment zip, prints its path, size and content key, and copies it to
  ``PATH`` if asked (``deploy/lambda/`` deploys ``deploy/lambda/build/agent.zip``).

How many environments this machine sustains is measured by
``python -m loadlab.embedded.lambda_capacity`` (it starts a whole stack).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from loadlab.errors import LoadLabError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadlab.embedded.aws_lambda",
        description="The reference agent as a Lambda function: package it.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    package = commands.add_parser("package", help="build (or reuse) the deployment zip")
    package.add_argument(
        "--cache-dir", type=Path, default=None, help="where zips are kept (~/.cache/loadlab/lambda)"
    )
    package.add_argument(
        "--output", type=Path, default=None, help="also copy the zip here (deploy/lambda/build/…)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "package":  # the only command; more may follow
            from loadlab.embedded.aws_lambda.package import build_package

            package = build_package(cache_dir=args.cache_dir)
            state = "built" if package.built else "cached"
            if args.output is not None:
                args.output.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(package.path, args.output)
            print(
                f"{package.path}  {package.size_bytes / 1e6:.1f} MB zipped, "
                f"{package.unzipped_bytes / 1e6:.1f} MB unzipped, {package.files} files, "
                f"key {package.key[:16]} ({state})"
            )
    except LoadLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
