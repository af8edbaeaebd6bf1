"""Run the LLM simulator: ``python -m loadlab.embedded.llm --port 0``.

Once listening it prints exactly one line, ``LISTENING http://HOST:PORT``, to
stdout (the embedded stack reads it to learn the port), and exits 0 on SIGTERM
or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from loadlab.embedded.llm.config import LatencyModel, Quotas, SimulatorConfig
from loadlab.embedded.llm.server import create_app
from loadlab.errors import ConfigError, StackError


def build_parser() -> argparse.ArgumentParser:
    """The command line of the simulator."""
    defaults = LatencyModel()
    p = argparse.ArgumentParser(
        prog="python -m loadlab.embedded.llm",
        description="OpenAI-compatible LLM simulator with latency, quotas and fault injection.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (loopback only unless --allow-non-loopback; default 127.0.0.1)",
    )
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    p.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="permit binding an address outside 127.0.0.0/8 and ::1",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplies every latency and the 60 s quota window (default 1.0)",
    )
    p.add_argument("--rpm", type=int, default=0, help="requests per minute; 0 = unlimited")
    p.add_argument("--tpm", type=int, default=0, help="tokens per minute; 0 = unlimited")
    p.add_argument(
        "--max-concurrency", type=int, default=0, help="requests served at once; 0 = unlimited"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the latency and text draws")
    p.add_argument(
        "--ttft-median-ms",
        type=float,
        default=defaults.ttft_median_ms,
        help=f"median time to first token (default {defaults.ttft_median_ms})",
    )
    p.add_argument(
        "--token-interval-median-ms",
        type=float,
        default=defaults.token_interval_median_ms,
        help=f"median interval between output tokens (default {defaults.token_interval_median_ms})",
    )
    return p


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Turn parsed flags into a validated config (raises ConfigError)."""
    if not args.allow_non_loopback and not _is_loopback(args.host):
        raise ConfigError(
            f"--host {args.host} is not a loopback address",
            hint="bind 127.0.0.1, or pass --allow-non-loopback if you really mean it",
        )
    return SimulatorConfig(
        latency=LatencyModel(
            ttft_median_ms=args.ttft_median_ms,
            token_interval_median_ms=args.token_interval_median_ms,
        ),
        quotas=Quotas(rpm=args.rpm, tpm=args.tpm, max_concurrency=args.max_concurrency),
        time_scale=args.time_scale,
        seed=args.seed,
    )


async def serve(config: SimulatorConfig, *, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, announcing the bound address on stdout."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # A short grace: in-flight streams of a stopping simulator are cut, like a provider outage.
    runner = web.AppRunner(create_app(config), shutdown_timeout=2.0, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(f"LISTENING http://{shown}:{bound_port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        asyncio.run(serve(config, host=args.host, port=args.port))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return StackError.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
