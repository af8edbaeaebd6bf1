"""``loadlab compare RUN_A RUN_B``: two runs of the same scenario side by side.

Typical use: the same flash sale against the Lambda target and against pods.
Everything comes from each run's files (summaries are re-derived, so an old
summary.json cannot disagree with its rows).
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadlab.analysis.cost import CostEstimate, break_even_between, own_model, platform_of
from loadlab.analysis.fidelity import FidelityRow, fidelity_table
from loadlab.analysis.rundata import RunData, load_run
from loadlab.analysis.summary import summarize
from loadlab.analysis.timeseries import timeseries
from loadlab.redact import Redactor
from loadlab.report.cost import cost_section, usd

# (label, path in summary.json, unit)
ROWS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("turns", ("totals", "turns"), "n"),
    ("turns/s (mean)", ("totals", "turns_per_s_mean"), "rate"),
    ("turn latency P50", ("turn_latency_ms", "all", "p50"), "ms"),
    ("turn latency P99", ("turn_latency_ms", "all", "p99"), "ms"),
    ("TTFT P50", ("ttft_ms", "all", "p50"), "ms"),
    ("TTFT P99", ("ttft_ms", "all", "p99"), "ms"),
    ("failed turns", ("totals", "turn_error_rate"), "pct"),
    ("throttled requests", ("errors", "by_kind", "throttled"), "n"),
    ("request errors", ("totals", "requests_failed"), "n"),
    ("cold starts", ("cold_starts", "count"), "n"),
    ("instances seen", ("cold_starts", "instances"), "n"),
    ("init time P50", ("cold_starts", "init_ms", "p50"), "ms"),
    ("turn P99 on cold instances", ("cold_starts", "turn_p99_ms_cold"), "ms"),
    ("turn P99 on warm instances", ("cold_starts", "turn_p99_ms_warm"), "ms"),
    ("environments created", ("cold_starts", "environments", "created"), "n"),
    ("peak concurrency", ("cold_starts", "environments", "peak_concurrency"), "n"),
    ("turn P99 without cold turns", ("cold_starts", "p99_share", "p99_ms_without_cold"), "ms"),
    ("slow turns (P99+) that were cold", ("cold_starts", "p99_share", "tail_cold_share"), "pct"),
    ("last cold start", ("cold_starts", "warm_up", "last_cold_start_s"), "s"),
    ("sessions clean", ("sessions", "verdicts", "clean"), "n"),
    ("sessions resumed", ("sessions", "verdicts", "resumed"), "n"),
    ("sessions restarted", ("sessions", "verdicts", "restarted"), "n"),
    ("sessions duplicated", ("sessions", "verdicts", "duplicated"), "n"),
    ("sessions failed", ("sessions", "verdicts", "failed"), "n"),
    ("resume latency P50", ("sessions", "resume_latency_ms", "p50"), "ms"),
    ("resume latency P99", ("sessions", "resume_latency_ms", "p99"), "ms"),
)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The side-by-side figures of two runs, and where the HTML went."""

    names: tuple[str, str]
    rows: tuple[tuple[str, Any, Any, str], ...]
    html_path: Path | None
    warnings: tuple[str, ...]
    fidelity: tuple[FidelityRow, ...] = ()


def _get(summary: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = summary
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def compare_runs(run_a: Path | str, run_b: Path | str, *, out: Path | None = None) -> Comparison:
    """Compare two run directories; write ``out`` (HTML) when given."""
    runs = (load_run(run_a), load_run(run_b))
    # ROWS name figures by their path in summary.json
    summaries = tuple(summarize(r).to_json() for r in runs)
    names = tuple(_name(r) for r in runs)
    rows = tuple(
        (label, _get(summaries[0], path), _get(summaries[1], path), unit)
        for label, path, unit in ROWS
    )
    warnings: list[str] = []
    loads = [_load_of(r) for r in runs]
    if loads[0] and loads[1] and loads[0] != loads[1]:
        warnings.append(
            "the runs played different loads (scenario shape, sessions or seed differ, "
            "not only the target): compare with care"
        )
    sections = tuple(cost_section(r) for r in runs)
    rows += _cost_rows(sections[0].estimate, sections[1].estimate)
    warnings += [f"cost of {n}: {c.error}" for n, c in zip(names, sections, strict=True) if c.error]
    fidelity = _fidelity(runs, summaries, (sections[0].estimate, sections[1].estimate))
    comparison = Comparison((names[0], names[1]), rows, out, tuple(warnings), fidelity)
    if out is not None:
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(Redactor.from_env()(_html(comparison, runs)), encoding="utf-8")
        os.replace(tmp, out)
    return comparison


_COST_MODELS = (
    ("lambda", "Lambda on-demand"),
    ("lambda_pc", "Lambda with provisioned concurrency"),
    ("lambda_snapstart", "Lambda with SnapStart"),
    ("eks", "EKS pods (EC2 nodes)"),
    ("fargate", "EKS pods (Fargate)"),
    ("active_cpu", "active-CPU billing"),
)


def _cost_rows(
    a: CostEstimate | None, b: CostEstimate | None
) -> tuple[tuple[str, Any, Any, str], ...]:
    def own(e: CostEstimate | None) -> float | None:
        if e is None:
            return None
        return e.model(own_model(e.usage)).total_usd

    def per_1000(e: CostEstimate | None, name: str) -> float | None:
        return None if e is None else e.model(name).per_1000_sessions_usd

    rows: list[tuple[str, Any, Any, str]] = [
        ("cost of the run (its own platform)", own(a), own(b), "usd")
    ]
    rows += [
        (f"$ per 1,000 sessions: {label}", per_1000(a, name), per_1000(b, name), "usd")
        for name, label in _COST_MODELS
    ]
    return tuple(rows)


def _fidelity(
    runs: tuple[RunData, RunData],
    summaries: tuple[dict[str, Any], ...],
    estimates: tuple[CostEstimate | None, CostEstimate | None],
) -> tuple[FidelityRow, ...]:
    """The fidelity table when one run is on Lambda and the other on pods."""
    kinds = [platform_of(r) for r in runs]
    if sorted(str(k) for k in kinds) != ["lambda", "pods"]:
        return ()
    i_lambda = kinds.index("lambda")
    i_pods = 1 - i_lambda
    lam_est, pods_est = estimates[i_lambda], estimates[i_pods]
    break_even = None
    if lam_est is not None and pods_est is not None:
        break_even, _ = break_even_between(lam_est, pods_est)
    return fidelity_table(
        summaries[i_lambda],
        summaries[i_pods],
        lambda_usage=None if lam_est is None else lam_est.usage,
        break_even_per_day=break_even,
    )


def fidelity_text(rows: tuple[FidelityRow, ...]) -> str:
    """The fidelity table as plain text."""
    if not rows:
        return ""
    lines = [("claim", "published", "measured", "source")]
    lines += [(r.claim, r.published, _fidelity_value(r), r.source) for r in rows]
    w = [max(len(x[i]) for x in lines) for i in range(3)]
    out = ["published claims vs these runs (Lambda run against pods run):"]
    out += [f"  {x[0].ljust(w[0])}  {x[1].ljust(w[1])}  {x[2].rjust(w[2])}  {x[3]}" for x in lines]
    return "\n".join(out)


def _fidelity_value(row: FidelityRow) -> str:
    if row.measured is None:
        return "—"
    if row.unit == "requests/day":
        return f"{row.measured:,.0f}"
    return f"{row.measured:.2f}"


def _load_of(run: RunData) -> dict[str, Any] | None:
    """The scenario without its target: what must match for two runs to compare."""
    scenario = run.manifest.get("scenario")
    if not isinstance(scenario, dict):
        return None
    return {k: v for k, v in scenario.items() if k not in ("target", "name", "description")}


def _name(run: RunData) -> str:
    return f"{run.manifest.get('name', '?')} ({Path(run.path).name})"


def format_value(value: Any, unit: str) -> str:
    """A figure as the comparison table shows it."""
    if not isinstance(value, int | float):
        return "—"
    if unit == "ms":
        return f"{value / 1000:.2f} s" if value >= 10_000 else f"{value:.0f} ms"
    if unit == "pct":
        return f"{value * 100:.2f}%"
    if unit == "rate":
        return f"{value:.1f}"
    if unit == "s":
        return f"{value:.1f} s"
    if unit == "usd":
        return usd(value)
    return f"{value:g}"


def text_table(comparison: Comparison) -> str:
    """The comparison as an aligned plain-text table."""
    a, b = comparison.names
    lines = [("", "A", "B")]
    lines += [(label, format_value(x, u), format_value(y, u)) for label, x, y, u in comparison.rows]
    w0 = max(len(r[0]) for r in lines)
    w1 = max(len(r[1]) for r in lines)
    out = [f"A = {a}", f"B = {b}"]
    out += [f"  {r[0].ljust(w0)}  {r[1].rjust(w1)}  {r[2]}" for r in lines]
    out += [f"  warning: {w}" for w in comparison.warnings]
    fidelity = fidelity_text(comparison.fidelity)
    return "\n".join(out + ([fidelity] if fidelity else []))


def _plot(runs: tuple[RunData, RunData], names: tuple[str, str]) -> str:
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    for run, name in zip(runs, names, strict=True):
        series = timeseries(run)
        axes[0].plot(series["t"], series["p99_ms"], label=f"P99 {name}", linewidth=1.3)
        axes[1].plot(series["t"], series["users"], label=f"users {name}", linewidth=1.3)
    axes[0].set_title("Request P99 (ms)", fontsize=10, loc="left")
    axes[1].set_title("Concurrent users", fontsize=10, loc="left")
    axes[1].set_xlabel("seconds since start", fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _html(comparison: Comparison, runs: tuple[RunData, RunData]) -> str:
    a, b = (html.escape(n) for n in comparison.names)
    body = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{format_value(x, u)}</td>"
        f"<td>{format_value(y, u)}</td></tr>"
        for label, x, y, u in comparison.rows
    )
    warnings = "".join(f"<p class=warn>{html.escape(w)}</p>" for w in comparison.warnings)
    fidelity = "".join(
        f"<tr><td>{html.escape(r.claim)}</td><td>{html.escape(r.published)}</td>"
        f"<td>{_fidelity_value(r)}</td><td>{html.escape(r.source)}</td></tr>"
        for r in comparison.fidelity
    )
    if fidelity:
        fidelity = (
            "<h2>Published claims vs these runs</h2><table><tr><th>claim</th><th>published"
            f"</th><th>measured</th><th>source</th></tr>{fidelity}</table>"
        )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>loadlab compare</title>"
        "<style>body{font:14px system-ui,sans-serif;max-width:1000px;margin:2em auto}"
        "td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}"
        "td:first-child,th:first-child{text-align:left}.warn{color:#b00020}</style></head><body>"
        f"<h1>loadlab compare</h1><p>A = {a}<br>B = {b}</p>{warnings}"
        f"<table><tr><th></th><th>A</th><th>B</th></tr>{body}</table>{fidelity}"
        f'<p><img alt="P99 and users over time" style="max-width:100%" '
        f'src="data:image/png;base64,{_plot(runs, comparison.names)}"></p>'
        "</body></html>"
    )
