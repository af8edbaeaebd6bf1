"""Rows for tests, with every field a test does not care about set to a plain default.

from row_samples import request_sample  # tests/row_samples.py
request_sample(t_start=T0, instance_id="pod-a", cold_start=True)
"""

from __future__ import annotations

from typing import Any

from loadlab.rows import RequestSample

_REQUEST: dict[str, Any] = {
    "t_start": 1_700_000_000.0,
    "name": "turn",
    "session_id": "s",
    "turn_index": 0,
    "attempt": 1,
    "latency_ms": 10.0,
    "ttft_ms": None,
    "bytes": 1,
    "status": 200,
}


def request_sample(**fields: Any) -> RequestSample:
    """A successful request row; ``fields`` override its defaults."""
    return RequestSample(**(_REQUEST | fields))
