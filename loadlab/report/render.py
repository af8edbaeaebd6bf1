"""Write summary.json, report.html and junit.xml for a run directory."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from loadlab.analysis.rundata import load_run
from loadlab.analysis.summary import summarize
from loadlab.analysis.timeseries import timeseries
from loadlab.report.plots import timeline_plots
from loadlab.report.slo import GateResult, evaluate, write_junit


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """Where the derived files went, and the figures behind them."""

    summary_path: Path
    html_path: Path
    junit_path: Path
    summary: dict[str, Any]
    gates: tuple[GateResult, ...]

    @property
    def slo_passed(self) -> bool:
        """True when every SLO gate was met (or there were none)."""
        return all(g.passed for g in self.gates)


def render_run(run_dir: Path | str) -> RenderedReport:
    """Derive summary.json, report.html and junit.xml from the files of ``run_dir``."""
    run = load_run(run_dir)
    summary = summarize(run)
    slo = (run.manifest.get("scenario") or {}).get("slo")
    gates = evaluate(summary, slo if isinstance(slo, dict) else None)
    summary["slo"] = [
        {"gate": g.name, "limit": g.limit, "actual": g.actual, "passed": g.passed} for g in gates
    ]
    path = Path(run.path)
    summary_path = path / "summary.json"
    _write_text(summary_path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    plots = timeline_plots(timeseries(run), summary["faults"])
    html_path = path / "report.html"
    _write_text(html_path, _html(summary, gates, plots))
    junit_path = path / "junit.xml"
    write_junit(junit_path, str(summary["run"].get("name") or "run"), gates)
    return RenderedReport(summary_path, html_path, junit_path, summary, tuple(gates))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _html(summary: dict[str, Any], gates: list[GateResult], plots: dict[str, str]) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loadlab.report", "templates"),
        autoescape=True,
        undefined=jinja2.ChainableUndefined,
    )
    started = summary["run"].get("started_at")
    target = summary["run"].get("target") or {}
    return env.get_template("report.html").render(
        s=summary,
        gates=gates,
        plots=plots,
        started=(
            datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if isinstance(started, int | float)
            else "?"
        ),
        target=target.get("url", "?") if isinstance(target, dict) else target,
        ms=_ms,
        pct=_pct,
        num=_num,
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


def headline(summary: dict[str, Any]) -> str:
    """A short plain-text table of the run for the terminal."""
    t = summary["totals"]
    lat = summary["turn_latency_ms"]["all"]
    ttft = summary["ttft_ms"]["all"]
    v = summary["sessions"]["verdicts"]
    rows = [
        ("turns (ok / all)", f"{t['turns_ok']} / {t['turns']}"),
        ("turns/s mean / peak", f"{t['turns_per_s_mean']:.1f} / {t['turns_per_s_peak']:.1f}"),
        ("turn latency P50 / P99", f"{_ms(lat['p50'])} / {_ms(lat['p99'])}"),
        ("TTFT P50 / P99", f"{_ms(ttft['p50'])} / {_ms(ttft['p99'])}"),
        ("failed turns", _pct(t["turn_error_rate"])),
        ("peak users", _num(t["peak_users"])),
        ("cold starts", str(summary["cold_starts"]["count"])),
        ("sessions", " ".join(f"{k}={n}" for k, n in v.items())),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {val}" for k, val in rows)
