"""Locust plugin that connects loadlab's users to the run directory (placeholder, being written)."""

from __future__ import annotations

from typing import Any


def register(events: Any) -> None:
    """Register loadlab's command-line options and recorder on Locust's event hooks."""
    del events
