"""``python -m loadlab.embedded.fleet``: run a replica fleet and its status API.

Once every replica is ready it prints one stdout line::

    FLEET url=http://127.0.0.1:<port> api=http://127.0.0.1:<api port> replicas=<n>

then supervises until SIGINT or SIGTERM, stops every replica and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from loadlab.embedded.fleet.api import FleetAPI
from loadlab.embedded.fleet.supervisor import Fleet
from loadlab.errors import ConfigError, LoadLabError

_DEFAULT_COMMAND = (
    sys.executable,
    "-m",
    "loadlab.embedded.agent",
    "--host",
    "{host}",
    "--port",
    "{port}",
    "--reuse-port",
)


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"label {text!r} is not KEY=VALUE")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    """The fleet's command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m loadlab.embedded.fleet",
        description=(
            "Run N replicas of a server on one 127.0.0.1 port (SO_REUSEPORT), replace "
            "any that exits after a startup delay, and serve GET/DELETE /fleet/pods. "
            "Each replica must bind the port with SO_REUSEPORT once initialised and "
            "print one line 'READY pid=.. instance=.. init_ms=.. url=..' to stdout."
        ),
        epilog=(
            "COMMAND (after --) defaults to the reference agent: "
            + " ".join(_DEFAULT_COMMAND)
            + ". In COMMAND, {host}, {port} and {pod} are replaced per replica. "
            "The API also serves the Kubernetes core/v1 pods API: point chaostoolkit-kubernetes "
            "at it with KUBERNETES_HOST=<api url> and KUBERNETES_API_KEY=<token> (and "
            "KUBECONFIG naming no file). Every /fleet/ and /api request needs the token given "
            "in LOADLAB_ADMIN_TOKEN (as a bearer token); without it the API answers 401."
        ),
    )
    parser.add_argument("--replicas", type=int, default=4, help="live pods to keep (default 4)")
    parser.add_argument("--port", type=int, default=0, help="shared port (default 0: pick one)")
    parser.add_argument("--api-port", type=int, default=0, help="status API port (default 0)")
    parser.add_argument(
        "--startup-delay",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="scheduling + image start delay of every pod, before time scaling (default 2)",
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="multiplies the startup delay (default 1)"
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="kill a replica that printed no READY line by then (default 60)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="default termination grace period of a deleted pod (default 30)",
    )
    parser.add_argument(
        "--max-startup-failures",
        type=int,
        default=5,
        help="stop replacing pods after this many failed starts in a row (default 5)",
    )
    parser.add_argument(
        "--label",
        type=_label,
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="pod label (repeatable; default app=shopping-agent)",
    )
    parser.add_argument("--name-prefix", default="shopping-agent", help="pod name prefix")
    parser.add_argument(
        "--namespace",
        default="default",
        help="Kubernetes namespace of the pods in the API's /api/v1 routes (default 'default')",
    )
    parser.add_argument("--log-dir", type=Path, default=None, help="one log file per pod here")
    parser.add_argument(
        "--events-file", type=Path, default=None, help="append pod lifecycle JSON lines here"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="replica command, after --")
    return parser


async def _serve(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    fleet = Fleet(
        argv=command or list(_DEFAULT_COMMAND),
        replicas=args.replicas,
        startup_delay_s=args.startup_delay,
        time_scale=args.time_scale,
        port=args.port,
        labels=dict(args.label) if args.label else None,
        name_prefix=args.name_prefix,
        ready_timeout_s=args.ready_timeout,
        max_startup_failures=args.max_startup_failures,
        termination_grace_s=args.grace,
        log_dir=args.log_dir,
        events_path=args.events_file,
    )
    api = FleetAPI(fleet=fleet, port=args.api_port, namespace=args.namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await fleet.start()
        api_url = await api.start()
        ready = asyncio.create_task(fleet.wait_ready(timeout_s=args.ready_timeout * 2 + 10))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            ready.result()
            print(f"FLEET url={fleet.url} api={api_url} replicas={fleet.replicas}", flush=True)
            await stopped
        else:
            ready.cancel()
            await asyncio.gather(ready, return_exceptions=True)
    finally:
        await api.stop()
        await fleet.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fleet command line; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        if args.replicas < 0:
            raise ConfigError(f"--replicas {args.replicas} is invalid", hint="give 0 or more")
        return asyncio.run(_serve(args))
    except LoadLabError as exc:
        print(f"loadlab fleet: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
