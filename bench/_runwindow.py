"""Slices of a run directory by time: the rows of a measurement window.

Read through :func:`loadlab.analysis.rundata.load_run`; percentiles come from
:mod:`loadlab.analysis.stats` (exact, nearest-rank), as in loadlab's report.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from loadlab.analysis.rundata import RunData
from loadlab.analysis.stats import percentile


def test_start(data: RunData) -> float:
    """When Locust started the test (the ``test_start`` phase), else the run's start."""
    events = data.events
    starts = events[(events["kind"] == "phase") & (events["name"] == "test_start")]
    return float(starts["t"].min()) if len(starts) else data.t0


def turns_started(data: RunData, t_from: float, t_to: float) -> pd.DataFrame:
    """Turns that started inside [t_from, t_to)."""
    turns = data.turns
    return turns[(turns["t_start"] >= t_from) & (turns["t_start"] < t_to)]


@dataclass(frozen=True, slots=True)
class UserCount:
    """Locust's user count (sampled every second by loadlab) over a window."""

    samples: int
    low: int | None
    mean: float | None
    high: int | None


def users_between(data: RunData, t_from: float, t_to: float) -> UserCount:
    """The ``users`` samples of the run timeline inside [t_from, t_to]."""
    events = data.events
    rows = events[(events["kind"] == "users") & (events["t"] >= t_from) & (events["t"] <= t_to)]
    values = [int(a.get("users", 0)) for a in rows["attrs"] if isinstance(a, dict)]
    if not values:
        return UserCount(0, None, None, None)
    return UserCount(len(values), min(values), sum(values) / len(values), max(values))


def open_sessions_at(data: RunData, t: float) -> int:
    """Sessions begun and not yet ended at ``t`` (thinking or waiting for a turn)."""
    # A session's row is written when it ends; one still open when the run stopped
    # gets a row then too (reason "stopped"), so every session is counted.
    sessions = data.sessions
    return int(((sessions["t_start"] <= t) & (sessions["t_end"] >= t)).sum())


def in_flight_at(data: RunData, t: float) -> int:
    """Turns in progress at ``t``."""
    turns = data.turns
    return int(((turns["t_start"] <= t) & (turns["t_end"] >= t)).sum())


def p(values: pd.Series, q: float) -> float | None:
    """Nearest-rank percentile ``q`` (loadlab's own)."""
    return percentile(values, q)
