from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from loadlab.analysis.rundata import load_run
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest, new_run_dir
from loadlab.rows import RequestSample, SessionRecord, TimelineEvent, TurnRecord


def _manifest(name: str = "t") -> RunManifest:
    return RunManifest(
        run_id="r1",
        name=name,
        started_at=time.time(),
        scenario_path=None,
        scenario_sha256=None,
        scenario={},
        target={"url": "http://127.0.0.1:1"},
        versions={},
        seed=1,
    )


def _request(i: int) -> RequestSample:
    return RequestSample(
        t_start=1000.0 + i,
        name="turn:search",
        session_id=f"s{i}",
        turn_index=1,
        attempt=1,
        latency_ms=100.0 + i,
        ttft_ms=10.0,
        bytes=42,
        status=200,
    )


def test_rows_reach_disk_by_table_and_read_back(tmp_path: Path) -> None:
    run_dir = RunDirectory(new_run_dir(tmp_path, "unit"))
    run_dir.write_manifest(_manifest())
    with RunRecorder(run_dir) as rec:
        for i in range(5):
            rec.emit(_request(i))
        rec.emit(
            TurnRecord(
                t_start=1.0,
                t_end=2.0,
                session_id="s",
                turn_index=1,
                intent="search",
                ok=True,
                attempts=1,
                latency_ms=1000.0,
                ttft_ms=5.0,
                interrupted=False,
            )
        )
        rec.emit(
            SessionRecord(
                session_id="s",
                persona="p",
                seed=1,
                t_start=1.0,
                t_end=2.0,
                turns_planned=1,
                turns_done=1,
                interrupted_turns=0,
                verdict="clean",
                verdict_reason="",
            )
        )
        rec.emit(TimelineEvent(t=1.5, kind="fault", name="kill", target="pod-a", attrs={"n": 1}))
    run = load_run(run_dir.path)
    assert list(run.requests["latency_ms"]) == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert len(run.turns) == 1 and bool(run.turns["ok"].iloc[0])
    assert list(run.sessions["verdict"]) == ["clean"]
    assert run.events.iloc[0]["attrs"] == {"n": 1}
    assert rec.counts["requests"] == 5
    assert run.problems == ()


def test_each_flush_writes_an_atomic_part(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path / "run")
    run_dir.path.mkdir()
    rec = RunRecorder(run_dir)
    rec.start()
    rec.emit(_request(1))
    rec.flush()
    rec.emit(_request(2))
    rec.flush()
    parts = sorted(run_dir.table("requests").glob("*"))
    assert [p.name for p in parts] == ["part-000000.parquet", "part-000001.parquet"]
    assert pq.read_table(parts[1]).column("latency_ms").to_pylist() == [102.0]
    rec.close()  # and on closing, the parts are compacted into one, rows in order
    (part,) = run_dir.table("requests").glob("*")
    assert part.name == "part-000000-000001.parquet"
    assert pq.read_table(part).column("latency_ms").to_pylist() == [101.0, 102.0]


def test_rows_emitted_from_threads_while_it_flushes_are_all_written_once(tmp_path: Path) -> None:
    # emit takes no lock: four threads append while the test flushes as fast as it can.
    import threading

    run_dir = RunDirectory(tmp_path / "run")
    run_dir.path.mkdir()
    rec = RunRecorder(run_dir, compact=False)
    rec.start()
    per_thread = 3_000

    def emit_many(offset: int) -> None:
        for i in range(per_thread):
            rec.emit(_request(offset + i))
            if i % 100 == 0:
                time.sleep(0.001)  # let the flushes in between

    threads = [threading.Thread(target=emit_many, args=(k * per_thread,)) for k in range(4)]
    for thread in threads:
        thread.start()
    flushes = 0
    while any(t.is_alive() for t in threads) and flushes < 10_000:
        rec.flush()
        flushes += 1
    for thread in threads:
        thread.join()
    rec.close()
    latencies = pq.read_table(run_dir.table("requests")).column("latency_ms").to_pylist()
    assert sorted(latencies) == [100.0 + i for i in range(4 * per_thread)]
    # the flushes did interleave with the emits
    assert len(list(run_dir.table("requests").glob("part-*.parquet"))) > 2


def test_without_compaction_the_parts_stay(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path / "run")
    run_dir.path.mkdir()
    with RunRecorder(run_dir, compact=False) as rec:
        rec.emit(_request(1))
        rec.flush()
        rec.emit(_request(2))
    assert len(list(run_dir.table("requests").glob("part-*.parquet"))) == 2


def test_a_second_recorder_continues_the_part_sequence(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path / "run")
    run_dir.path.mkdir()
    for i in range(3):
        with RunRecorder(run_dir) as rec:
            rec.emit(_request(i))
    # each closing compacts what is there: the third part follows the span 0-1
    (part,) = run_dir.table("requests").glob("part-*.parquet")
    assert part.name == "part-000000-000002.parquet"
    assert pq.read_table(part).column("latency_ms").to_pylist() == [100.0, 101.0, 102.0]


def test_unreadable_part_and_torn_event_line_are_reported_not_fatal(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path / "run")
    run_dir.path.mkdir()
    run_dir.write_manifest(_manifest())
    with RunRecorder(run_dir) as rec:
        rec.emit(_request(1))
        rec.emit(TimelineEvent(t=1.0, kind="phase", name="start"))
    (run_dir.table("requests") / "part-000009.parquet").write_bytes(b"PAR1 not really")
    with run_dir.events.open("a") as fh:
        fh.write('{"t": 2.0, "kind": "pha')
    run = load_run(run_dir.path)
    assert len(run.requests) == 1
    assert len(run.events) == 1
    assert any("part-000009" in p for p in run.problems)
    assert any("malformed line 2" in p for p in run.problems)


def test_rejects_a_flush_interval_that_breaks_the_one_second_promise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flush_interval_s"):
        RunRecorder(RunDirectory(tmp_path), flush_interval_s=5)


def test_sigkilled_writer_keeps_everything_but_the_last_second(tmp_path: Path) -> None:
    """A harness killed with SIGKILL loses at most its last flush interval of rows."""
    run_path = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from loadlab.measure.recorder import RunRecorder
        from loadlab.measure.rundir import RunDirectory
        from loadlab.rows import TimelineEvent
        run_dir = RunDirectory(Path({str(run_path)!r}))
        run_dir.path.mkdir()
        rec = RunRecorder(run_dir, flush_interval_s=0.2).start()
        print("started", flush=True)
        i = 0
        deadline = time.time() + 30
        while time.time() < deadline:
            i += 1
            rec.emit(TimelineEvent(t=time.time(), kind="note", name=str(i)))
            if i % 50 == 0:
                print(i, flush=True)
            time.sleep(0.002)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    emitted = 0
    for line in proc.stdout:
        emitted = int(line)
        if emitted >= 300:
            break
    killed_at = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    lines = (run_path / "events.jsonl").read_text().splitlines()
    names = [json.loads(line)["name"] for line in lines if line.endswith("}")]
    assert len(names) >= 100, "rows flushed before the kill must survive it"
    assert names == [str(i) for i in range(1, len(names) + 1)], "no gap, no reordering"
    last_t = json.loads(lines[-1])["t"]
    assert killed_at - last_t < 1.0


def test_a_value_that_is_no_row_is_refused_by_name_and_loses_nothing(tmp_path: Path) -> None:
    run = RunDirectory(new_run_dir(tmp_path, "unit"))
    run.write_manifest(_manifest())
    with RunRecorder(run, parts="thread") as recorder:
        recorder.emit(TimelineEvent(t=1.0, kind="note", name="before"))
        recorder.emit(_request(1))
        with pytest.raises(TypeError, match="not a timeline row: dict"):
            recorder.emit({"t": 2.0})  # type: ignore[arg-type]
    lines = run.events.read_text().splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["before"]
    assert len(load_run(run.path).requests) == 1
