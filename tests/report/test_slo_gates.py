"""Every gate of the catalog is judged, reported and documented, and catches its breakage."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from gate_runs import golden, set_slo
from junitparser import JUnitXml

from loadlab.analysis.rundata import load_run
from loadlab.analysis.summary import summarize
from loadlab.report.render import render_run
from loadlab.report.slo import FIGURES, catalog_problems, evaluate
from loadlab.scenario import GATE_CATALOG, GATES, parse_slo

README = Path(__file__).resolve().parents[2] / "README.md"

# Each gate: the run that shows it, its figure there, and why.
BREAKAGE: dict[str, tuple[str, float, str]] = {
    "p50_ms": ("known", 50_000, "latencies 1..100 s"),
    "p95_ms": ("known", 95_000, "latencies 1..100 s"),
    "p99_ms": ("known", 99_000, "latencies 1..100 s"),
    "p999_ms": ("known", 100_000, "latencies 1..100 s"),
    "ttft_p50_ms": ("known", 50, "TTFT 1..100 ms"),
    "ttft_p99_ms": ("known", 99, "TTFT 1..100 ms"),
    "error_rate": ("known", 1 / 101, "1 failed turn of 101"),
    "max_restarted": ("known", 1, "one session restarted"),
    "max_duplicated": ("golden", 1, "g-04 applied a side effect twice"),
    "max_failed_sessions": ("known", 1, "one session failed"),
    "max_audit_disagreements": ("golden", 1, "g-03: resumed in band, restarted in DynamoDB"),
    "resume_p99_ms": ("known", 7000, "sessions resumed after 6 s and 7 s"),
    "max_cold_start_share": ("known", 0.03, "3 cold turns of 100"),
    "llm_429_rate": ("golden", 1 / 28, "1 LLM 429 in 28 calls"),
    "max_ddb_throttles": ("golden", 4, "CloudWatch ThrottledRequests sums 0, 3, 1"),
    "max_amplification": ("golden", 28 / 22, "28 LLM calls for 22 distinct ones"),
}


def _run(kind: str, known_run: Callable[..., Path], tmp_path: Path, slo: object) -> Path:
    if kind == "known":
        path: Path = known_run(slo=slo)
        return path
    return golden(tmp_path, slo)


def test_the_evaluator_and_the_catalog_list_the_same_gates() -> None:
    assert catalog_problems() == []
    assert set(BREAKAGE) == set(GATES)  # this file shows every gate catching its breakage


def test_a_gate_missing_on_either_side_is_named() -> None:
    without = {k: v for k, v in FIGURES.items() if k != "resume_p99_ms"}
    assert catalog_problems(without) == ["gate 'resume_p99_ms' is in the catalog but has no figure"]
    extra = dict(FIGURES) | {"p75_ms": FIGURES["p50_ms"]}
    assert catalog_problems(extra) == ["figure 'p75_ms' is no gate of the catalog"]
    assert catalog_problems(FIGURES, windowed=()) != []


def test_every_gate_is_documented_in_the_readme_table() -> None:
    text = README.read_text()
    rows = {m.group(1) for m in re.finditer(r"^\| `([a-z0-9_]+)` \|", text, re.MULTILINE)}
    missing = [spec.key for spec in GATE_CATALOG if spec.key not in rows]
    assert missing == []
    for spec in GATE_CATALOG:  # the row says whether it takes a window, aborts, is per intent
        (row,) = [line for line in text.splitlines() if line.startswith(f"| `{spec.key}` |")]
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[-3:] == [
            "yes" if spec.windowed else "no",
            "yes" if spec.live else "no",
            "yes" if spec.per_intent else "no",
        ], spec.key


def test_every_gate_is_accepted_judged_and_reported(
    known_run: Callable[..., Path], tmp_path: Path
) -> None:
    slo = {spec.key: BREAKAGE[spec.key][1] * 2 or 1 for spec in GATE_CATALOG}
    slo = {k: min(v, 1.0) if GATES[k].kind == "fraction" else v for k, v in slo.items()}
    slo["max_amplification"] = 3
    slo["max_duplicated"] = 0  # known run: none
    out = render_run(known_run(slo=slo))
    summary = json.loads(out.summary_path.read_text())
    reported = {entry["gate"] for entry in summary["slo"]}
    cases = {case.name for suite in JUnitXml.fromfile(str(out.junit_path)) for case in suite}
    for spec in GATE_CATALOG:
        assert spec.key in reported and spec.key in cases, spec.key
        assert spec.key in {g.key for g in out.gates}


@pytest.mark.parametrize("key", list(BREAKAGE))
def test_each_gate_catches_its_breakage(
    key: str, known_run: Callable[..., Path], tmp_path: Path
) -> None:
    kind, actual, _why = BREAKAGE[key]
    path = _run(kind, known_run, tmp_path, {key: actual})
    run = load_run(path)
    summary = summarize(run)
    spec = GATES[key]
    # summary.json rounds to 6 decimals: the limit at the figure is the rounded figure
    at = actual if spec.kind in ("ms", "count") else round(actual, 6)
    at_limit = evaluate(summary, run, parse_slo({key: at}))
    (gate,) = [g for g in at_limit if g.key == key]
    assert gate.actual == pytest.approx(actual, abs=1e-3)
    assert gate.status == "met" and not gate.default
    below = actual - (1 if spec.kind in ("ms", "count") else 0.001)
    missed = evaluate(
        summary, run, parse_slo({key: max(below, 0.0) if spec.kind != "ratio" else 1.0})
    )
    (gate,) = [g for g in missed if g.key == key]
    assert gate.status == "missed" and not gate.passed
    assert gate.message.endswith("MISSED") and "limit" in gate.message


def test_a_windowed_gate_judges_the_worst_window(known_run: Callable[..., Path]) -> None:
    # whole run: P99 99 s; the 10 s window ending at 200 s holds turns of 95..100 s
    run = load_run(known_run())
    summary = summarize(run)
    slo = parse_slo(
        {
            "p99_ms": {"max": 99_500, "window_s": 10},
            "error_rate": {"max": 0.1, "window_s": 10},
            "max_restarted": {"max": 1, "window_s": 10},
            "intents": {"search": {"p99_ms": 99_000, "error_rate": 0.01}},
        }
    )
    by_name = {g.name: g for g in evaluate(summary, run, slo)}
    p99 = by_name["p99_ms[10s]"]
    assert (p99.actual, p99.status) == (100_000, "missed")
    assert p99.label == "turn latency P99 (worst 10 s)"
    errors = by_name["error_rate[10s]"]  # the failed turn among 5 ok ones
    assert errors.actual == pytest.approx(1 / 6, abs=1e-6) and errors.status == "missed"
    assert by_name["max_restarted[10s]"].status == "met"
    assert by_name["search.p99_ms"].actual == 99_000  # odd turns: 1, 3, .. 99 s
    search_errors = by_name["search.error_rate"]
    assert search_errors.actual == pytest.approx(1 / 51, abs=1e-6)
    assert search_errors.status == "missed"


def test_default_gates_are_marked_and_named_in_the_message(known_run: Callable[..., Path]) -> None:
    out = render_run(known_run())
    restarted = next(g for g in out.gates if g.key == "max_restarted")
    assert (
        restarted.default and restarted.message == "sessions restarted: 1 (limit 0, default) MISSED"
    )
    audit = next(g for g in out.gates if g.key == "max_audit_disagreements")
    assert (audit.status, audit.passed) == ("not checked", True)  # no audit: no failure
    entry = next(
        e for e in json.loads(out.summary_path.read_text())["slo"] if e["gate"] == "max_restarted"
    )
    assert entry["default"] is True and entry["status"] == "missed"


def test_an_old_manifest_is_judged_with_none_as_not_set(known_run: Callable[..., Path]) -> None:
    path = known_run()
    set_slo(path, {"p99_ms": 120_000, "ttft_p99_ms": None, "error_rate": 0.05})
    out = render_run(path)
    assert [g.name for g in out.gates if not g.default] == ["p99_ms", "error_rate"]
