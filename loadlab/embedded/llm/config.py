"""What the LLM simulator is told: its latency model, its quotas and its clock speed.

All values are validated on construction; a bad value raises
:class:`~loadlab.errors.ConfigError` naming the field and the accepted range.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from loadlab.errors import ConfigError


def _require(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ConfigError(f"LLM simulator: {name}={value!r} is invalid", hint=f"{name} {rule}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyModel:
    """How long a completion takes, in simulated milliseconds.

    Time to first token and each inter-token interval are lognormal, given by their
    median and the sigma of the underlying normal (0 makes them constant). The
    number of output tokens is uniform in ``[min_output_tokens, max_output_tokens]``,
    capped by the request's ``max_tokens``. The defaults make one call take 3-6 s.
    """

    ttft_median_ms: float = 700.0
    ttft_sigma: float = 0.3
    token_interval_median_ms: float = 30.0
    token_interval_sigma: float = 0.25
    min_output_tokens: int = 80
    max_output_tokens: int = 150

    def __post_init__(self) -> None:
        for name in ("ttft_median_ms", "token_interval_median_ms"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, name, value, "must be > 0 ms")
        for name in ("ttft_sigma", "token_interval_sigma"):
            value = getattr(self, name)
            _require(math.isfinite(value) and 0 <= value <= 3, name, value, "must be in [0, 3]")
        _require(
            self.min_output_tokens >= 1,
            "min_output_tokens",
            self.min_output_tokens,
            "must be >= 1",
        )
        _require(
            self.max_output_tokens >= self.min_output_tokens,
            "max_output_tokens",
            self.max_output_tokens,
            f"must be >= min_output_tokens ({self.min_output_tokens})",
        )

    def ttft_ms(self, rng: random.Random) -> float:
        """Draw one time to first token."""
        return rng.lognormvariate(math.log(self.ttft_median_ms), self.ttft_sigma)

    def token_interval_ms(self, rng: random.Random) -> float:
        """Draw one interval between two output tokens."""
        return rng.lognormvariate(
            math.log(self.token_interval_median_ms), self.token_interval_sigma
        )

    def output_tokens(self, rng: random.Random, max_tokens: int | None) -> int:
        """Draw how many tokens a completion produces, never more than ``max_tokens``."""
        drawn = rng.randint(self.min_output_tokens, self.max_output_tokens)
        return drawn if max_tokens is None else min(drawn, max_tokens)


@dataclass(frozen=True, slots=True, kw_only=True)
class Quotas:
    """Provider limits: requests and tokens per (simulated) minute, concurrent calls.

    0 means unlimited.
    """

    rpm: int = 0
    tpm: int = 0
    max_concurrency: int = 0

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "max_concurrency"):
            value = getattr(self, name)
            _require(value >= 0, name, value, "must be >= 0 (0 = unlimited)")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorConfig:
    """Everything one simulator instance needs.

    ``time_scale`` multiplies every simulated duration: latencies, injected extra
    latency and the 60 s quota window (so a quota minute lasts ``60 * time_scale``
    real seconds). 1.0 is real time; tests use ~0.01.
    """

    latency: LatencyModel = field(default_factory=LatencyModel)
    quotas: Quotas = field(default_factory=Quotas)
    time_scale: float = 1.0
    seed: int = 0
    model: str = "loadlab-sim-1"

    def __post_init__(self) -> None:
        _require(
            math.isfinite(self.time_scale) and 0 < self.time_scale <= 100,
            "time_scale",
            self.time_scale,
            "must be in (0, 100]: 1.0 is real time, 0.01 is 100x faster",
        )
        _require(bool(self.model.strip()), "model", self.model, "must be a non-empty name")
