"""The loadlab tab in Locust's web UI: verdicts, latency, faults and pressure as the run goes.

Built on Locust's own extension points (its ``examples/extend_web_ui.py``), not
a fork of its UI:

* ``extended_tabs`` / ``extended_tables`` in the web UI's ``template_args`` add
  the **loadlab** tab, one table of *section, figure, value* rows;
* ``extended_stats`` is added to every ``/stats/requests`` answer (an
  ``after_request`` hook), which the UI polls every 2 s while a test runs, so
  the tab refreshes with Locust's own charts;
* ``extended_csv_files`` adds two links to the *Download Data* tab: the session
  table as CSV (:data:`SESSIONS_CSV`, read from the run directory like Locust's
  own request CSV) and the run's report (:data:`REPORT_PATH`) once it exists.

Where the figures come from: the process's
:class:`~loadlab.measure.live_status.LiveWindow` (session verdicts, rolling turn
P50/P99 and TTFT P99 from the turn rows themselves, never Locust's rounded
buckets; cold starts and environments alive from request rows; downstream
counters). On ``--master`` the window also gets every row the workers forward
(:mod:`.forwarding`), so the master's tab shows the whole run. Faults come from
the run's ``events.jsonl`` (written by the chaos control and ``loadlab demo``),
read incrementally by :class:`~loadlab.measure.fault_feed.FaultFeed` (as the
metrics endpoint reads them); once a fault is over and its after-window has passed, its
impact line is computed once by :func:`loadlab.analysis.impact.fault_impact`
over the run directory, the same numbers as the report's.
"""

from __future__ import annotations

import io
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow.csv as pa_csv

from loadlab.analysis.impact import IMPACT_COLUMNS, FaultImpact, fault_impact
from loadlab.analysis.pressure import QUANTITIES
from loadlab.analysis.rundata import load_run
from loadlab.measure.fault_feed import FaultFeed, LiveFault
from loadlab.measure.live_status import LiveWindow
from loadlab.measure.readback import RunDirectoryReader
from loadlab.measure.rundir import RunDirectory
from loadlab.redact import Redactor
from loadlab.rows import VERDICTS

__all__ = [
    "REPORT_PATH",
    "SESSIONS_CSV",
    "TAB_KEY",
    "LoadlabTab",
    "install_tab",
]

log = logging.getLogger("loadlab")

TAB_KEY = "loadlab"
"""The tab's key in Locust's UI (``?tab=loadlab``) and of its ``extended_stats`` entry."""

SESSIONS_CSV = "/loadlab/sessions.csv"
"""The session table (sessions.parquet so far) as CSV."""

REPORT_PATH = "/loadlab/report"
"""The run's report.html, once ``loadlab run``/``report`` has written it."""

_STRUCTURE = [
    {"key": "section", "title": "Section"},
    {"key": "figure", "title": "Figure"},
    {"key": "value", "title": "Value"},
]
# downstream quantities shown, by their name in loadlab.analysis.pressure
_PRESSURE = (
    ("llm_requests_per_s", "LLM calls"),
    ("llm_429_per_s", "LLM 429s"),
    ("ddb_throttles_per_s", "DynamoDB throttles"),
)
_REFRESH_S = 1.0  # at most one computation per second, however many browsers poll


class LoadlabTab:
    """The loadlab tab of one Locust web UI (standalone or ``--master``)."""

    def __init__(
        self,
        *,
        web_ui: Any,
        window: LiveWindow,
        run_dir: RunDirectory,
        users: Callable[[], int] = lambda: 0,
        impact_window_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        off_loop: Callable[[Callable[[], Any]], Any] | None = None,
    ) -> None:
        self._web_ui = web_ui
        self._window = window
        self._run_dir = run_dir
        self._users = users
        self._impact_window_s = impact_window_s
        self._clock = clock
        self._off_loop = off_loop or _off_loop
        self._faults = FaultFeed(run_dir.events)
        # the last line before the browser, as before every file loadlab writes
        self._redactor = Redactor.from_env()
        self._lock = threading.Lock()
        self._rows: list[dict[str, str]] = []
        self._rows_at = -math.inf
        self._impacts: dict[str, FaultImpact | str] = {}
        self._computing: set[str] = set()

    def install(self) -> LoadlabTab:
        """Add the tab, its data on ``/stats/requests`` and its two downloads to the web UI."""
        self._web_ui.template_args.update(
            {
                "extended_tabs": [{"title": "loadlab", "key": TAB_KEY}],
                "extended_tables": [{"key": TAB_KEY, "structure": _STRUCTURE}],
                "extended_csv_files": [
                    {"href": "." + SESSIONS_CSV, "title": "Download loadlab sessions CSV"},
                    {"href": "." + REPORT_PATH, "title": "loadlab report (when the run ends)"},
                ],
            }
        )
        app = self._web_ui.app
        app.after_request(self._extend_stats)
        app.add_url_rule(SESSIONS_CSV, "loadlab_sessions_csv", self._sessions_csv_response)
        app.add_url_rule(REPORT_PATH, "loadlab_report", self._report_response)
        return self

    # -- what the tab shows -------------------------------------------------------------

    def rows(self) -> list[dict[str, str]]:
        """The tab's table now (computed at most once a second)."""
        now = self._clock()
        with self._lock:
            if now - self._rows_at < _REFRESH_S:
                return self._rows
        rows = self._redactor.tree(self._compute(now))
        with self._lock:
            self._rows, self._rows_at = rows, now
        return rows

    def _compute(self, now: float) -> list[dict[str, str]]:
        w = self._window
        window = f"last {w.window_s:g} s"
        rows: list[dict[str, str]] = []

        def add(section: str, figure: str, value: object) -> None:
            rows.append({"section": section, "figure": figure, "value": str(value)})

        verdicts = w.verdicts()
        for verdict in VERDICTS:
            add("sessions", verdict, verdicts.get(verdict, 0))
        add("sessions", "users now", self._users())
        figures = w.window_percentiles(now=now)
        for key, label in (("p50_ms", "P50"), ("p99_ms", "P99"), ("ttft_p99_ms", "TTFT P99")):
            add("turns", f"{label} ({window}, successful turns)", _ms(figures[key]))
        add("turns", "done / failed", f"{w.turns_done} / {w.turns_failed}")
        add("environments", "cold starts", w.cold_starts)
        add("environments", f"alive (answered in the {window})", w.environments_alive(now=now))
        faults = self._faults.faults()
        active = [f for f in faults if f.active(now)]
        for f in active:
            add("faults", _fault_label(f), _lease_left(f, now))
        if not active:
            add("faults", "active", "none")
        for f in faults:
            if not f.active(now):
                add("impact", _fault_label(f), self._impact_line(f, now))
        totals = w.pressure.totals()
        for name, label in _PRESSURE:
            add("downstream", label, _pressure_total(name, totals))
        add("run", "run directory", self._run_dir.path)
        report = self._run_dir.path / "report.html"
        add(
            "run",
            "report",
            f".{REPORT_PATH}" if report.is_file() else f"{report} (written when the run ends)",
        )
        add("run", "as of (epoch s)", f"{now:.3f}")
        return rows

    def _impact_line(self, fault: LiveFault, now: float) -> str:
        known = self._impacts.get(fault.fault_id)
        if isinstance(known, FaultImpact):
            return _impact_text(known)
        if isinstance(known, str):
            return known
        ready_at = max(fault.t_start + self._impact_window_s, fault.over_at()) + 2.0
        if now < ready_at:
            return f"measuring: ready in {ready_at - now:.0f} s"
        if fault.fault_id not in self._computing:
            self._computing.add(fault.fault_id)
            self._measure(fault.fault_id)
        known = self._impacts.get(fault.fault_id)
        return _impact_text(known) if isinstance(known, FaultImpact) else known or "measuring"

    def _measure(self, fault_id: str) -> None:
        path, window_s = self._run_dir.path, self._impact_window_s
        try:
            # the report's own impact line and numbers, from only the columns it reads
            impacts = self._off_loop(
                lambda: fault_impact(
                    load_run(path, columns=IMPACT_COLUMNS, copy=False), window_s=window_s
                )
            )
            found: FaultImpact | str = next(
                (i for i in impacts if i.fault_id == fault_id), "not in the run directory"
            )
        except Exception as exc:  # the tab must never break the run
            log.warning("loadlab tab: impact of fault %s not computed: %s", fault_id, exc)
            found = f"not computed: {type(exc).__name__}"
        with self._lock:
            self._impacts[fault_id] = found
            self._computing.discard(fault_id)
            self._rows_at = -math.inf

    def sessions_csv(self) -> str:
        """The sessions recorded so far (sessions.parquet) as CSV, one row per session."""
        table = RunDirectoryReader(self._run_dir).table("sessions").table
        out = io.BytesIO()
        pa_csv.write_csv(table, out)
        return out.getvalue().decode()

    # -- Flask ----------------------------------------------------------------------------

    def _extend_stats(self, response: Any) -> Any:
        from flask import request

        if not request.path.endswith("/stats/requests") or response.status_code != 200:
            return response
        try:
            data = json.loads(response.get_data())
            data["extended_stats"] = [{"key": TAB_KEY, "data": self.rows()}]
        except Exception:  # the tab must never break Locust's own stats
            log.exception("loadlab tab: could not add the loadlab figures to /stats/requests")
            return response
        response.set_data(json.dumps(data))
        return response

    def _sessions_csv_response(self) -> Any:
        from flask import make_response

        response = make_response(self.sessions_csv())
        response.headers["Content-Type"] = "text/csv"
        response.headers["Content-Disposition"] = (
            f"attachment;filename=loadlab_sessions_{time.time():.0f}.csv"
        )
        return response

    def _report_response(self) -> Any:
        from flask import make_response

        report = self._run_dir.path / "report.html"
        if report.is_file():
            return make_response(report.read_bytes(), 200, {"Content-Type": "text/html"})
        return make_response(
            f"{report} does not exist yet: loadlab writes it when the run ends "
            f"(or run: loadlab report {self._run_dir.path})\n",
            404,
            {"Content-Type": "text/plain; charset=utf-8"},
        )


def install_tab(
    environment: Any, web_ui: Any, window: LiveWindow, run_dir: RunDirectory
) -> LoadlabTab:
    """The loadlab tab on this process's web UI (``init``, standalone or ``--master``)."""

    def users() -> int:
        runner = environment.runner
        return int(getattr(runner, "user_count", 0) or 0) if runner is not None else 0

    return LoadlabTab(web_ui=web_ui, window=window, run_dir=run_dir, users=users).install()


def _off_loop(work: Callable[[], Any]) -> Any:
    """``work()`` in gevent's pool of real threads: reading the run directory back with
    pandas must not stop the users (the calling greenlet waits, the others run)."""
    import gevent

    return gevent.get_hub().threadpool.apply(work)


def _ms(value: float | None) -> str:
    return "no turns yet" if value is None else f"{value:,.0f} ms"


def _fault_label(fault: LiveFault) -> str:
    return f"{fault.name} → {fault.target}" if fault.target else fault.name


def _lease_left(fault: LiveFault, now: float) -> str:
    if fault.lease_expires is None:
        return f"active for {now - fault.t_start:.0f} s (its action still running)"
    return f"active: {fault.lease_expires - now:.0f} s left on its lease"


def _impact_text(f: FaultImpact) -> str:
    recovered = (
        f"recovered after {f.time_to_recover_s:g} s"
        if f.recovery == "recovered" and f.time_to_recover_s is not None
        else f.recovery
    )
    verdicts = ", ".join(f"{n} {v}" for v, n in f.session_verdicts.items() if n)
    return (
        f"@{f.t:.0f}s: {f.sessions_in_flight} sessions in flight"
        + (f" ({verdicts})" if verdicts else "")
        + f", {f.turns_in_flight} turns ({f.turns_in_flight_failed} failed); "
        f"P99 {_ms(f.before.p99_ms)} → {_ms(f.after.p99_ms)}; {recovered}"
    )


def _pressure_total(name: str, totals: dict[str, float]) -> str:
    """The total the turns reported (live), then the first sampled source that has it.

    Sources are tried in the report's order of preference; a sampled counter lags
    by its scrape or CloudWatch period, the turns' own count does not.
    """
    quantity = next(q for q in QUANTITIES if q.name == name)
    reported: str | None = None
    sampled: str | None = None
    for keys in quantity.candidates:
        if not all(k in totals for k in keys):
            continue
        value = sum(totals[k] for k in keys)
        source = keys[0].split(":", 1)[0]
        if source == "turns":
            reported = reported or f"{value:,.0f} reported by the turns"
        else:
            sampled = sampled or f"{value:,.0f} by {source} (as last sampled)"
    parts = [p for p in (reported, sampled) if p]
    return "; ".join(parts) if parts else "none recorded yet (no sample of it)"
