"""Write summary.json, report.html, junit.xml and summary.md for a run directory."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from loadlab.analysis.pressure import pressure_series
from loadlab.analysis.run_summary import RunSummary, json_safe
from loadlab.analysis.rundata import load_run, report_columns
from loadlab.analysis.summary import summarize
from loadlab.analysis.timeseries import timeseries
from loadlab.redact import Redactor
from loadlab.report.cost import cost_section
from loadlab.report.junit import write_junit
from loadlab.report.markdown import gate_value, summary_markdown
from loadlab.report.plots import cold_start_plots, pressure_plots, timeline_plots
from loadlab.report.slo import GateResult, evaluate
from loadlab.report.verdict import Verdict, judge_run
from loadlab.scenario.files import slo_from_manifest


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """Where the derived files went, and the figures and the verdict behind them.

    ``summary`` is the run's summary; summary.json is its ``to_json()`` plus an
    ``slo`` list of the ``gates`` and the ``verdict``. ``verdict`` weighs every
    piece of evidence (see :mod:`loadlab.report.verdict`); a command exits 0
    only when ``verdict.passed``.
    """

    summary_path: Path
    html_path: Path
    junit_path: Path
    markdown_path: Path
    summary: RunSummary
    gates: tuple[GateResult, ...]
    verdict: Verdict

    @property
    def slo_passed(self) -> bool:
        """True when no SLO gate was missed (defaults included)."""
        return all(g.passed for g in self.gates)


def render_run(run_dir: Path | str) -> RenderedReport:
    """Derive summary.json, report.html, junit.xml and summary.md from the files of ``run_dir``.

    Raises :class:`~loadlab.errors.ScenarioError` when the manifest's gates do not
    validate.
    """
    run = load_run(run_dir, columns=report_columns(), copy=False)  # it only reads them
    # Both go into the summary and the plots: computed once (seconds on a long run).
    series, pressure = timeseries(run), pressure_series(run)
    summary = summarize(run, series=series, pressure=pressure)
    slo = slo_from_manifest(
        (run.manifest.get("scenario") or {}).get("slo"),
        source=str(Path(run.path) / "manifest.json") + " (scenario)",
    )
    gates = evaluate(summary, run, slo)
    verdict = judge_run(run, summary, gates)
    # The plots and the template are written against summary.json's shape.
    data = summary.to_json()
    data["slo"] = json_safe([g.to_json() for g in gates])
    data["verdict"] = verdict.to_json()
    path = Path(run.path)
    redact = Redactor.from_env()
    summary_path = path / "summary.json"
    _write_text(summary_path, json.dumps(redact.tree(data), indent=2, sort_keys=True) + "\n")
    plots = (
        timeline_plots(series, data["faults"])
        | cold_start_plots(data["cold_starts"], data["faults"])
        | pressure_plots(series, pressure, data["faults"], data["pressure"])
    )
    html_path = path / "report.html"
    cost_html = cost_section(run).html()
    _write_text(html_path, redact(_html(summary, data, gates, verdict, plots, cost_html=cost_html)))
    junit_path = path / "junit.xml"
    experiment = summary.experiment.journal if summary.experiment else None
    write_junit(junit_path, str(summary.run.name or "run"), verdict, gates, experiment)
    markdown_path = path / "summary.md"
    files = {
        "report": html_path,
        "summary": summary_path,
        "junit": junit_path,
        "run directory": path,
    }
    markdown = summary_markdown(summary, verdict, gates, headline(summary), files)
    _write_text(markdown_path, redact(markdown))
    return RenderedReport(
        summary_path=summary_path,
        html_path=html_path,
        junit_path=junit_path,
        markdown_path=markdown_path,
        summary=summary,
        gates=tuple(gates),
        verdict=verdict,
    )


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _html(
    summary: RunSummary,
    data: dict[str, Any],
    gates: list[GateResult],
    verdict: Verdict,
    plots: dict[str, str],
    *,
    cost_html: str = "",
) -> str:
    """report.html; the template walks ``data`` (summary.json) as a mapping.

    ``cost_html`` is the cost section, already escaped (:mod:`loadlab.report.cost`).
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loadlab.report", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
    )
    started = summary.run.started_at
    target = summary.run.target or {}
    return env.get_template("report.html").render(
        s=data,
        gates=gates,
        verdict=verdict,
        gate_value=gate_value,
        plots=plots,
        cost_html=markupsafe.Markup(cost_html),  # already escaped by loadlab.report.cost
        started=(
            datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if isinstance(started, int | float)
            else "?"
        ),
        target=target.get("url", "?") if isinstance(target, dict) else target,
        ms=_ms,
        lateness_warning=summary.harness_lateness_ms.warning,
        pct=_pct,
        num=_num,
        verdicts=_verdicts,
        js=_js,
    )


def _ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:.0f} ms"


def _pct(value: Any) -> str:
    return f"{value * 100:.2f}%" if isinstance(value, int | float) else "—"


def _num(value: Any) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def _verdicts(counts: Any) -> str:
    """``resumed 2, failed 1``: the non-zero verdict counts, or a dash."""
    if not isinstance(counts, dict):
        return "—"
    return ", ".join(f"{v} {n}" for v, n in counts.items() if n) or "—"


def _js(value: Any) -> str:
    """A probe's value or tolerance as compact JSON text (escaped by the template)."""
    return json.dumps(value, default=str, separators=(",", ":"))


def headline(summary: RunSummary) -> str:
    """A short plain-text table of the run for the terminal."""
    t = summary.totals
    lat = summary.turn_latency_ms.all
    ttft = summary.ttft_ms.all
    rows = [
        ("turns (ok / all)", f"{t.turns_ok} / {t.turns}"),
        ("turns/s mean / peak", f"{t.turns_per_s_mean:.1f} / {t.turns_per_s_peak:.1f}"),
        ("turn latency P50 / P99", f"{_ms(lat.p50)} / {_ms(lat.p99)}"),
        ("TTFT P50 / P99", f"{_ms(ttft.p50)} / {_ms(ttft.p99)}"),
        *_lateness_rows(summary),
        ("failed turns", _pct(t.turn_error_rate)),
        ("peak users", _num(t.peak_users)),
        ("cold starts", str(summary.cold_starts.count)),
        ("sessions", _kv(summary.sessions.verdicts)),
    ]
    rows += _cold_start_rows(summary)
    rows += _continuity_rows(summary)
    rows += _pressure_rows(summary)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {val}" for k, val in rows)


def _lateness_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """The harness lateness row (and its warning) when the run recorded lateness."""
    late = summary.harness_lateness_ms
    if not late.count:
        return []
    rows = [("harness lateness P99 / max", f"{_lateness_ms(late.p99)} / {_lateness_ms(late.max)}")]
    if late.warning is not None:
        rows.append(("WARNING", late.warning))
    return rows


def _lateness_ms(value: float | None) -> str:
    # Lateness is usually a fraction of a millisecond: _ms would round it to 0.
    return "—" if value is None else f"{value:.1f} ms"


def _cold_start_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """Headline rows for environments, warm-up and the cold share of P99, when recorded."""
    c = summary.cold_starts
    if not c.analysis.recorded:
        return []
    env, share, warm = c.analysis.environments, c.analysis.p99_share, c.analysis.warm_up
    rows = [
        (
            "environments / peak concurrency",
            f"{env.created} / {env.peak_concurrency} "
            f"({_ratio(env.per_peak_concurrency)} per request in flight)",
        )
    ]
    if c.count:
        rows.append(
            (
                "last cold start",
                f"@{warm.last_cold_start_s:.1f}s "
                f"({warm.cold_starts_after} after {_num(warm.after_s)} s)",
            )
        )
        rows.append(
            (
                "turn P99 → without cold turns",
                f"{_ms(share.p99_ms_all)} → {_ms(share.p99_ms_without_cold)} "
                f"({share.tail_cold_turns} of {share.tail_turns} turns at P99+ were cold)",
            )
        )
    return rows


def _continuity_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """Headline rows for faults, the continuity split and the experiment, when present."""
    rows: list[tuple[str, str]] = []
    for f in summary.fault_impact[:5]:
        recovered = (
            f"recovered after {_num(f.time_to_recover_s)} s"
            if f.recovery == "recovered"
            else str(f.recovery)
        )
        rows.append(
            (
                f"fault @{f.t:.0f}s {str(f.name)[:30]}",
                f"{f.sessions_in_flight} sessions / {f.turns_in_flight} turns in flight "
                f"({f.turns_in_flight_failed} failed), P99 {_ms(f.before.p99_ms)} → "
                f"{_ms(f.after.p99_ms)}, {recovered}",
            )
        )
    if len(summary.fault_impact) > 5:
        rows.append(("faults", f"{len(summary.fault_impact)} in all (see report.html)"))
    c = summary.continuity
    if c.faults:
        rows.append(("sessions touched by faults", _kv(c.touched.verdicts)))
        rows.append(("sessions not touched", _kv(c.untouched.verdicts)))
    if c.resume_latency_ms.count:
        r = c.resume_latency_ms
        rows.append(("resume latency P50 / P99", f"{_ms(r.p50)} / {_ms(r.p99)}"))
    oob = c.out_of_band
    if oob:
        rows.append(
            (
                "out-of-band agreement",
                f"{oob.agree} / {oob.compared} ({oob.disagree} differ)",
            )
        )
    if summary.experiment:
        journal = summary.experiment.journal
        text = journal.outcome
        deviated = journal.deviated_probes
        if deviated and deviated[0].name:
            text += f" (probe '{deviated[0].name}' out of tolerance)"
        elif journal.hypothesis_met:
            text += " (steady state met)"
        rows.append(("experiment", text))
    return rows


def _pressure_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """Headline rows for downstream pressure: amplification, peaks vs quotas, first hits."""
    p = summary.pressure
    rows: list[tuple[str, str]] = []
    amp = p["amplification"]
    if amp["turns"]:
        per = amp["per_turn"]
        rows.append(
            (
                "per turn: LLM calls / DDB ops",
                f"{_ratio(per['llm_calls'])} / {_ratio(per['ddb_calls'])} "
                f"(tokens {_num(per['tokens_in'])} in, {_num(per['tokens_out'])} out)",
            )
        )
    retry = p["retry_amplification"]
    if retry["in_fault"]["turns"]:
        rows.append(
            (
                "LLM calls / turn outside → in faults",
                f"{_ratio(retry['outside']['per_turn']['llm_calls'])} → "
                f"{_ratio(retry['in_fault']['per_turn']['llm_calls'])}",
            )
        )
    for quota, h in p["headroom"].items():
        rows.append(
            (
                f"peak {quota} vs quota",
                f"{_num(h['peak'])} / {_num(h['limit'])} "
                f"(peak utilisation {_pct(h['peak_utilisation'])})",
            )
        )
    for family, hit in p["first_hit"].items():
        rows.append(
            (
                f"first {_HIT_NAMES.get(family, family)}",
                f"@{hit['t']:.1f}s ({hit['source']}: {hit['evidence']})",
            )
        )
    if not p["sources"]:
        rows.append(("downstream samples", "none (pressure.parquet is empty)"))
    return rows


_HIT_NAMES = {
    "llm": "LLM 429",
    "ddb": "DynamoDB throttle",
    "lambda": "Lambda throttle",
    "agent": "agent 429",
}


def _ratio(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "—"


def _kv(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={n}" for k, n in counts.items())
