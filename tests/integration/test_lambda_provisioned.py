"""Provisioned concurrency 4 against a burst of 8 on the embedded Lambda (emulated on ministack).

Four environments are initialised before the sale; the burst's other first
turns cold-start new environments. The cost model reads the provisioned
concurrency back from the function (the run's manifest) and charges it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.analysis.cost import cost_estimate
from loadlab.analysis.prices import load_prices
from loadlab.analysis.rundata import load_run

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "ci_smoke.yaml"

pytestmark = pytest.mark.integration


def test_provisioned_environments_serve_warm_first_turns_and_are_charged(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "run", str(SCENARIO), "--embedded", "--lambda",
            "--provisioned-concurrency", "4", "--users", "8", "--replicas", "1",
            "--stack-time-scale", "0.05", "--runs-root", str(root),
            "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        env=os.environ.copy(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = root.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["target"]["provisioned_concurrency"] == 4
    assert manifest["target"]["memory_mb"] == 512

    run = load_run(run_dir)
    served = run.requests[run.requests["instance_id"].notna()]
    first = served.sort_values("t_start").groupby("instance_id").head(1)
    warm_first = int(first["cold_start"].eq(False).sum())
    cold_first = int(first["cold_start"].eq(True).sum())
    assert warm_first == 4, first[["instance_id", "cold_start"]]
    # The burst beyond the 4 provisioned environments cold-starts (8 sessions at most).
    assert 1 <= cold_first <= 4, first[["instance_id", "cold_start"]]
    assert len(first) == warm_first + cold_first <= 8, "reserved concurrency caps it at 8"

    estimate = cost_estimate(run, load_prices())
    pc = estimate.model("lambda_pc")
    assert pc.basis == "measured" and pc.cold_starts == cold_first
    provisioned = [x for x in pc.compute if x.price_key == "lambda_pc_gb_second"]
    assert provisioned and provisioned[0].usd > 0
    assert estimate.model("lambda").cold_starts == cold_first + 4
