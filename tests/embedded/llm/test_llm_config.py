"""The simulator's config: validation and the latency model's draws."""

from __future__ import annotations

import random
import statistics

import pytest

from loadlab.embedded.llm.config import LatencyModel, Quotas, SimulatorConfig
from loadlab.errors import ConfigError


def test_default_call_takes_three_to_six_seconds() -> None:
    model, rng = LatencyModel(), random.Random(1)
    totals = []
    for _ in range(200):
        n = model.output_tokens(rng, None)
        totals.append(model.ttft_ms(rng) + sum(model.token_interval_ms(rng) for _ in range(n - 1)))
    assert 3000 <= statistics.median(totals) <= 6000
    assert statistics.quantiles(totals, n=10)[0] >= 3000
    assert statistics.quantiles(totals, n=10)[-1] <= 6000


def test_output_tokens_capped_by_max_tokens() -> None:
    model, rng = LatencyModel(min_output_tokens=10, max_output_tokens=20), random.Random(0)
    drawn = {model.output_tokens(rng, None) for _ in range(300)}
    assert min(drawn) == 10 and max(drawn) == 20
    assert {model.output_tokens(rng, 3) for _ in range(20)} == {3}


def test_same_seed_same_draws() -> None:
    model = LatencyModel()
    a, b = random.Random(5), random.Random(5)
    assert [model.ttft_ms(a) for _ in range(5)] == [model.ttft_ms(b) for _ in range(5)]


def test_zero_sigma_is_constant() -> None:
    model = LatencyModel(ttft_sigma=0, token_interval_sigma=0)
    rng = random.Random(3)
    assert model.ttft_ms(rng) == pytest.approx(700)
    assert model.token_interval_ms(rng) == pytest.approx(30)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: LatencyModel(ttft_median_ms=0), "ttft_median_ms"),
        (lambda: LatencyModel(token_interval_median_ms=-1), "token_interval_median_ms"),
        (lambda: LatencyModel(ttft_sigma=-0.1), "ttft_sigma"),
        (lambda: LatencyModel(min_output_tokens=0), "min_output_tokens"),
        (lambda: LatencyModel(min_output_tokens=9, max_output_tokens=8), "max_output_tokens"),
        (lambda: Quotas(rpm=-1), "rpm"),
        (lambda: Quotas(max_concurrency=-2), "max_concurrency"),
        (lambda: SimulatorConfig(time_scale=0), "time_scale"),
        (lambda: SimulatorConfig(time_scale=float("nan")), "time_scale"),
        (lambda: SimulatorConfig(model=" "), "model"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build()  # type: ignore[operator]
    assert field in str(caught.value)
    assert caught.value.exit_code == 2
