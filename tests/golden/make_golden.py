"""Build the golden run directory and its expected summary.json.

``tests/golden/run/`` is a small run directory written with loadlab's own
recorder and row types, at fixed timestamps: 8 sessions (clean, resumed,
restarted, duplicated, failed, one stopped by the load shape), their turns and
requests (cold starts, retries, a reset, a 503, a 429), one pod kill with its
start and end in ``events.jsonl``, user-count samples, a few downstream pressure
samples, an out-of-band checkpoint audit (``checkpoints.parquet``) and Locust's
final statistics (``locust_final.json``). ``tests/golden/summary.json`` is what
``summarize()`` makes of it; ``tests/golden/test_golden.py`` recomputes it and
fails, naming each figure that changed, when the two differ.

When a figure changes on purpose, regenerate both and review the diff::

    .venv/bin/python tests/golden/make_golden.py --update
    git diff tests/golden/summary.json

Without ``--update`` the script rebuilds the directory in a temporary place and
only reports whether the committed files still match.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loadlab.analysis.locust_agreement import locust_median
from loadlab.analysis.rundata import load_run
from loadlab.analysis.summary import summarize
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import TABLES, RunDirectory, RunManifest
from loadlab.rows import PressureSample, RequestSample, SessionRecord, TimelineEvent, TurnRecord

HERE = Path(__file__).resolve().parent
RUN = "run"
EXPECTED = HERE / "summary.json"
T0 = 1_700_000_000.0
DURATION_S = 60.0

# session id, start, verdict, reason, resume latency (ms); 3 turns each, 6 s apart
_SESSIONS: tuple[tuple[str, float, str, str, float | None], ...] = (
    ("g-01", 1.0, "clean", "", None),
    ("g-02", 3.0, "clean", "", None),
    ("g-03", 24.0, "resumed", "turn 2 interrupted, resumed from checkpoint", 2350.0),
    ("g-04", 25.0, "restarted", "turn 2 interrupted, history lost", None),
    ("g-05", 26.0, "duplicated", "add_to_cart applied twice", None),
    ("g-06", 27.0, "failed", "turn 2 failed after 3 attempts", None),
    ("g-07", 44.0, "clean", "stopped by shape at turn 3", None),
    ("g-08", 28.5, "resumed", "turn 2 interrupted, resumed from checkpoint", 1875.5),
)
_INTENTS = ("search", "add_to_cart", "checkout")
_PODS = ("pod-a", "pod-b", "pod-c")


def build(path: Path) -> Path:
    """Write the golden run directory at ``path`` (which must not exist)."""
    run_dir = RunDirectory(path)
    path.mkdir(parents=True)
    run_dir.write_manifest(
        RunManifest(
            run_id="golden",
            name="golden",
            started_at=T0,
            scenario_path="scenarios/golden.yaml",
            scenario_sha256="0" * 64,
            scenario={
                "shape": {"kind": "flash_sale", "users": 8, "spawn_rate": 4.0},
                "slo": {"p99_ms": 2500, "error_rate": 0.2},
            },
            target={"url": "http://127.0.0.1:8080", "kind": "pods"},
            versions={"loadlab": "golden"},
            seed=42,
            ended_at=T0 + DURATION_S,
            end_reason="shape finished",
            extra={"quotas": {"llm_rpm": 60}},
        )
    )
    for name in TABLES:  # the recorder is never started: one flush, one part per table
        run_dir.table(name).mkdir()
    recorder = RunRecorder(run_dir)
    requests: list[RequestSample] = []
    for k, (sid, start, verdict, reason, resume) in enumerate(_SESSIONS):
        turns_done = 2 if reason.startswith("stopped") else 3
        for i in range(turns_done):
            for row in _turn(k, sid, start + 6.0 * i, i, verdict):
                if isinstance(row, RequestSample):
                    requests.append(row)
                recorder.emit(row)
        recorder.emit(
            SessionRecord(
                session_id=sid,
                persona="bargain_hunter" if k % 2 else "gift_buyer",
                seed=k,
                t_start=T0 + start,
                t_end=T0 + start + 6.0 * turns_done,
                turns_planned=3,
                turns_done=turns_done,
                interrupted_turns=1 if verdict in ("resumed", "restarted", "failed") else 0,
                verdict=verdict,
                verdict_reason=reason,
                resume_latency_ms=resume,
            )
        )
    for event in _events():
        recorder.emit(event)
    for sample in _pressure():
        recorder.emit(sample)
    recorder.close()
    _write_checkpoints(path / "checkpoints.parquet")
    _write_locust_final(path / "locust_final.json", requests)
    return path


def _turn(
    k: int, sid: str, start: float, i: int, verdict: str
) -> Iterator[TurnRecord | RequestSample]:
    """One turn: its requests (a retry when the fault hit it) and the turn row."""
    intent = _INTENTS[i]
    pod = _PODS[(k + i) % 3]
    cold = i == 0 and k < 3  # the first three sessions meet three fresh pods
    hit = i == 1 and verdict in ("resumed", "restarted", "failed")
    throttled = i == 2 and verdict == "duplicated"
    latency = 180.0 + 37.5 * k + 61.25 * i + (900.0 if cold else 0.0)
    attempts = 3 if (hit and verdict == "failed") else (2 if hit or throttled else 1)
    ok = not (hit and verdict == "failed")
    t = start
    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        if last and ok:
            error_kind, status, ms = None, 200, latency
        elif throttled:
            error_kind, status, ms = "throttled", 429, 12.0
        elif attempt == 1:
            error_kind, status, ms = "reset", 0, 420.0
        else:
            error_kind, status, ms = "http_status", 503, 35.0
        yield RequestSample(
            t_start=T0 + t,
            name=f"turn:{intent}",
            session_id=sid,
            turn_index=i + 1,
            attempt=attempt,
            latency_ms=ms,
            ttft_ms=round(ms * 0.3, 3) if error_kind is None else None,
            bytes=512 if error_kind is None else 0,
            status=status,
            error_kind=error_kind,
            error={
                None: None,
                "reset": "connection reset mid-stream",
                "http_status": "503 Service Unavailable",
                "throttled": "429 Too Many Requests",
            }[error_kind],
            cold_start=cold and attempt == 1,
            init_ms=850.0 if cold and attempt == 1 else None,
            instance_id=pod,
        )
        t += ms / 1000.0 + 0.5
    end = t - 0.5
    yield TurnRecord(
        t_start=T0 + start,
        t_end=T0 + end,
        session_id=sid,
        turn_index=i + 1,
        intent=intent,
        ok=ok,
        attempts=attempts,
        latency_ms=latency if ok else 35.0,
        ttft_ms=round(latency * 0.3, 3) if ok else None,
        interrupted=hit,
        cold_start=cold,
        error_kind=None if ok else "http_status",
        ddb_calls=2 + i,
        ddb_rcu=0.5 * (i + 1),
        ddb_wcu=1.0 if i else 0.0,
        llm_calls=attempts if i < 2 else 1,
        llm_retries=attempts - 1,
        llm_throttles=1 if throttled else 0,
        tokens_in=150 + 25 * i,
        tokens_out=40 + 10 * i,
        # a user's first turn follows no think time: nothing was due, nothing is late
        lateness_ms=None if i == 0 else 0.2 + 0.3 * i,
    )


def _events() -> Iterator[TimelineEvent]:
    yield TimelineEvent(t=T0, kind="phase", name="start")
    for t in range(0, 60, 5):
        users = min(t // 5 + 1, 8) if t < 50 else 2
        yield TimelineEvent(t=T0 + t, kind="users", name="users", attrs={"users": users})
    kill = {"fault_id": "f1", "activity": "chaosk8s.pod.actions.terminate_pods"}
    yield TimelineEvent(
        t=T0 + 30.0,
        kind="fault",
        name="terminate pods",
        target="label_selector=app=agent",
        attrs=kill | {"phase": "start", "status": None},
    )
    yield TimelineEvent(
        t=T0 + 31.5,
        kind="fault",
        name="terminate pods",
        target="pod-b",
        attrs=kill | {"phase": "end", "status": "succeeded"},
    )
    yield TimelineEvent(t=T0 + DURATION_S, kind="phase", name="stop")


def _pressure() -> Iterator[PressureSample]:
    labels = json.dumps({"instance": "llm", "status": "200"}, sort_keys=True)
    refused = json.dumps({"instance": "llm", "status": "429"}, sort_keys=True)
    for t in range(0, 60, 10):
        yield PressureSample(
            t=T0 + t,
            source="prometheus",
            metric="loadlab_llm_requests_total",
            value=float(4 * t),
            dimensions_json=labels,
        )
        yield PressureSample(
            t=T0 + t,
            source="prometheus",
            metric="loadlab_llm_requests_total",
            value=float(max(t - 20, 0)),
            dimensions_json=refused,
        )
    dims = json.dumps({"TableName": "loadlab-checkpoints", "period_s": 10, "stat": "Sum"})
    for at, value in ((20.0, 0.0), (30.0, 3.0), (40.0, 1.0)):
        yield PressureSample(
            t=T0 + at,
            source="cloudwatch",
            metric="AWS/DynamoDB/ThrottledRequests",
            value=value,
            dimensions_json=dims,
        )


def _write_checkpoints(path: Path) -> None:
    """The out-of-band audit: it agrees on every session but g-03 (its cart was lost)."""
    rows: list[dict[str, Any]] = [
        {
            "session_id": sid,
            "found": True,
            "oob_verdict": verdict,
            "reason": reason,
        }
        for sid, _, verdict, reason, _ in _SESSIONS
        if sid != "g-07"  # not audited
    ]
    rows[2] = rows[2] | {"oob_verdict": "restarted", "reason": "cart lost"}
    rows.append({"session_id": "g-99", "found": False, "oob_verdict": None, "reason": ""})
    schema = pa.schema(
        [
            ("session_id", pa.string()),
            ("found", pa.bool_()),
            ("oob_verdict", pa.string()),
            ("reason", pa.string()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _write_locust_final(path: Path, requests: list[RequestSample]) -> None:
    """Locust's view of the same requests: it agrees (medians bucketed as Locust does)."""
    frame = pd.DataFrame(
        {"name": [r.name for r in requests], "ms": [r.latency_ms for r in requests]}
    )
    entries = [
        {
            "name": str(name),
            "method": "POST",
            "num_requests": len(group),
            "median_response_time": locust_median(group["ms"]),
        }
        for name, group in frame.groupby("name", sort=True)
    ]
    path.write_text(json.dumps({"entries": entries}, indent=2, sort_keys=True) + "\n")


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def summary_json(parent: Path) -> dict[str, Any]:
    """``summarize()`` of ``parent/run`` as summary.json holds it (after a JSON round trip).

    The run is loaded by its relative path from ``parent`` so that ``run.path``
    reads ``run`` wherever the checkout is.
    """
    with _cwd(parent):
        data = summarize(load_run(Path(RUN))).to_json()
    parsed: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    return parsed


def dump(summary: dict[str, Any]) -> str:
    """summary.json's text."""
    return json.dumps(summary, indent=2, sort_keys=True) + "\n"


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """One line per figure that differs, named by its path (``totals.turns``, ``faults[0].t``)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key in sorted(set(expected) | set(actual)):
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{where}: missing (expected {expected[key]!r})")
            elif key not in expected:
                out.append(f"{where}: unexpected {actual[key]!r}")
            else:
                out += differences(expected[key], actual[key], where)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        out = (
            []
            if len(expected) == len(actual)
            else [f"{path}: {len(actual)} items, expected {len(expected)}"]
        )
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            out += differences(e, a, f"{path}[{i}]")
        return out
    if type(expected) is not type(actual) or expected != actual:
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []


def main(argv: list[str] | None = None) -> int:
    """Rebuild the golden run; with ``--update`` replace the committed files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--update", action="store_true", help="rewrite tests/golden/run and summary.json"
    )
    args = parser.parse_args(argv)
    if args.update:
        shutil.rmtree(HERE / RUN, ignore_errors=True)
        build(HERE / RUN)
        EXPECTED.write_text(dump(summary_json(HERE)))
        print(f"wrote {HERE / RUN} and {EXPECTED}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp) / RUN)
        diff = differences(json.loads(EXPECTED.read_text()), summary_json(Path(tmp)))
    print("\n".join(diff) or "the golden summary is up to date")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
