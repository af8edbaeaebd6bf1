"""SnapStart on the embedded Lambda: the agent's init with and without the restore, side by side.

Starts one embedded stack whose function has SnapStart (the keeper initialises
the agent once and forks restored environments), then, ``--rounds`` times, plays
a burst of ``--burst`` concurrent first turns twice: once with environments
restored from the snapshot and once initialised from scratch (the function's
``LOADLAB_SNAPSTART_SOCKET`` removed; each change of configuration recycles
every environment). The order alternates per round. Each first turn's ``meta``
event reports its environment's ``init_ms`` (restore or init, as the
environment waited for it). Prints every round, the medians and their ratio.

    .venv/bin/python bench/snapstart.py               # 3 rounds of 3 (~1.5 min)
    .venv/bin/python bench/snapstart.py --rounds 5 --burst 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt

from loadlab.embedded.aws_lambda.deploy import LambdaOptions, lambda_client, wait_until_ready
from loadlab.embedded.aws_lambda.snapstart import SOCKET_ENV
from loadlab.embedded.stack import EmbeddedStack


def first_turn(client: Any, function: str, secret: str) -> float:
    """A new session's first turn; the init_ms its (new) environment reports."""
    session = f"bench-{uuid.uuid4().hex[:12]}"
    now = int(time.time())
    token = jwt.encode({"sub": session, "iat": now, "exp": now + 600}, secret, "HS256")
    event = {
        "session_id": session,
        "turn": 1,
        "message": "Add P-0042 to my cart",
        "idempotency_key": f"{session}-t1",
        "token": token,
    }
    response = client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read())
    body = payload.get("body", "")
    for block in body.split("\n\n"):
        if block.startswith("event: meta"):
            meta = json.loads(block.split("data: ", 1)[1])
            if not meta["cold"]:
                raise SystemExit(f"a first turn was warm: {meta}")
            return float(meta["init_ms"])
    raise SystemExit(f"no meta event: {payload}")


def set_socket(client: Any, function: str, path: str | None) -> None:
    """Restore from the snapshot (``path``) or initialise (None); recycles every environment."""
    config = client.get_function_configuration(FunctionName=function)
    variables = dict(config["Environment"]["Variables"])
    variables.pop(SOCKET_ENV, None)
    if path is not None:
        variables[SOCKET_ENV] = path
    client.update_function_configuration(
        FunctionName=function, Environment={"Variables": variables}
    )
    wait_until_ready(client, function)


def bench(stack: EmbeddedStack, *, rounds: int, burst: int) -> dict[str, list[float]]:
    """The rounds (blocking; the stack runs on the caller's loop in another thread)."""
    state = stack.state
    function = state.endpoints.lambda_function
    assert function is not None
    client = lambda_client(
        endpoint_url=state.endpoints.aws_endpoint_url,
        region=state.endpoints.region,
        access_key_id="loadlab",
        secret_access_key="loadlab-local",
        max_pool_connections=burst + 2,
    )
    socket_path = client.get_function_configuration(FunctionName=function)["Environment"][
        "Variables"
    ][SOCKET_ENV]
    results: dict[str, list[float]] = {"restore": [], "init": []}
    try:
        for number in range(rounds):
            order = ("restore", "init") if number % 2 == 0 else ("init", "restore")
            for mode in order:
                set_socket(client, function, socket_path if mode == "restore" else None)
                with ThreadPoolExecutor(burst) as pool:
                    times = list(
                        pool.map(
                            lambda _: first_turn(client, function, state.jwt_secret), range(burst)
                        )
                    )
                results[mode] += times
                print(
                    f"round {number + 1} {mode:>7}: "
                    + ", ".join(f"{t:,.0f}" for t in sorted(times))
                    + " ms",
                    flush=True,
                )
    finally:
        client.close()
    return results


async def run(rounds: int, burst: int, time_scale: float) -> dict[str, list[float]]:
    """Start the stack, bench, stop the stack."""
    with tempfile.TemporaryDirectory(prefix="loadlab-bench-snap-") as work:
        stack = EmbeddedStack(
            replicas=1,
            time_scale=time_scale,
            state_dir=Path(work) / "state",
            lambda_function=True,
            lambda_options=LambdaOptions(snapstart=True, function_url=False),
        )
        async with stack:
            return await asyncio.to_thread(bench, stack, rounds=rounds, burst=burst)


def main() -> int:
    """Run the rounds and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=3, help="concurrent first turns per phase")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="the stack's time scale (agent init 800 ms x)"
    )
    args = parser.parse_args()
    print(
        f"command: bench/snapstart.py --rounds {args.rounds} --burst {args.burst} "
        f"--time-scale {args.time_scale:g}; nproc {os.cpu_count()}, Python "
        f"{platform.python_version()}, load average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    results = asyncio.run(run(args.rounds, args.burst, args.time_scale))
    restore, init = statistics.median(results["restore"]), statistics.median(results["init"])
    print(f"median init (from scratch): {init:,.0f} ms over {len(results['init'])} environments")
    print(
        f"median restore (snapshot):  {restore:,.0f} ms over {len(results['restore'])} environments"
    )
    print(f"restore / init: {restore / init:.3f} ({(1 - restore / init):.0%} less)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
