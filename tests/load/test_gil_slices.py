"""Shorter GIL slices while the load runs, the interval found given back at its stop."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from loadlab.load.gil_slices import SLICE_S, ShortGilSlices


@pytest.fixture(autouse=True)
def _interval_kept() -> Iterator[None]:
    found = sys.getswitchinterval()
    yield
    sys.setswitchinterval(found)


def test_the_load_runs_with_short_slices_and_gives_the_interval_back() -> None:
    sys.setswitchinterval(0.004)
    slices = ShortGilSlices()
    assert not slices.running
    slices.start()
    assert slices.running
    assert sys.getswitchinterval() == pytest.approx(SLICE_S)
    slices.stop()
    assert not slices.running
    assert sys.getswitchinterval() == pytest.approx(0.004)


def test_a_second_start_keeps_the_interval_first_found() -> None:
    sys.setswitchinterval(0.004)
    slices = ShortGilSlices(slice_s=0.002).start()
    slices.start()
    assert sys.getswitchinterval() == pytest.approx(0.002)
    slices.stop()
    slices.stop()  # a second stop changes nothing
    assert sys.getswitchinterval() == pytest.approx(0.004)


def test_slice_must_be_positive() -> None:
    with pytest.raises(ValueError, match="slice_s must be > 0, got 0"):
        ShortGilSlices(slice_s=0)
