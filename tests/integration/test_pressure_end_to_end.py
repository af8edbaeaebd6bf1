"""``loadlab run --embedded`` samples the stack's downstream into pressure.parquet.

Prometheus rows come from the LLM simulator and the DynamoDB gate; CloudWatch
rows come from ministack, where the stack's publisher put them under AWS's
names. About 40 s: the ci_smoke flash sale with every latency compressed 20x.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_an_embedded_run_records_prometheus_and_cloudwatch_pressure(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadlab",
            "run",
            str(REPO / "scenarios" / "ci_smoke.yaml"),
            "--embedded",
            "--replicas",
            "2",
            "--stack-time-scale",
            "0.05",
            "--runs-root",
            str(tmp_path / "runs"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ.copy(),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "pressure source" not in proc.stderr, proc.stderr[-3000:]  # no source failed
    (run_dir,) = (tmp_path / "runs").iterdir()
    rows = pd.read_parquet(run_dir / "pressure.parquet")
    assert set(rows["source"]) == {"prometheus", "cloudwatch"}

    prometheus = rows[rows["source"] == "prometheus"]
    answered = prometheus[prometheus["metric"] == "loadlab_llm_requests_total"]
    final_calls = answered.groupby("dimensions_json")["value"].max().sum()
    assert final_calls > 0
    assert (prometheus["metric"] == "loadlab_ddb_consumed_write_capacity_units_total").any()

    cloudwatch = rows[rows["source"] == "cloudwatch"].copy()
    dims = cloudwatch["dimensions_json"].map(json.loads)
    cloudwatch["stat"] = dims.map(lambda d: d["stat"])
    assert set(dims.map(lambda d: d["period_s"])) == {1}
    totals = cloudwatch.groupby(["metric", "stat"])["value"].sum()
    # The publisher lags the simulator by at most its interval: never more, a little less.
    assert 0 < totals[("AWS/Bedrock/Invocations", "Sum")] <= final_calls
    assert totals[("AWS/Bedrock/InvocationLatency", "SampleCount")] > 0
    assert totals[("AWS/DynamoDB/ConsumedWriteCapacityUnits", "Sum")] > 0
    assert not cloudwatch.duplicated(["t", "metric", "dimensions_json", "value"]).any()
