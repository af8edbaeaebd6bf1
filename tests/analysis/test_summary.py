from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loadlab.analysis.rundata import load_run
from loadlab.analysis.stats import PERCENTILES, Distribution, distribution, percentile
from loadlab.analysis.summary import summarize
from loadlab.analysis.timeseries import bucket_width, timeseries
from loadlab.errors import RunDirectoryError


def test_nearest_rank_percentiles_are_values_that_occurred() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 99.9) == 100
    assert percentile([], 99) is None
    assert distribution([3.0, 1.0, 2.0])["p50"] == 2.0


def test_a_distribution_has_each_percentile_as_computed_alone() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 99, 100, 101, 999, 1001, 20_000):
        for values in (rng.lognormal(6.0, 1.0, n), rng.integers(0, 50, n).astype(float)):
            d = Distribution.of(values)
            for key, q in PERCENTILES:
                expected = percentile(values, q)
                assert expected is not None and getattr(d, key) == round(expected, 3), (n, key)


def test_load_run_reads_only_the_columns_asked_for(known_run: Callable[..., Path]) -> None:
    path = known_run()
    run = load_run(path, columns={"turns": ["t_end", "t_start"]})
    assert list(run.turns.columns) == ["t_start", "t_end"] and len(run.turns) == 101
    assert "verdict" in run.sessions  # the tables not named are read whole
    with pytest.raises(ValueError, match="no table named"):
        load_run(path, columns={"carts": ["sku"]})


def test_load_run_without_a_copy_gives_the_same_frames_read_only(
    known_run: Callable[..., Path],
) -> None:
    path = known_run()
    copied, shared = load_run(path), load_run(path, copy=False)
    for name in ("requests", "turns", "sessions", "pressure"):
        pd.testing.assert_frame_equal(
            getattr(copied, name), getattr(shared, name), check_exact=True
        )
    copied.turns.loc[0, "t_end"] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        shared.turns.loc[0, "t_end"] = 0.0


def test_summary_matches_the_known_truth(known_run: Callable[..., Path]) -> None:
    s = summarize(load_run(known_run()))
    assert s.totals.turns == 101
    assert s.totals.turns_ok == 100
    assert s.totals.turn_error_rate == pytest.approx(1 / 101)
    # shopper-visible latency is t_end - t_start: i seconds for turn i
    assert s.turn_latency_ms.all.p50 == 50_000
    assert s.turn_latency_ms.all.p99 == 99_000
    assert s.turn_latency_ms.by_intent["search"].count == 50
    assert s.ttft_ms.all.p99 == 99
    assert s.errors.by_kind["reset"] == 3
    assert s.errors.by_kind["http_status"] == 1
    assert s.errors.examples["reset"] == "connection reset mid-stream"
    assert s.sessions.verdicts == {
        "clean": 6,
        "resumed": 2,
        "restarted": 1,
        "duplicated": 0,
        "failed": 1,
    }
    assert s.sessions.resume_latency_ms.count == 2
    assert s.cold_starts.count == 3
    assert s.cold_starts.instances == 3
    assert s.downstream.per_turn["ddb_calls"] == pytest.approx(200 / 101)
    assert s.faults[0].t == pytest.approx(60.0)
    assert s.totals.peak_users == 190
    assert s.locust is None  # no Locust statistics in this run
    as_json = s.to_json()
    assert as_json["totals"]["turns"] == 101 and as_json["faults"][0]["name"] == "delete pod"


def test_timeseries_counts_every_turn_once(known_run: Callable[..., Path]) -> None:
    run = load_run(known_run())
    series = timeseries(run, width_s=10)
    assert series["turns_per_s"].sum() * 10 == pytest.approx(101)
    assert series["users"].iloc[5] == 50


def test_bucket_width_is_round() -> None:
    assert bucket_width(60) == 1
    assert bucket_width(600) == 5
    assert bucket_width(3600) == 30


def test_not_a_run_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirectoryError, match="not a loadlab run directory"):
        load_run(tmp_path)
    with pytest.raises(RunDirectoryError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_locust_median_reproduces_locusts_bucketing() -> None:
    from loadlab.analysis.locust_agreement import locust_median

    # Locust buckets 274 -> 270 and 1274 -> 1300 and walks buckets from the top.
    assert locust_median(pd.Series([274.0, 281.0, 1274.0])) == 280.0
    # ... and clamps to the exact min/max when a bucket falls outside them.
    assert locust_median(pd.Series([1274.0])) == 1274.0
    assert locust_median(pd.Series([], dtype="float64")) is None
    # twelve values: Locust reports the 6th from the bottom (int(12 * 0.5) left below)
    assert locust_median(pd.Series([float(v) for v in range(200, 320, 10)])) == 260.0


def test_agreement_flags_a_count_difference(known_run: Callable[..., Path]) -> None:
    import json

    from loadlab.analysis.locust_agreement import locust_agreement

    path = known_run()
    run = load_run(path)
    entries = [
        {"name": n, "num_requests": int(c), "median_response_time": None}
        for n, c in run.requests.groupby("name").size().items()
    ]
    entries[0]["num_requests"] += 1  # Locust saw one request loadlab did not record
    (path / "locust_final.json").write_text(json.dumps({"entries": entries}))
    result = locust_agreement(load_run(path))
    assert result is not None and not result.all_match
    assert [r.name for r in result.by_name if not r.count_match] == [entries[0]["name"]]
    assert summarize(load_run(path)).to_json()["locust"] == result.to_json()
