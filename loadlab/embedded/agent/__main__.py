"""``python -m loadlab.embedded.agent``: run one reference-agent instance.

Configuration comes from the environment (see :mod:`loadlab.embedded.agent.config`);
the command line only says where to listen. Once initialised and listening it
prints ``READY pid=… instance=… init_ms=… url=…`` on stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys
from collections.abc import Sequence

from loadlab.embedded.agent.config import AgentConfig
from loadlab.embedded.agent.service import serve
from loadlab.errors import ConfigError, LoadLabError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadlab.embedded.agent",
        description="Run one instance of loadlab's reference shopping-assistant agent "
        "(configured by LOADLAB_* environment variables; see loadlab.embedded.agent.config).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 = any (8080)")
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="set SO_REUSEPORT so several instances share the port",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="also serve this instance's own /metrics on this port (0 = any; default: only "
        "on --port, which replicas sharing it answer in turn)",
    )
    parser.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="allow a --host outside 127.0.0.0/8 and ::1 (never needed for the embedded stack)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (INFO)",
    )
    return parser


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the agent until SIGTERM/SIGINT; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        if not args.allow_non_loopback and not _is_loopback(args.host):
            raise ConfigError(
                f"--host {args.host} is not a loopback address",
                hint="use 127.0.0.1, or pass --allow-non-loopback to listen there on purpose",
            )
        for flag, port in (("--port", args.port), ("--metrics-port", args.metrics_port)):
            if port is not None and not 0 <= port <= 65535:
                raise ConfigError(f"{flag} {port} is out of range", hint="use 0-65535")
        config = AgentConfig.from_env()
        logging.basicConfig(
            level=args.log_level,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        asyncio.run(
            serve(
                config,
                host=args.host,
                port=args.port,
                reuse_port=args.reuse_port,
                metrics_port=args.metrics_port,
            )
        )
    except LoadLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
