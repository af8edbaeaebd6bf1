"""``python -m loadlab.embedded.aws_lambda``: build the agent zip, or measure local concurrency.

* ``package [--cache-dir DIR] [--output PATH]`` builds (or finds cached) the
  deployment zip, prints its path, size and content key, and copies it to
  ``PATH`` if asked (``deploy/lambda/`` deploys ``deploy/lambda/build/agent.zip``).
* ``measure [--levels 1,2,4,8,16]`` runs :func:`~.measure.measure_concurrency`
  and prints one line per level.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from loadlab.errors import ConfigError, LoadLabError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadlab.embedded.aws_lambda",
        description="The reference agent as a Lambda function: package it, measure it locally.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    package = commands.add_parser("package", help="build (or reuse) the deployment zip")
    package.add_argument(
        "--cache-dir", type=Path, default=None, help="where zips are kept (~/.cache/loadlab/lambda)"
    )
    package.add_argument(
        "--output", type=Path, default=None, help="also copy the zip here (deploy/lambda/build/…)"
    )
    measure = commands.add_parser(
        "measure", help="concurrent environments this machine sustains (~30 s of CPU)"
    )
    measure.add_argument("--levels", default="1,2,4,8,16", help="concurrency levels (1,2,4,8,16)")
    measure.add_argument("--warm-turns", type=int, default=3, help="warm turns per shopper (3)")
    measure.add_argument("--time-scale", type=float, default=0.05, help="stack time scale (0.05)")
    measure.add_argument(
        "--max-slowdown", type=float, default=2.0, help="allowed warm p95 / level-1 p95 (2.0)"
    )
    measure.add_argument(
        "--max-cold-s", type=float, default=10.0, help="allowed slowest cold turn, s (10)"
    )
    measure.add_argument("--state-dir", type=Path, default=Path(".loadlab-measure"))
    return parser


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1:
        raise ConfigError(f"--levels {text!r} is invalid", hint="give integers >= 1, e.g. 1,2,4,8")
    return levels


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "package":
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
            return 0
        from loadlab.embedded.aws_lambda.capacity import measure_concurrency

        results = measure_concurrency(
            _levels(args.levels),
            warm_turns=args.warm_turns,
            time_scale=args.time_scale,
            state_dir=args.state_dir,
        )
        baseline = results[0].warm_p95_ms if results else None
        print("level  cold wall  cold max  init p50  warm p50  warm p95  turns/s  envs  errors")
        for r in results:
            init = (
                f"{r.cold_init_ms_median:8.0f}" if r.cold_init_ms_median is not None else "       -"
            )
            p50 = f"{r.warm_p50_ms:8.0f}" if r.warm_p50_ms is not None else "       -"
            p95 = f"{r.warm_p95_ms:8.0f}" if r.warm_p95_ms is not None else "       -"
            ok = r.sustained(
                baseline, max_slowdown=args.max_slowdown, max_cold_ms=args.max_cold_s * 1000
            )
            verdict = "sustained" if ok else "NOT sustained"
            print(
                f"{r.concurrency:5d}  {r.cold_wall_ms:9.0f}  {r.cold_max_ms:8.0f}  {init}  "
                f"{p50}  {p95}  {r.warm_turns_per_s:7.1f}  {r.environments:4d}  {r.errors:6d}"
                f"  {verdict}"
            )
    except LoadLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
