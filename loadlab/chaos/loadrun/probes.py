"""Probes that read a live loadlab run, for steady-state hypotheses.

They read ``live.json``, which the run's recorder rewrites about once a second
(see :data:`loadlab.rows.LIVE_STATUS_FILE`). Before any turn has finished
there is nothing to violate, so the threshold probes hold.
"""

from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed

from loadlab.chaos.loadrun.live_run import read_live, run_dir_of

__all__ = [
    "error_rate_below",
    "live_status",
    "p99_below",
    "run_error_rate_below",
    "session_continuity",
]


def live_status(run_dir: str | None = None) -> dict[str, Any]:
    """The live status of the run (users, turns in flight, verdicts, recent P99 and errors).

    :param run_dir: the live run (default ``$LOADLAB_RUN_DIR``).
    """
    path = run_dir_of(run_dir)
    status = read_live(path)
    if status is None:
        raise ActivityFailed(f"no live status in {path} yet: is a load run recording there?")
    return status


def session_continuity(
    max_restarted: int = 0,
    max_duplicated: int = 0,
    max_failed: int | None = None,
    run_dir: str | None = None,
    *,
    max_failed_share: float | None = None,
) -> bool:
    """True while no more sessions than allowed lost state, doubled a side effect, or failed.

    :param max_restarted: sessions allowed to end ``restarted`` (state lost).
    :param max_duplicated: sessions allowed to end ``duplicated`` (a side effect twice).
    :param max_failed: sessions allowed to end ``failed`` (None: any number).
    :param run_dir: the live run (default ``$LOADLAB_RUN_DIR``).
    :param max_failed_share: failed sessions allowed, as a share of the sessions
        judged so far (0.02 = 2 %; None: any share).
    """
    sessions = _status(run_dir).get("sessions", {})
    counts = {k: int(v) for k, v in sessions.items() if isinstance(v, int | float)}
    ok = counts.get("restarted", 0) <= int(max_restarted) and counts.get("duplicated", 0) <= int(
        max_duplicated
    )
    failed = counts.get("failed", 0)
    if max_failed is not None:
        ok = ok and failed <= int(max_failed)
    judged = sum(counts.values())
    if max_failed_share is not None and judged:
        ok = ok and failed / judged <= float(max_failed_share)
    return ok


def run_error_rate_below(max_rate: float, run_dir: str | None = None) -> bool:
    """True when the share of failed turns over the whole run so far is at most ``max_rate``.

    Unlike :func:`error_rate_below` (the live window), this judges every turn
    since the start: checked after the method, it bounds the run's error rate.

    :param max_rate: the limit, as a fraction (0.02 = 2 %).
    :param run_dir: the live run (default ``$LOADLAB_RUN_DIR``).
    """
    status = _status(run_dir)
    done = int(status.get("turns_done", 0))
    failed = int(status.get("turns_failed", 0))
    return done == 0 or failed / done <= float(max_rate)


def p99_below(threshold_ms: float, run_dir: str | None = None) -> bool:
    """True when the P99 turn latency over the live window is below ``threshold_ms``.

    :param threshold_ms: the P99 limit, in milliseconds.
    :param run_dir: the live run (default ``$LOADLAB_RUN_DIR``).
    """
    p99 = _status(run_dir).get("window", {}).get("p99_ms")
    return p99 is None or float(p99) < threshold_ms


def error_rate_below(max_rate: float, run_dir: str | None = None) -> bool:
    """True when the share of failed turns over the live window is below ``max_rate``.

    :param max_rate: the limit, as a fraction (0.01 = 1 %).
    :param run_dir: the live run (default ``$LOADLAB_RUN_DIR``).
    """
    rate = _status(run_dir).get("window", {}).get("error_rate")
    return rate is None or float(rate) < max_rate


def _status(run_dir: str | None) -> dict[str, Any]:
    status = read_live(run_dir_of(run_dir))
    return status or {}
