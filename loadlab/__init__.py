"""loadlab: load generation and chaos testing for AI agent endpoints."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
