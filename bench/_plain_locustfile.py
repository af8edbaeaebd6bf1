"""The baseline of bench/efficiency.py: plain Locust ``FastHttpUser``, no loadlab.

Each user POSTs the same turn request a ``ShoppingSessionUser`` sends (same
path shape, headers and JSON body) with no think time, and reads the SSE
stream to its end with Locust's own ``iter_lines``. It does none of loadlab's
work: no SSE parsing, no ledger, no session planning, no run directory. A new
session id every ``TURNS_PER_SESSION`` turns keeps the server's state small.

The time each turn's stream ended is kept in memory and written, one float a
line, to ``--completions-file`` when Locust quits, so the benchmark can count
turns inside the same window it measures CPU in.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

TURNS_PER_SESSION = 7
MESSAGES = (
    "Show me what's on sale today",
    "Search for running shoes",
    "Add P-0042 to my cart",
    "Compare P-0042 and P-0107",
    "What's the shipping cost to my address?",
    "Where is my order?",
    "Remove P-0042 from my cart",
)
# The same shape as a session token (the canned server does not check it).
BEARER = "Bearer " + "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "x" * 110


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument("--completions-file", default="", help="where to write turn end times")


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    environment.bench_completions = []
    environment.bench_sessions = itertools.count()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    path = environment.parsed_options.completions_file if environment.parsed_options else ""
    if path:
        times = environment.bench_completions
        Path(path).write_text("".join(f"{t:.6f}\n" for t in times))


class PlainStreamingUser(FastHttpUser):
    """POST a turn, read the stream to its end, repeat at once."""

    wait_time = constant(0)
    concurrency = 2  # as ShoppingSessionUser

    def on_start(self) -> None:
        """Start the first session."""
        self._new_session()

    def _new_session(self) -> None:
        self.session_id = f"plain-{next(self.environment.bench_sessions):06d}"
        self.turn_no = 0

    @task
    def turn(self) -> None:
        """One turn of the session; a new session after the last."""
        if self.turn_no >= TURNS_PER_SESSION:
            self._new_session()
        self.turn_no += 1
        body = json.dumps(
            {"turn": self.turn_no, "message": MESSAGES[(self.turn_no - 1) % len(MESSAGES)]}
        )
        headers = {
            "Accept": "text/event-stream",
            "Content-Type": "application/json",
            "Idempotency-Key": f"{self.session_id}-t{self.turn_no}",
            "Authorization": BEARER,
        }
        for _line in self.client.iter_lines(
            f"/v1/sessions/{self.session_id}/turns",
            method="POST",
            data=body,
            headers=headers,
            name="turn",
        ):
            pass
        self.environment.bench_completions.append(time.time())
