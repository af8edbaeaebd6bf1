"""The cost section: ``loadlab cost``'s table, the report's section and ``compare``'s rows.

Everything is priced by :func:`loadlab.analysis.cost.cost_estimate`; this module
only lays it out. The report never fails because of cost: a run the model cannot
price gets a section that says what is missing.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from loadlab.analysis.cost import (
    CostEstimate,
    PlatformCost,
    break_even_between,
    cost_estimate,
    own_model,
)
from loadlab.analysis.cost.mitigations import MITIGATION_ROWS, MitigationColumn
from loadlab.analysis.prices import PriceTable, load_prices
from loadlab.analysis.rundata import RunData
from loadlab.errors import LoadLabError

__all__ = [
    "CostSection",
    "cost_section",
    "cost_text",
    "mitigation_text",
    "pair_text",
    "usd",
]


def usd(value: float | None) -> str:
    """An amount as the tables show it: cents, or 4 significant digits below a cent."""
    if value is None:
        return "—"
    if value != 0 and abs(value) < 0.01:
        return f"${value:.4g}"
    return f"${value:,.2f}"


@dataclass(frozen=True, slots=True)
class CostSection:
    """The report's cost section: the estimate, or why there is none."""

    estimate: CostEstimate | None
    error: str | None

    def html(self) -> str:
        """The section's HTML (escaped; the template inserts it as is)."""
        if self.estimate is None:
            return (
                '<h2 id="cost">Cost</h2><p class="no-cost">not priced: '
                f"{html.escape(self.error or '?')}</p>"
            )
        e = self.estimate
        rows = "".join(_html_row(p) for p in e.platforms)
        lines = "".join(
            f"<details><summary>{html.escape(p.title)}</summary><table>"
            + "".join(
                f"<tr><td>{html.escape(x.item)}</td><td>{x.quantity:,.6g} {html.escape(x.unit)}"
                f"</td><td>x {x.price:g} ({html.escape(x.price_key)})</td>"
                f"<td>{usd(x.usd)}</td></tr>"
                for x in (*p.compute, *p.shared)
            )
            + "</table>"
            + "".join(f'<p class="meta">{html.escape(n)}</p>' for n in p.notes)
            + "</details>"
            for p in e.platforms
            if not p.missing
        )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in e.notes)
        return (
            '<h2 id="cost">Cost</h2>'
            f'<p class="meta">Prices: {html.escape(e.region)}, {html.escape(e.prices_date)} '
            f"({html.escape(e.prices_path)}). {e.usage.invocations} invocations, "
            f"{e.usage.sessions} sessions, {e.usage.cold_starts} cold starts on the run's "
            f"platform ({html.escape(e.usage.platform)}). DynamoDB and LLM tokens are the "
            "same on every platform.</p>"
            '<table class="cost"><tr><th>platform</th><th>basis</th><th>cold starts</th>'
            "<th>compute</th><th>total</th><th>per 1,000 sessions</th></tr>"
            f"{rows}</table>"
            f"<p>Break-even: {_break_even_html(e)}</p>"
            f'<ul class="meta">{notes}</ul>{lines}'
        )


def _html_row(p: PlatformCost) -> str:
    if p.missing:
        return (
            f"<tr><td>{html.escape(p.title)}</td><td colspan=5>not priced: needs "
            f"{html.escape(p.missing)}</td></tr>"
        )
    cold = "—" if p.cold_starts is None else str(p.cold_starts)
    return (
        f"<tr><td>{html.escape(p.title)}</td><td>{p.basis}</td><td>{cold}</td>"
        f"<td>{usd(p.compute_usd)}</td><td>{usd(p.total_usd)}</td>"
        f"<td>{usd(p.per_1000_sessions_usd)}</td></tr>"
    )


def _break_even_html(e: CostEstimate) -> str:
    if e.break_even_requests_per_day is None:
        return html.escape(e.break_even_note)
    return (
        f"<b>{e.break_even_requests_per_day:,.0f} requests/day</b> "
        f'<span class="meta">({html.escape(e.break_even_note)})</span>'
    )


def cost_section(run: RunData, prices: PriceTable | None = None) -> CostSection:
    """Price ``run`` with ``prices`` (the shipped table by default), or say why not."""
    try:
        table = prices or load_prices()
        return CostSection(cost_estimate(run, table), None)
    except LoadLabError as exc:
        return CostSection(None, exc.message)


def cost_text(estimate: CostEstimate, name: str) -> str:
    """One run's estimate as a plain-text table."""
    u = estimate.usage
    out = [
        f"{name}: {u.platform} run, {u.run_s:.0f} s, {u.sessions} sessions, "
        f"{u.invocations} invocations, {u.cold_starts} cold starts",
        f"prices: {estimate.region} {estimate.prices_date} ({estimate.prices_path})"
        + (f"; overridden: {', '.join(estimate.overridden)}" if estimate.overridden else ""),
    ]
    rows: list[tuple[str, ...]] = [
        ("platform", "basis", "cold", "compute", "total", "per 1,000 sessions")
    ]
    missing = []
    for p in estimate.platforms:
        if p.missing:
            rows.append((p.title, "not priced", "", "—", "—", "—"))
            missing.append(f"  {p.title} not priced: needs {p.missing}")
            continue
        rows.append(
            (
                p.title,
                p.basis,
                "—" if p.cold_starts is None else str(p.cold_starts),
                usd(p.compute_usd),
                usd(p.total_usd),
                usd(p.per_1000_sessions_usd),
            )
        )
    out += _aligned(rows)
    out += missing
    if estimate.break_even_requests_per_day is not None:
        out.append(f"  break-even: {estimate.break_even_requests_per_day:,.0f} requests/day")
        out.append(f"    ({estimate.break_even_note})")
    else:
        out.append(f"  break-even: {estimate.break_even_note}")
    out += [f"  note: {n}" for n in estimate.notes]
    return "\n".join(out)


def pair_text(lambda_run: CostEstimate, pods_run: CostEstimate) -> str:
    """The break-even between a measured Lambda run and a measured pods run."""
    value, note = break_even_between(lambda_run, pods_run)
    lam, eks = lambda_run.model(own_model(lambda_run.usage)), pods_run.model("eks")
    out = [
        "both runs, each on its own platform:",
        f"  Lambda run: {usd(lam.total_usd)} ({usd(lam.per_1000_sessions_usd)} per 1,000 sessions)",
        f"  pods run:   {usd(eks.total_usd)} ({usd(eks.per_1000_sessions_usd)} per 1,000 sessions)",
    ]
    if value is None:
        out.append(f"  break-even: {note}")
    else:
        out += [f"  break-even: {value:,.0f} requests/day", f"    ({note})"]
    return "\n".join(out)


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "usd":
        return usd(value)
    if unit == "n":
        return f"{value:,.0f}"
    return f"{value:,.0f} ms"


def mitigation_text(columns: tuple[MitigationColumn, ...]) -> str:
    """One column per run (its mitigation over its name), one row per figure."""
    rows: list[tuple[str, ...]] = [
        ("", *(c.mitigation for c in columns)),
        ("run", *(c.name for c in columns)),
    ]
    rows += [
        (label, *(_figure(c.figures.get(key), unit) for c in columns))
        for label, key, unit in MITIGATION_ROWS
    ]
    out = ["cold-start mitigations, one run per column:", *_aligned(rows)]
    out += [
        f"  {c.name}: cost per 1,000 sessions is its {c.cost_model} model"
        for c in columns
        if c.cost_model
    ]
    out += [f"  {c.name}: {c.note}" for c in columns if c.note]
    return "\n".join(out)


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        out.append("  " + "  ".join(cells).rstrip())
    return out
