"""Harness lateness against the turn P99: the 1 % line and runs recorded before it."""

from __future__ import annotations

import pandas as pd

from loadlab.analysis.lateness import LATENESS_SHARE_LIMIT, harness_lateness


def _turns(lateness: list[float | None]) -> pd.DataFrame:
    return pd.DataFrame({"lateness_ms": pd.Series(lateness, dtype="float64")})


def test_lateness_under_one_percent_of_the_turn_p99_is_no_warning() -> None:
    late = harness_lateness(_turns([0.1] * 99 + [1.9]), turn_p99_ms=200.0)
    assert (late.count, late.p50, late.p99, late.max) == (100, 0.1, 0.1, 1.9)
    assert late.share_of_turn_p99 == 0.0005
    assert not late.distorted and late.warning is None


def test_lateness_over_one_percent_of_the_turn_p99_warns_with_the_figures() -> None:
    late = harness_lateness(_turns([0.5] * 90 + [None] * 5 + [3.0] * 10), turn_p99_ms=200.0)
    assert late.count == 100 and late.p99 == 3.0
    assert late.share_of_turn_p99 == 0.015 > LATENESS_SHARE_LIMIT
    assert late.distorted
    assert late.warning is not None
    assert late.warning.startswith("harness lateness P99 = 3.0 ms is 1.5% of the turn P99")
    assert late.to_json()["distorted"] is True


def test_a_run_recorded_before_lateness_has_no_figures_and_no_warning() -> None:
    for turns in (pd.DataFrame({"latency_ms": [1.0]}), _turns([None, None]), _turns([])):
        late = harness_lateness(turns, turn_p99_ms=10.0)
        assert (late.count, late.p99, late.distorted, late.warning) == (0, None, False, None)
    # without a turn P99 (no successful turn) there is nothing to weigh it against
    assert not harness_lateness(_turns([500.0]), turn_p99_ms=None).distorted
