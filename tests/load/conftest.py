"""Fixtures for the load tests."""

from __future__ import annotations

import pytest
from load_testkit import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
