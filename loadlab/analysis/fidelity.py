"""The published ratios about Lambda and pods, beside what two runs measured.

:func:`fidelity_table` takes a Lambda run and a pods run (their summaries and
cost usage) and returns one :class:`FidelityRow` per claim: the figure as
published, loadlab's measured figure, and where the claim comes from. The point
is that a user checks the claims on their own system, so a figure the runs do
not have is shown as such (None), never guessed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from loadlab.analysis.cost import Usage

__all__ = ["FidelityRow", "fidelity_table"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FidelityRow:
    """One claim: ``published`` (as text, the way it was stated) against ``measured``."""

    claim: str
    published: str
    measured: float | None
    unit: str
    source: str

    def to_json(self) -> dict[str, Any]:
        """The row as JSON."""
        return asdict(self)


def _ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return float(a) / float(b)
    return None


def _get(summary: dict[str, Any], *path: str) -> Any:
    node: Any = summary
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def fidelity_table(
    lambda_summary: dict[str, Any],
    pods_summary: dict[str, Any],
    *,
    lambda_usage: Usage | None,
    break_even_per_day: float | None,
) -> tuple[FidelityRow, ...]:
    """The claims, each with the figure measured by the Lambda run and the pods run."""
    lam, pods = lambda_summary, pods_summary
    cold_warm = _ratio(
        _get(lam, "cold_starts", "turn_p99_ms_cold"), _get(lam, "cold_starts", "turn_p99_ms_warm")
    )
    env_lambda = _ratio(
        _get(lam, "cold_starts", "environments", "created"),
        _get(lam, "cold_starts", "environments", "peak_concurrency"),
    )
    env_pods = _ratio(
        _get(pods, "cold_starts", "environments", "created"),
        _get(pods, "cold_starts", "environments", "peak_concurrency"),
    )
    beyond: float | None = None
    if lambda_usage is not None and lambda_usage.provisioned:
        beyond = _ratio(
            lambda_usage.cold_starts,
            max(lambda_usage.environments - lambda_usage.provisioned, 0) or None,
        )
    return (
        FidelityRow(
            claim="mean turn latency, Lambda / pods",
            published="1.92 (containers 48 % lower mean)",
            measured=_ratio(
                _get(lam, "turn_latency_ms", "all", "mean"),
                _get(pods, "turn_latency_ms", "all", "mean"),
            ),
            unit="x",
            source="published serving benchmark, EKS containers vs Lambda, same workload",
        ),
        FidelityRow(
            claim="turn latency P99, Lambda / pods",
            published="3.7",
            measured=_ratio(
                _get(lam, "turn_latency_ms", "all", "p99"),
                _get(pods, "turn_latency_ms", "all", "p99"),
            ),
            unit="x",
            source="published serving benchmark, EKS containers vs Lambda, same workload",
        ),
        FidelityRow(
            claim="cold / warm turn latency on Lambda (P99)",
            published="17-33 (5-10 s cold vs about 300 ms warm)",
            measured=cold_warm,
            unit="x",
            source="reference figures for an API-calling agent (SDK imports, TLS at INIT)",
        ),
        FidelityRow(
            claim="environments created per request in flight at the peak, Lambda",
            published=">= 1 (one environment per concurrent request)",
            measured=env_lambda,
            unit="x",
            source="Lambda execution model (AWS documentation)",
        ),
        FidelityRow(
            claim="instances per request in flight at the peak, pods",
            published="< 1 (a pod serves many requests at once)",
            measured=env_pods,
            unit="x",
            source="Lambda execution model vs pods (AWS documentation)",
        ),
        FidelityRow(
            claim="cold starts / environments beyond provisioned concurrency",
            published="1.0 (PC 100, burst 5,000: 4,900 cold)",
            measured=beyond,
            unit="x",
            source="AWS provisioned concurrency documentation, worked example",
        ),
        FidelityRow(
            claim="break-even, requests/day below which Lambda is cheaper",
            published="about 35,000",
            measured=break_even_per_day,
            unit="requests/day",
            source="published cost comparison, Lambda vs containers, same serving workload",
        ),
    )
