"""A misbehaving agent (tests/hostile/hostile_agent.py) against the real Locust-side client.

The client runs in its own process, as under Locust (gevent, geventhttpclient),
through tests/hostile/client_run.py, which also samples that process's memory.
Each test names the finding of issue 14 it holds: out-of-range numbers are
``malformed`` turns (not ``reset``), memory stays flat with 50 MB answers, and a
trickling stream is cut at the turn's deadline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_agent import OVERFLOWS, HostileAgent

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).resolve().parent / "client_run.py"
FLOOD_BYTES = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def agent() -> Iterator[HostileAgent]:
    with HostileAgent(flood_bytes=FLOOD_BYTES, trickle_s=0.3) as server:
        yield server


def _client(
    agent: HostileAgent,
    mode: str,
    *,
    users: int = 1,
    turns: int = 1,
    timeout_s: float = 10.0,
    deadline_s: float = 60.0,
    answer_kib: int = 64,
    event_kib: int = 1024,
) -> dict[str, Any]:
    args = [users, turns, timeout_s, deadline_s, answer_kib, event_kib]
    proc = subprocess.run(
        [sys.executable, str(CLIENT), agent.url, mode, *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


def test_numbers_the_run_cannot_hold_make_malformed_turns_not_resets(agent: HostileAgent) -> None:
    out = _client(agent, "overflow", turns=len(OVERFLOWS))
    kinds = [r["error_kind"] for r in out["results"]]
    assert kinds == ["malformed"] * len(OVERFLOWS), out["results"]
    assert all("ddb_calls" in r["error"] for r in out["results"])


@pytest.mark.parametrize(
    ("mode", "kind", "says"),
    [
        ("healthy", None, None),
        ("never", "timeout", "no response within 0.5 s"),
        ("stall", "timeout", "no data for 0.5 s"),
        ("reset", "reset", "connection closed"),
        ("status5xx", "http_status", "HTTP 503: not_ready"),
        ("html", "malformed", "expected text/event-stream"),
        ("garbage", "malformed", "invalid UTF-8"),
        ("headers", None, None),  # 256 KiB of headers: read, not a crash
        ("trickle", "deadline", "deadline of 1.5 s"),
    ],
)
def test_each_misbehaviour_is_a_turn_with_its_error_kind(
    agent: HostileAgent, mode: str, kind: str | None, says: str | None
) -> None:
    out = _client(agent, mode, timeout_s=0.5, deadline_s=1.5)
    (result,) = out["results"]
    assert result["error_kind"] == kind, result
    assert says is None or says in result["error"]
    assert result["wall_s"] < 3.0


def test_memory_stays_flat_with_50_mb_answers(agent: HostileAgent) -> None:
    # 5 users each read 50 MB of valid tokens, then 5 read 50 MB of data lines with
    # no blank line: kept text and held event data are bounded, so memory is too.
    flood = _client(agent, "flood", users=5)
    for result in flood["results"]:
        assert result["error_kind"] is None
        assert result["bytes"] > FLOOD_BYTES
        assert result["answer_bytes"] >= FLOOD_BYTES * 0.95
        assert result["kept"] == 64 * 1024 and result["truncated"] is True
    lines = _client(agent, "datalines", users=5)
    for result in lines["results"]:
        assert result["error_kind"] == "malformed"
        assert "event data longer than 1048576 bytes" in result["error"]
    for out in (flood, lines):
        assert out["peak_rss"] < 2 * out["baseline_rss"], (
            f"RSS {out['peak_rss'] >> 20} MiB from a baseline of {out['baseline_rss'] >> 20} MiB"
        )


def test_a_trickling_stream_is_cut_at_the_turn_deadline(agent: HostileAgent) -> None:
    # A comment byte every 0.3 s never lets the 0.5 s idle timeout fire.
    out = _client(agent, "trickle", timeout_s=0.5, deadline_s=1.5)
    (result,) = out["results"]
    assert result["error_kind"] == "deadline", result
    assert "1.5 s" in result["error"]
    assert 1.5 <= result["wall_s"] < 3.0


def test_locust_users_stay_flat_in_memory_with_50_mb_answers() -> None:
    # The whole user: ShoppingSessionUser, its session player (which keeps each
    # session's answers) and the recorder's rows, under a Locust runner.
    with HostileAgent(mode="flood", flood_bytes=FLOOD_BYTES) as agent:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tests/hostile/locust_flood.py"), agent.url,
             "flood-secret-0123456789abcdef0123456789", "5", "10"],
            capture_output=True, text=True, timeout=150, cwd=ROOT, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout)
    assert len(out["turns"]) >= 10
    assert all(t["ok"] and t["truncated"] and t["answer_bytes"] > 48 * 2**20 for t in out["turns"])
    assert out["peak_rss"] < 2 * out["baseline_rss"], (
        f"RSS {out['peak_rss'] >> 20} MiB from a baseline of {out['baseline_rss'] >> 20} MiB"
    )
