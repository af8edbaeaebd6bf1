"""How many concurrent execution environments this machine sustains with the agent function.

:func:`measure_concurrency` starts an embedded stack with the function (no
reserved concurrency), and for each level N: recycles the environments (a
configuration nonce, so the level starts cold), sends N concurrent first turns
(N cold starts at once), then ``warm_turns`` more turns per shopper at
concurrency N. Each level reports the cold wave's wall time and slowest turn,
the warm turns' median and p95 latency and throughput, the environments seen
and the errors. A level is sustained when nothing failed, every shopper got
its own environment, the slowest cold turn took at most ``max_cold_ms`` (a
third of the function's 30 s timeout by default: a flash sale's first wave is
all cold starts) and the warm p95 stays within ``max_slowdown`` of level 1's.

Run it with ``python -m loadlab.embedded.lambda_capacity`` (it takes ~30 s of
both cores: do not run it beside other benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt

from loadlab.embedded.aws_lambda.deploy import LambdaOptions, lambda_client, wait_until_ready
from loadlab.embedded.stack import EmbeddedStack, LLMOptions
from loadlab.errors import ConfigError, LoadLabError

if TYPE_CHECKING:
    from types_boto3_lambda.client import LambdaClient

MESSAGES = ("Show me running shoes", "Add P-0042 to my cart", "Compare P-0001 and P-0002")


@dataclass(frozen=True, slots=True, kw_only=True)
class LevelResult:
    """The figures of one concurrency level."""

    concurrency: int
    cold_wall_ms: float
    cold_max_ms: float
    cold_init_ms_median: float | None
    warm_p50_ms: float | None
    warm_p95_ms: float | None
    warm_turns_per_s: float
    environments: int
    errors: int

    def sustained(
        self, baseline_p95_ms: float | None, *, max_slowdown: float, max_cold_ms: float
    ) -> bool:
        """No error, one environment per shopper, the cold wave and warm p95 within bounds."""
        if self.errors or self.environments < self.concurrency or self.cold_max_ms > max_cold_ms:
            return False
        if baseline_p95_ms is None or self.warm_p95_ms is None:
            return True
        return self.warm_p95_ms <= baseline_p95_ms * max_slowdown


@dataclass(slots=True)
class _Turn:
    latency_ms: float
    ok: bool
    instance: str | None
    init_ms: float | None


def _meta(body: str) -> dict[str, Any] | None:
    for line in body.splitlines():
        if line.startswith("data: ") and '"instance_id"' in line:
            meta: dict[str, Any] = json.loads(line.removeprefix("data: "))
            return meta
    return None


def _invoke(client: LambdaClient, function: str, event: dict[str, Any]) -> _Turn:
    began = time.perf_counter()
    try:
        response = client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read())
        ok = response.get("FunctionError") is None and payload.get("statusCode") == 200
        meta = _meta(payload.get("body", "")) if ok else None
    except Exception:
        ok, meta = False, None
    latency = (time.perf_counter() - began) * 1000
    ok = ok and meta is not None
    instance = None if meta is None else meta.get("instance_id")
    init_ms = meta.get("init_ms") if meta is not None and meta.get("cold") else None
    return _Turn(latency_ms=latency, ok=ok, instance=instance, init_ms=init_ms)


def _wave(
    client: LambdaClient, function: str, secret: str, shoppers: list[str], turn: int
) -> tuple[list[_Turn], float]:
    results: list[_Turn | None] = [None] * len(shoppers)

    def play(index: int, session_id: str) -> None:
        now = int(time.time())
        token = jwt.encode({"sub": session_id, "iat": now, "exp": now + 600}, secret, "HS256")
        event = {
            "session_id": session_id,
            "turn": turn,
            "message": MESSAGES[turn % len(MESSAGES)],
            "idempotency_key": f"{session_id}-t{turn}",
            "token": token,
        }
        results[index] = _invoke(client, function, event)

    threads = [
        threading.Thread(target=play, args=(i, sid), daemon=True) for i, sid in enumerate(shoppers)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    wall = (time.perf_counter() - began) * 1000
    return [r if r is not None else _Turn(0.0, False, None, None) for r in results], wall


def _recycle(client: LambdaClient, function: str) -> None:
    config = client.get_function_configuration(FunctionName=function)
    variables = dict(config.get("Environment", {}).get("Variables", {}))
    variables["LOADLAB_RECYCLE_NONCE"] = uuid.uuid4().hex
    client.update_function_configuration(
        FunctionName=function, Environment={"Variables": variables}
    )
    wait_until_ready(client, function)


def _level(
    client: LambdaClient, function: str, secret: str, concurrency: int, warm_turns: int
) -> LevelResult:
    _recycle(client, function)
    shoppers = [f"measure-{concurrency}-{i}-{uuid.uuid4().hex[:6]}" for i in range(concurrency)]
    cold, cold_wall = _wave(client, function, secret, shoppers, 1)
    warm: list[_Turn] = []
    warm_wall = 0.0
    for turn in range(2, 2 + warm_turns):
        results, wall = _wave(client, function, secret, shoppers, turn)
        warm += results
        warm_wall += wall
    latencies = sorted(t.latency_ms for t in warm if t.ok)
    inits = [t.init_ms for t in cold if t.init_ms is not None]
    return LevelResult(
        concurrency=concurrency,
        cold_wall_ms=cold_wall,
        cold_max_ms=max(t.latency_ms for t in cold),
        cold_init_ms_median=statistics.median(inits) if inits else None,
        warm_p50_ms=statistics.median(latencies) if latencies else None,
        warm_p95_ms=latencies[max(0, round(0.95 * len(latencies)) - 1)] if latencies else None,
        warm_turns_per_s=len(latencies) / (warm_wall / 1000) if warm_wall else 0.0,
        environments=len({t.instance for t in [*cold, *warm] if t.instance}),
        errors=sum(not t.ok for t in [*cold, *warm]),
    )


async def _measure(
    levels: Sequence[int], *, warm_turns: int, time_scale: float, state_dir: Path
) -> list[LevelResult]:
    options = LambdaOptions(reserved_concurrency=None, function_url=False)
    stack = EmbeddedStack(
        replicas=1,
        time_scale=time_scale,
        state_dir=state_dir,
        llm=LLMOptions(),
        lambda_function=True,
        lambda_options=options,
    )
    async with stack:
        state = stack.state
        secret = state.jwt_secret
        client = lambda_client(
            endpoint_url=state.aws.endpoint_url,
            region=state.aws.region,
            access_key_id=state.aws.access_key_id,
            secret_access_key=state.aws.secret_access_key,
            read_timeout_s=120,
            max_pool_connections=max(levels) + 2,
        )
        try:
            function = options.function_name
            return [
                await asyncio.to_thread(_level, client, function, secret, level, warm_turns)
                for level in levels
            ]
        finally:
            client.close()


def measure_concurrency(
    levels: Sequence[int] = (1, 2, 4, 8, 16),
    *,
    warm_turns: int = 3,
    time_scale: float = 0.05,
    state_dir: Path = Path(".loadlab-measure"),
) -> list[LevelResult]:
    """Measure each concurrency level (see the module docstring); blocking."""
    return asyncio.run(
        _measure(levels, warm_turns=warm_turns, time_scale=time_scale, state_dir=state_dir)
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadlab.embedded.lambda_capacity",
        description="Concurrent Lambda environments this machine sustains (~30 s of both cores).",
    )
    parser.add_argument("--levels", default="1,2,4,8,16", help="concurrency levels (1,2,4,8,16)")
    parser.add_argument("--warm-turns", type=int, default=3, help="warm turns per shopper (3)")
    parser.add_argument("--time-scale", type=float, default=0.05, help="stack time scale (0.05)")
    parser.add_argument(
        "--max-slowdown", type=float, default=2.0, help="allowed warm p95 / level-1 p95 (2.0)"
    )
    parser.add_argument(
        "--max-cold-s", type=float, default=10.0, help="allowed slowest cold turn, s (10)"
    )
    parser.add_argument("--state-dir", type=Path, default=Path(".loadlab-measure"))
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
    """Measure each level and print one line per level; return the exit code."""
    args = _parser().parse_args(argv)
    try:
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
