"""Helpers for the pressure tests: the simulator served on a thread, ministack clients, a sink."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadlab.embedded.llm.config import LatencyModel, Quotas, SimulatorConfig
from loadlab.embedded.llm.server import Simulator

REPO = Path(__file__).resolve().parents[3]
MINISTACK = REPO / ".venv-ministack" / "bin" / "ministack"
REGION = "us-east-1"
KEY_ID = "loadlab-pressure-test"
SECRET = "pressure-secret-never-written"

# A completion takes milliseconds; 2 requests per simulated minute, so the third is a 429.
FAST = SimulatorConfig(
    latency=LatencyModel(min_output_tokens=5, max_output_tokens=12),
    quotas=Quotas(rpm=2),
    time_scale=0.01,
    seed=3,
)


@dataclass(frozen=True)
class ServedSimulator:
    url: str
    simulator: Simulator

    def chat(self, content: str = "compare P-0001 and P-0002") -> int:
        """One non-streaming completion; returns the HTTP status."""
        body = {"model": "m", "messages": [{"role": "user", "content": content}]}
        request = urllib.request.Request(
            f"{self.url}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as exc:
            exc.read()
            exc.close()
            return int(exc.code)

    def counter(self, name: str, **labels: str) -> float:
        """A sample of the simulator's own registry (what it counted)."""
        value = self.simulator.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else float(value)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cloudwatch_client(endpoint: str) -> Any:
    """A CloudWatch client on ministack, built the way the embedded stack builds it."""
    from loadlab.embedded.cloudwatch_publisher import ministack_cloudwatch_client

    return ministack_cloudwatch_client(
        endpoint_url=endpoint, region=REGION, access_key_id=KEY_ID, secret_access_key=SECRET
    )


class ListSink:
    """A sink that keeps what it is given (the recorder's ``emit``, in memory)."""

    def __init__(self) -> None:
        self.rows: list[Any] = []

    def emit(self, row: Any) -> None:
        self.rows.append(row)
