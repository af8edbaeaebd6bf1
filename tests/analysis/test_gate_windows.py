"""Windowed gates judge every part of the run, its last second included."""

from __future__ import annotations

import numpy as np
import pytest

from loadlab.analysis.gate_figures import window_quantile, window_starts


@pytest.mark.parametrize(("t_end", "window_s"), [(108.7, 5.0), (105.0, 5.0), (103.0, 5.0)])
def test_the_last_window_ends_where_the_run_ends(t_end: float, window_s: float) -> None:
    starts = window_starts(100.0, t_end, window_s)
    assert starts[0] == 100.0
    assert starts[-1] + window_s == pytest.approx(max(t_end, 100.0 + window_s))
    assert np.all(np.diff(starts) <= 1.0 + 1e-9)


def test_slow_turns_in_the_last_fraction_of_a_second_count() -> None:
    # an aborted run: fast turns, then slow ones ending 0.3 s before the end
    times = np.array([100.5 + 0.25 * i for i in range(30)] + [108.4, 108.4, 108.4])
    values = np.array([300.0] * 30 + [3300.0] * 3)
    starts = window_starts(100.0, 108.7, 5.0)
    worst = window_quantile(times, values, 99, starts, 5.0)
    assert worst == 3300.0
