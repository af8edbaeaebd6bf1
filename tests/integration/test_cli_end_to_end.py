"""The whole path on real parts: embedded stack, a Locust run, a pod kill, the report.

These tests run the ``loadlab`` command as a user would (a subprocess), against
ministack, the LLM simulator and the agent fleet, with every latency compressed
by ``--stack-time-scale`` so a flash sale takes about half a minute.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from loadlab.analysis.rundata import load_run

REPO = Path(__file__).resolve().parents[2]
LOADLAB = [sys.executable, "-m", "loadlab"]

pytestmark = pytest.mark.integration


def loadlab(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LOADLAB, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        check=False,
    )


@pytest.fixture(scope="module")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One compressed demo: ci_smoke flash sale, two pods, one deleted mid-sale."""
    work = tmp_path_factory.mktemp("demo")
    proc = loadlab(
        "demo",
        "--scenario",
        str(REPO / "scenarios" / "ci_smoke.yaml"),
        "--replicas",
        "2",
        "--stack-time-scale",
        "0.05",
        "--kill-at",
        "0.5",
        "--runs-root",
        str(work / "runs"),
        "--state-dir",
        str(work / "state"),
        cwd=work,
    )
    runs = sorted((work / "runs").glob("*"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert len(runs) == 1
    return runs[0], proc


def test_demo_writes_a_complete_run_directory(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    run_dir, proc = demo_run
    for name in ("manifest.json", "events.jsonl", "summary.json", "report.html", "junit.xml"):
        assert (run_dir / name).is_file(), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["end_reason"] == "completed" and manifest["ended_at"] > manifest["started_at"]
    run = load_run(run_dir)
    assert run.problems == ()
    assert len(run.requests) > 50 and len(run.turns) > 50 and len(run.sessions) > 5
    assert set(run.requests["instance_id"].dropna()) >= {"shopping-agent"} or (
        run.requests["instance_id"].dropna().str.startswith("shopping-agent-").all()
    )
    assert "report:" in proc.stdout


def test_report_numbers_match_locusts_own_statistics(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    run_dir, _ = demo_run
    summary = json.loads((run_dir / "summary.json").read_text())
    locust = json.loads((run_dir / "locust_final.json").read_text())
    assert summary["totals"]["requests"] == locust["total"]["num_requests"]
    assert summary["totals"]["requests_failed"] == locust["total"]["num_failures"]
    assert summary["locust"]["source"] == "locust_final.json"
    assert summary["locust"]["all_match"], summary["locust"]
    # Locust's own CSV is there too (it may lag the last second, see summary.locust_agreement)
    with (run_dir / "locust_stats.csv").open(newline="") as fh:
        names = {row["Name"] for row in csv.DictReader(fh)}
    assert {r["name"] for r in summary["locust"]["by_name"]} <= names | {"Aggregated"}


def test_the_pod_kill_is_on_the_timeline_and_sessions_survive_it(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    run_dir, _ = demo_run
    run = load_run(run_dir)
    faults = run.events[run.events["kind"] == "fault"]
    assert list(faults["attrs"].map(lambda a: a["phase"])) == ["start", "end"]
    assert faults["attrs"].map(lambda a: a["fault_id"]).nunique() == 1
    assert faults.iloc[-1]["attrs"]["status"] == "succeeded"
    killed = faults.iloc[0]["target"]
    assert killed.startswith("shopping-agent-")
    verdicts = run.sessions["verdict"].value_counts().to_dict()
    # The reference agent checkpoints before answering and honours idempotency keys:
    # a pod kill may interrupt turns, but must never lose or duplicate a cart.
    assert verdicts.get("restarted", 0) == 0, verdicts
    assert verdicts.get("duplicated", 0) == 0, verdicts
    after = run.requests[run.requests["t_start"] > faults.iloc[0]["t"]]
    assert killed not in set(after["instance_id"].dropna()), "a deleted pod kept serving"


def test_report_reproduces_from_the_run_directory(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    run_dir, _ = demo_run
    before = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").unlink()
    (run_dir / "report.html").unlink()
    proc = loadlab("report", str(run_dir), cwd=tmp_path)
    assert proc.returncode in (0, 6), proc.stderr
    after = json.loads((run_dir / "summary.json").read_text())
    assert after["totals"] == before["totals"]
    assert after["turn_latency_ms"] == before["turn_latency_ms"]
    assert (run_dir / "report.html").stat().st_size > 10_000


def test_every_secret_stays_out_of_the_run_directory(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    run_dir, proc = demo_run
    blobs = [p.read_bytes() for p in run_dir.rglob("*") if p.is_file()]
    frame = pd.concat([load_run(run_dir).requests.astype(str)], axis=1)
    text = proc.stdout + proc.stderr + frame.to_csv()
    for marker in (b"Bearer ", b"eyJhbGciOi"):  # an Authorization header, a JWT
        assert not any(marker in blob for blob in blobs), marker
        assert marker.decode() not in text


# -- bad input: fast, no stack ---------------------------------------------------------


def test_malformed_scenario_names_the_key_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nshape:\n  kind: flash_sale\n  peak_userz: 10\n")
    proc = loadlab("run", str(bad), "--target", "http://127.0.0.1:9", cwd=tmp_path)
    assert proc.returncode == 2
    assert "peak_userz" in proc.stderr and "peak_users" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_target_exits_3_with_a_fix(tmp_path: Path) -> None:
    scenario = REPO / "scenarios" / "ci_smoke.yaml"
    proc = loadlab("run", str(scenario), "--target", "http://127.0.0.1:9", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "cannot reach the target http://127.0.0.1:9" in proc.stderr
    assert "loadlab up" in proc.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_report_on_a_directory_that_is_not_a_run_exits_5(tmp_path: Path) -> None:
    proc = loadlab("report", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 5
    assert "not a loadlab run directory" in proc.stderr


def test_bad_flag_value_is_refused_by_name(tmp_path: Path) -> None:
    proc = loadlab("run", "scenarios/ci_smoke.yaml", "--users", "-5", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--users" in proc.stderr and "must be > 0" in proc.stderr
