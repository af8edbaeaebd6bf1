"""The same flash sale against the embedded Lambda target and against pods, compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.report.compare import compare_runs

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "ci_smoke.yaml"

pytestmark = pytest.mark.integration


def run(tmp_path: Path, name: str, *extra: str) -> Path:
    root = tmp_path / name
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "run", str(SCENARIO), "--embedded", *extra,
            "--users", "6", "--replicas", "2", "--stack-time-scale", "0.05",
            "--runs-root", str(root), "--state-dir", str(tmp_path / f"state-{name}"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        env=os.environ.copy(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = root.iterdir()
    return run_dir


def test_lambda_needs_an_environment_per_concurrent_request_pods_do_not(tmp_path: Path) -> None:
    on_lambda = run(tmp_path, "lambda", "--lambda")
    on_pods = run(tmp_path, "pods")
    comparison = compare_runs(on_lambda, on_pods, out=tmp_path / "compare.html")
    assert comparison.warnings == (), "same scenario, same load: only the target differs"
    rows = {label: (a, b) for label, a, b, _ in comparison.rows}
    lam_envs, pod_envs = rows["environments created"]
    lam_peak, _ = rows["peak concurrency"]
    # The two pods share one port: the kernel hashes each new connection to one of them,
    # and 6 users keep theirs alive, so all 6 land on one pod about once in 32 runs
    # (2 / 2**6). What a pod fleet guarantees is never more than its replicas.
    assert 1 <= pod_envs <= 2, "the pods served every request, however many sessions ran"
    assert lam_envs >= lam_peak >= 2, "each request in flight on Lambda held its own environment"
    lam_cold, pod_cold = rows["cold starts"]
    assert lam_cold == lam_envs and pod_cold == pod_envs
    summary = json.loads((on_lambda / "summary.json").read_text())
    assert summary["sessions"]["verdicts"]["restarted"] == 0
    assert summary["sessions"]["verdicts"]["duplicated"] == 0
    manifest = json.loads((on_lambda / "manifest.json").read_text())
    # the same scenario (protocol reference), played through the Lambda Invoke API
    assert manifest["scenario"]["target"]["protocol"] == "reference"
    assert manifest["target"]["transport"] == "lambda"
    assert manifest["target"]["function"]
    requests = summary["request_latency_ms"]["by_name"]
    assert requests, "the Lambda run recorded its invocations"
