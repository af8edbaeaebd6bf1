"""``loadlab history``: the trend across game days, as a table and an HTML page with plots."""

from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from loadlab.analysis.history import FIGURES, History, HistoryRun
from loadlab.redact import Redactor

__all__ = ["history_html", "history_table", "write_history_html"]

_PLOTTED = ("turn_p99_ms", "resume_p99_ms", "time_to_recover_s", "restarted", "duplicated")


def _when(run: HistoryRun) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(run.started_at))


def _verdict(run: HistoryRun) -> str:
    return {True: "PASS", False: "FAIL", None: "?"}[run.passed]


def _value(run: HistoryRun, attribute: str, unit: str) -> str:
    value = run.figure(attribute)
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:,.1f}"
    return f"{value:g}"


def _header() -> list[str]:
    return [
        "started (UTC)",
        "game day",
        "verdict",
        *(f"{label} ({unit})" if unit != "n" else label for _, label, unit in FIGURES),
        "",
    ]


def _row(run: HistoryRun, regressed: set[Path]) -> list[str]:
    return [
        _when(run),
        run.gameday or "-",
        _verdict(run),
        *(_value(run, attribute, unit) for attribute, _, unit in FIGURES),
        "REGRESSED" if run.path in regressed else "",
    ]


def history_table(history: History) -> str:
    """One block per experiment (oldest run first), then the regressions named."""
    if not history.groups:
        return "history: no rendered runs found"
    regressed = {r.run.path for r in history.regressions}
    lines: list[str] = []
    header = _header()
    for key, runs in history.groups.items():
        rows = [header, *(_row(run, regressed) for run in runs)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines.append(f"{key} ({len(runs)} run{'s' if len(runs) != 1 else ''})")
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        lines.append("")
    if history.regressions:
        lines.append(
            f"regressions (worse than every one of the last {history.last} runs, "
            f"tolerance {history.tolerance:.0%}):"
        )
        lines.extend(f"  {r.line}" for r in history.regressions)
    else:
        lines.append(
            f"regressions: none (last {history.last} runs, tolerance {history.tolerance:.0%})"
        )
    for skipped in history.skipped:
        lines.append(f"skipped: {skipped}")
    return "\n".join(lines).rstrip()


def _plot(history: History, attribute: str, label: str, unit: str) -> str:
    fig, ax = plt.subplots(figsize=(8, 2.6))
    try:
        for key, runs in history.groups.items():
            points = [(value, r.passed) for r in runs if (value := r.figure(attribute)) is not None]
            if not points:
                continue
            xs = list(range(len(points)))
            ax.plot(xs, [value for value, _ in points], marker="o", label=key)
            failed = [(x, value) for x, (value, ok) in zip(xs, points, strict=True) if ok is False]
            if failed:
                ax.scatter(
                    [x for x, _ in failed], [y for _, y in failed], marker="x", s=80, color="red"
                )
        ax.set_title(f"{label}" + (f" ({unit})" if unit != "n" else ""))
        ax.set_xlabel("run (oldest first; x = verdict FAIL)")
        ax.grid(alpha=0.3)
        if history.groups:
            ax.legend(fontsize="small", loc="best")
        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format="png", dpi=90)
    finally:
        plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def history_html(history: History) -> str:
    """A self-contained page: the table per experiment, the regressions, one plot per figure."""
    regressed = {r.run.path for r in history.regressions}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>loadlab history</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}.fail{color:#b00}"
        ".regressed{background:#fdd}</style></head><body>",
        f"<h1>loadlab history</h1><p>{len(history.runs)} runs, "
        f"{len(history.gamedays)} game days, {len(history.groups)} experiments.</p>",
    ]
    if history.regressions:
        parts.append(
            f"<h2 class='fail'>Regressions</h2><p>Worse than every one of the last "
            f"{history.last} runs (tolerance {history.tolerance:.0%}):</p><ul>"
        )
        parts.extend(f"<li>{html.escape(r.line)}</li>" for r in history.regressions)
        parts.append("</ul>")
    else:
        parts.append("<h2>Regressions</h2><p>none</p>")
    header = _header()
    for key, runs in history.groups.items():
        parts.append(f"<h2>{html.escape(key)}</h2><table><tr>")
        parts.extend(f"<th>{html.escape(h)}</th>" for h in header)
        parts.append("</tr>")
        for run in runs:
            css = "regressed" if run.path in regressed else ""
            parts.append(f"<tr class='{css}'>")
            for cell in _row(run, regressed):
                klass = " class='fail'" if cell in ("FAIL", "REGRESSED") else ""
                parts.append(f"<td{klass}>{html.escape(cell)}</td>")
            parts.append("</tr>")
        parts.append("</table>")
    labels = {attribute: (label, unit) for attribute, label, unit in FIGURES}
    if history.groups:
        parts.append("<h2>Trends</h2>")
        for attribute in _PLOTTED:
            label, unit = labels[attribute]
            png = _plot(history, attribute, label, unit)
            parts.append(f"<img alt='{html.escape(label)}' src='data:image/png;base64,{png}'><br>")
    if history.skipped:
        parts.append("<h2>Skipped</h2><ul>")
        parts.extend(f"<li>{html.escape(s)}</li>" for s in history.skipped)
        parts.append("</ul>")
    parts.append("</body></html>")
    return "".join(parts)


def write_history_html(history: History, out: Path) -> Path:
    """Write :func:`history_html` to ``out`` (its folder is created) and return it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(Redactor.from_env()(history_html(history)), encoding="utf-8")
    return out
