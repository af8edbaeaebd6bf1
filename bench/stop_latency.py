"""How fast a stop condition acts: an abort gate breaks, faults are reverted, the load stops.

Runs the shipped ``chaos/llm-slowdown.json`` game day ``--rounds`` times against
the embedded stack (ci_smoke, 2 pods, everything 20x faster) with a scenario
whose slo block is ``p99_ms: {max: LIMIT, window_s: WINDOW, abort: true}``, and
prints, per round and as the median: breach observable -> breach seen (the live
judge, twice a second), breach -> fault reverted, breach -> load stopped. The
figures come from the run directory's timeline (``loadlab.analysis.stop_timings``).

    .venv/bin/python bench/stop_latency.py             # 3 rounds (~1.5 min)
    .venv/bin/python bench/stop_latency.py --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from loadlab.analysis.rundata import load_run
from loadlab.analysis.stop_timings import StopTimings, stop_timings

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "chaos" / "llm-slowdown.json"


def one_round(work: Path, *, limit_ms: float, window_s: float) -> StopTimings:
    """One game day; its stop's timings."""
    scenario = work / "abort.yaml"
    text = (REPO / "scenarios" / "ci_smoke.yaml").read_text().split("\nslo:")[0]
    scenario.write_text(
        text + f"\nslo:\n  p99_ms: {{max: {limit_ms:g}, window_s: {window_s:g}, abort: true}}\n"
    )
    env = os.environ | {
        "LOADLAB_STRIKE_IN_FLIGHT": "3",
        "LOADLAB_STRIKE_AT_STAKE": "2",
        "LOADLAB_LLM_EXTRA_LATENCY_MS": "60000",
    }
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday", str(EXPERIMENT),
            "--scenario", str(scenario), "--replicas", "2", "--stack-time-scale", "0.05",
            "--runs-root", str(work / "runs"), "--state-dir", str(work / "state"),
        ],
        cwd=work, capture_output=True, text=True, timeout=400, check=False, env=env,
    )  # fmt: skip
    (run_dir,) = (work / "runs").iterdir()
    timings = stop_timings(load_run(run_dir), limit=limit_ms, window_s=window_s)
    if timings is None:
        raise SystemExit(f"no breach in round (exit {proc.returncode}); see {run_dir}")
    return timings


def main() -> int:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit-ms", type=float, default=1500.0)
    parser.add_argument("--window-s", type=float, default=5.0)
    args = parser.parse_args()
    print(f"command: {' '.join(sys.argv)}  (nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f})")
    rows: list[tuple[float, float, float]] = []
    for n in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="loadlab-stop-") as tmp:
            t = one_round(Path(tmp), limit_ms=args.limit_ms, window_s=args.window_s)
        assert t.detect_s is not None and t.revert_s is not None and t.stop_s is not None
        rows.append((t.detect_s, t.revert_s, t.stop_s))
        print(f"round {n}: detect {t.detect_s:.3f} s, revert {t.revert_s:.3f} s, "
              f"stop {t.stop_s:.3f} s ({', '.join(sorted(t.revert_t))} reverted)")  # fmt: skip
    print()
    print("| step (after the breach became observable / was seen) | median s | max s |")
    print("|---|---|---|")
    for label, column in (
        ("breach observable -> seen by the live judge", 0),
        ("breach seen -> every fault reverted", 1),
        ("breach seen -> load stopped", 2),
    ):
        values = [row[column] for row in rows]
        print(f"| {label} | {statistics.median(values):.3f} | {max(values):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
