"""The "Downstream pressure" section of report.html and its headline rows.

The run: 90 s on 1 s buckets, seconds since T0. Quota ``llm_rpm`` 120 (manifest).
Fault ``f1`` from 20 to 40 (its end event). Turns: 4 outside the fault (1 LLM
call each) and 4 inside it (4 LLM calls, 3 retries each). Prometheus, every
second 0..89: ``loadlab_llm_requests_total`` at 1/s; ``loadlab_llm_rate_limited_total``
(reason ``tpm``) moves from 0 to 2 between 24 and 25; the DynamoDB gate's WCU
counter at 2/s.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.report.render import headline, render_run
from loadlab.rows import PressureSample, TimelineEvent, TurnRecord

T0 = 1_700_000_000.0


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<h2 id="{anchor}">.*?(?=<h2|</body>)', html, re.S)
    assert match, f"no section {anchor}"
    return match.group(0)


def _build(path: Path, *, with_samples: bool) -> Path:
    run_dir = RunDirectory(path)
    path.mkdir(parents=True)
    run_dir.write_manifest(
        RunManifest(
            run_id="p",
            name="p",
            started_at=T0,
            scenario_path=None,
            scenario_sha256=None,
            scenario={},
            target={"url": "http://127.0.0.1:9"},
            versions={},
            seed=1,
            ended_at=T0 + 90,
            extra={"quotas": {"llm_rpm": 120}},
        )
    )
    with RunRecorder(run_dir) as rec:
        for k in range(4):
            for start, calls in ((5 + k, 1), (25 + 2 * k, 4)):
                rec.emit(
                    TurnRecord(
                        t_start=T0 + start,
                        t_end=T0 + start + 1,
                        session_id=f"s{start}",
                        turn_index=1,
                        intent="search",
                        ok=True,
                        attempts=1,
                        latency_ms=1000.0,
                        ttft_ms=None,
                        interrupted=False,
                        ddb_calls=2,
                        ddb_wcu=1.0,
                        llm_calls=calls,
                        llm_retries=calls - 1,
                        llm_throttles=calls - 1,
                    )
                )
        for t in range(0, 90, 10):
            rec.emit(TimelineEvent(t=T0 + t, kind="users", name="users", attrs={"users": t}))
        for t, phase in ((20.0, "start"), (40.0, "end")):
            rec.emit(
                TimelineEvent(
                    t=T0 + t,
                    kind="fault",
                    name="llm 429 storm",
                    attrs={"fault_id": "f1", "phase": phase},
                )
            )
        if with_samples:
            for t in range(90):
                for metric, value, labels in (
                    ("loadlab_llm_requests_total", t, {"status": "200"}),
                    ("loadlab_llm_rate_limited_total", 2 if t >= 25 else 0, {"reason": "tpm"}),
                    ("loadlab_ddb_consumed_write_capacity_units_total", 2 * t, {"table": "c"}),
                ):
                    rec.emit(
                        PressureSample(
                            t=T0 + t,
                            source="prometheus",
                            metric=metric,
                            value=float(value),
                            dimensions_json=json.dumps(labels | {"instance": "x"}, sort_keys=True),
                        )
                    )
    return path


def test_pressure_section_shows_amplification_quotas_and_first_hit(tmp_path: Path) -> None:
    out = render_run(_build(tmp_path / "p", with_samples=True))
    html = out.html_path.read_text()
    section = _section(html, "pressure")
    assert "Downstream pressure" in section
    assert "no downstream samples" not in section
    # Two figures (LLM, DynamoDB) besides the four timeline plots.
    assert html.count("data:image/png;base64,") == 6
    assert 'alt="pressure_llm"' in section and 'alt="pressure_ddb"' in section

    rows = re.findall(r"<tr>(.*?)</tr>", section, re.S)
    retry = {re.sub(r"<.*?>", "|", r).split("|")[1]: r for r in rows}
    cells = lambda row: re.findall(r"<t[dh]>(.*?)</t[dh]>", row)  # noqa: E731
    # columns: label, count, agent requests, DDB ops, RCU, WCU, LLM calls, retries, 429s ...
    assert cells(retry["outside fault windows"])[1:8] == [
        "4", "1.00", "2.00", "0.00", "1.00", "1.00", "0.00",
    ]  # fmt: skip
    assert cells(retry["in fault windows"])[6:8] == ["4.00", "3.00"]
    assert cells(retry["in / outside"])[6] == "4.00×"

    peak_rpm = next(r for r in rows if "LLM requests per minute" in r)
    assert "60 requests/min" in peak_rpm and "llm_rpm = 120" in peak_rpm
    assert "50.00%" in peak_rpm  # 60 of 120: half the quota used

    first = next(r for r in rows if "first LLM 429" in r)
    assert cells(first)[1:4] == ["25.0", "24.0", "prometheus"]
    assert any("first for tpm" in r and "25.0" in r for r in rows)
    assert any("seen by turns" in r and "<td>26.0</td>" in r for r in rows)

    text = headline(out.summary)
    assert re.search(r"LLM calls / turn outside → in faults +1\.00 → 4\.00\n", text)
    assert re.search(r"peak llm_rpm vs quota +60 / 120 \(peak utilisation 50\.00%\)", text)
    assert re.search(r"first LLM 429 +@25\.0s \(prometheus: ", text)


def test_a_run_without_downstream_samples_says_so(tmp_path: Path) -> None:
    out = render_run(_build(tmp_path / "bare", with_samples=False))
    html = out.html_path.read_text()
    section = _section(html, "pressure")
    assert "no downstream samples" in section
    assert html.count("data:image/png;base64,") == 4  # the timeline plots only
    # The agent's own counts still give the amplification and the first 429.
    assert "in fault windows" in section
    assert re.search(r"<td>first LLM 429</td><td>26\.0</td>", section)
    assert re.search(r"downstream samples +none", headline(out.summary))
