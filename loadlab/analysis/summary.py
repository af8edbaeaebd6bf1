"""summary.json: the numbers a run is judged by, derived from the run directory only."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from loadlab.analysis.coldstarts import cold_start_analysis
from loadlab.analysis.continuity import checkpoint_agreement, continuity
from loadlab.analysis.impact import fault_impact, fault_spans
from loadlab.analysis.journal import JOURNAL, read_journal
from loadlab.analysis.pressure import pressure_summary
from loadlab.analysis.rundata import RunData
from loadlab.analysis.stats import distribution, percentile
from loadlab.analysis.timeseries import faults, timeseries
from loadlab.errors import RunDirectoryError
from loadlab.rows import ERROR_KINDS, VERDICTS

SUMMARY_VERSION = 1


def summarize(run: RunData) -> dict[str, Any]:
    """Compute the run's summary (JSON-serialisable)."""
    series = timeseries(run)
    duration = max(run.t_end - run.t0, 1e-9)
    turns, req, sessions = run.turns, run.requests, run.sessions
    user_latency = (turns["t_end"] - turns["t_start"]) * 1000.0 if len(turns) else pd.Series()
    problems = list(run.problems)
    summary: dict[str, Any] = {
        "version": SUMMARY_VERSION,
        "run": _run_section(run, duration),
        "totals": _totals(run, series, duration),
        "turn_latency_ms": _by_intent(turns, user_latency),
        "request_latency_ms": _by_name(req, "latency_ms"),
        "ttft_ms": _by_intent(turns, turns["ttft_ms"] if len(turns) else pd.Series()),
        "errors": _errors(req, turns),
        "sessions": _sessions(sessions),
        "cold_starts": _cold_starts(req, turns) | cold_start_analysis(run).to_json(),
        "downstream": _downstream(turns),
        "pressure": pressure_summary(run),
        "faults": faults(run),
        "fault_impact": [impact.to_json() for impact in fault_impact(run)],
        "continuity": _continuity(run, problems),
        "experiment": _experiment(run, problems),
        "locust": locust_agreement(run),
        "problems": problems,
    }
    safe: dict[str, Any] = _json_safe(summary)
    return safe


def _continuity(run: RunData, problems: list[str]) -> dict[str, Any]:
    try:
        audit = checkpoint_agreement(run)
    except RunDirectoryError as exc:
        problems.append(exc.message)
        audit = None
    return continuity(run, fault_spans(run.events), audit)


def _experiment(run: RunData, problems: list[str]) -> dict[str, Any] | None:
    path = Path(run.path) / JOURNAL
    if not path.exists():
        return None
    try:
        return read_journal(path).to_json(run.t0)
    except RunDirectoryError as exc:
        problems.append(exc.message)
        return None


def _run_section(run: RunData, duration: float) -> dict[str, Any]:
    m = run.manifest
    return {
        "id": m.get("run_id"),
        "name": m.get("name"),
        "path": str(run.path),
        "started_at": m.get("started_at"),
        "ended_at": m.get("ended_at"),
        "end_reason": m.get("end_reason"),
        "duration_s": round(duration, 3),
        "target": m.get("target"),
        "scenario": m.get("scenario_path"),
        "shape": (m.get("scenario") or {}).get("shape"),
        "seed": m.get("seed"),
    }


def _totals(run: RunData, series: pd.DataFrame, duration: float) -> dict[str, Any]:
    turns, req = run.turns, run.requests
    ok = int(turns["ok"].sum()) if len(turns) else 0
    failed_req = int(req["error_kind"].notna().sum()) if len(req) else 0
    return {
        "requests": len(req),
        "requests_failed": failed_req,
        "request_error_rate": failed_req / len(req) if len(req) else 0.0,
        "turns": len(turns),
        "turns_ok": ok,
        "turn_error_rate": (len(turns) - ok) / len(turns) if len(turns) else 0.0,
        "turns_per_s_mean": len(turns) / duration,
        "turns_per_s_peak": float(series["turns_per_s"].max()) if len(series) else 0.0,
        "sessions": len(run.sessions),
        "peak_users": _nanmax(series["users"]),
        "peak_active_sessions": _nanmax(series["active_sessions"]),
        "retried_turns": int((turns["attempts"] > 1).sum()) if len(turns) else 0,
    }


def _by_intent(turns: pd.DataFrame, values: pd.Series) -> dict[str, Any]:
    if not len(turns):
        return {"all": distribution([]), "by_intent": {}}
    ok = turns["ok"].astype(bool)
    frame = pd.DataFrame({"intent": turns["intent"], "v": values})[ok]
    return {
        "all": distribution(frame["v"]),
        "by_intent": {
            str(intent): distribution(group["v"])
            for intent, group in frame.groupby("intent", sort=True)
        },
    }


def _by_name(req: pd.DataFrame, col: str) -> dict[str, Any]:
    if not len(req):
        return {"all": distribution([]), "by_name": {}}
    return {
        "all": distribution(req[col]),
        "by_name": {
            str(name): distribution(group[col]) for name, group in req.groupby("name", sort=True)
        },
    }


def _errors(req: pd.DataFrame, turns: pd.DataFrame) -> dict[str, Any]:
    counts = dict.fromkeys(ERROR_KINDS, 0)
    if len(req):
        for kind, n in req["error_kind"].dropna().value_counts().items():
            counts[str(kind)] = int(n)
    total = len(req)
    examples: dict[str, str] = {}
    if len(req):
        for kind, group in req.dropna(subset=["error_kind"]).groupby("error_kind"):
            message = group["error"].dropna()
            if len(message):
                examples[str(kind)] = str(message.iloc[0])[:300]
    failed_turns = turns[~turns["ok"].astype(bool)] if len(turns) else turns
    return {
        "by_kind": counts,
        "rate_by_kind": {k: (v / total if total else 0.0) for k, v in counts.items()},
        "examples": examples,
        "failed_turns_by_kind": (
            {str(k): int(v) for k, v in failed_turns["error_kind"].value_counts().items()}
            if len(failed_turns)
            else {}
        ),
    }


def _sessions(sessions: pd.DataFrame) -> dict[str, Any]:
    verdicts = dict.fromkeys(VERDICTS, 0)
    if len(sessions):
        for verdict, n in sessions["verdict"].value_counts().items():
            verdicts[str(verdict)] = int(n)
    resume = sessions["resume_latency_ms"] if len(sessions) else pd.Series(dtype="float64")
    stopped = 0
    if len(sessions):
        stopped = int(sessions["verdict_reason"].astype(str).str.startswith("stopped").sum())
    return {
        "count": len(sessions),
        "verdicts": verdicts,
        "stopped_by_shape": stopped,
        "resume_latency_ms": {
            "count": int(resume.notna().sum()),
            "p50": percentile(resume, 50),
            "p99": percentile(resume, 99),
        },
    }


def _cold_starts(req: pd.DataFrame, turns: pd.DataFrame) -> dict[str, Any]:
    if not len(req):
        return {"count": 0, "instances": 0, "init_ms": distribution([])}
    cold = req[req["cold_start"].fillna(False).astype(bool)]
    warm_turns = turns[~turns["cold_start"].fillna(False).astype(bool)] if len(turns) else turns
    cold_turns = turns[turns["cold_start"].fillna(False).astype(bool)] if len(turns) else turns

    def p99(frame: pd.DataFrame) -> float | None:
        return percentile((frame["t_end"] - frame["t_start"]) * 1000.0, 99) if len(frame) else None

    return {
        "count": len(cold),
        "instances": int(req["instance_id"].dropna().nunique()),
        "init_ms": distribution(cold["init_ms"]),
        "turn_p99_ms_cold": p99(cold_turns),
        "turn_p99_ms_warm": p99(warm_turns),
    }


def _downstream(turns: pd.DataFrame) -> dict[str, Any]:
    cols = (
        "ddb_calls",
        "ddb_rcu",
        "ddb_wcu",
        "llm_calls",
        "llm_retries",
        "llm_throttles",
        "tokens_in",
        "tokens_out",
    )
    n = len(turns)
    totals = {c: (float(turns[c].sum()) if n else 0.0) for c in cols}
    return {"totals": totals, "per_turn": {c: (v / n if n else 0.0) for c, v in totals.items()}}


def locust_agreement(run: RunData) -> dict[str, Any] | None:
    """Compare loadlab's request rows with Locust's own statistics of the same run.

    The reference is ``locust_final.json``: Locust's stats entries read by the
    loadlab plugin at the same instant it sealed the recorder. Locust's
    ``locust_stats.csv`` is only a fallback, since Locust rewrites it once a second
    and its final version can miss the last second of requests.
    """
    final = Path(run.path) / "locust_final.json"
    stats_csv = Path(run.path) / "locust_stats.csv"
    if final.exists():
        try:
            entries = json.loads(final.read_text())["entries"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        source = final.name
        locust = {
            str(e["name"]): (int(e["num_requests"]), _to_float(e.get("median_response_time")))
            for e in entries
        }
    elif stats_csv.exists():
        source = stats_csv.name
        with stats_csv.open(newline="") as fh:
            locust = {
                rec["Name"]: (
                    int(rec.get("Request Count") or 0),
                    _to_float(rec.get("Median Response Time")),
                )
                for rec in csv.DictReader(fh)
                if rec.get("Name") and rec.get("Name") != "Aggregated"
            }
    else:
        return None
    req = run.requests
    ours = req.groupby("name").size() if len(req) else pd.Series(dtype=int)
    rows: list[dict[str, Any]] = []
    for name in sorted(set(locust) | {str(n) for n in ours.index}):
        locust_count, locust_med = locust.get(name, (0, None))
        ours_count = int(ours.get(name, 0))
        ours_med = locust_median(req.loc[req["name"] == name, "latency_ms"]) if len(req) else None
        rows.append(
            {
                "name": name,
                "loadlab_count": ours_count,
                "locust_count": locust_count,
                "count_match": ours_count == locust_count,
                "loadlab_median_ms": ours_med,
                "locust_median_ms": locust_med,
                "median_match": _median_match(ours_med, locust_med),
            }
        )
    return {
        "source": source,
        "by_name": rows,
        "all_match": all(r["count_match"] and r["median_match"] for r in rows),
    }


def locust_median(values: pd.Series) -> float | None:
    """The median Locust reports for these latencies, reproduced from the raw values.

    Locust buckets each response time to about two significant digits
    (``locust.stats.bucket_response_time``), walks the buckets from the top
    (``calculate_response_time_percentile``) and clamps the result to the exact
    min/max. Doing the same here makes the agreement check exact instead of
    "close enough": any difference is a real disagreement in the data.
    """
    clean = values.dropna()
    if not len(clean):
        return None
    buckets = clean.map(_locust_bucket).value_counts()
    total = len(clean)
    target = int(total * 0.5)
    processed = 0
    median = 0.0
    for bucket in sorted(buckets.index, reverse=True):
        processed += int(buckets[bucket])
        if total - processed <= target:
            median = float(bucket)
            break
    return float(min(max(median, float(clean.min())), float(clean.max())))


def _locust_bucket(ms: float) -> int:
    if ms < 100:
        return round(ms)
    digits = -1 if ms < 1000 else (-2 if ms < 10000 else -3)
    return int(round(ms, digits))


def _median_match(ours: float | None, theirs: float | None) -> bool:
    """Equal up to Locust's CSV formatting (it prints the median as a whole number)."""
    if ours is None or theirs is None:
        return ours is None and (theirs is None or theirs == 0)
    return bool(abs(ours - theirs) < 1.0)


def _to_float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def _nanmax(series: pd.Series) -> float | None:
    clean = series.dropna()
    return float(clean.max()) if len(clean) else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value
