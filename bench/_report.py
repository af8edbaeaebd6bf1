"""What every benchmark prints: its command, parameters, machine facts and a markdown table."""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def wrk_version() -> str | None:
    """``wrk``'s version line, or None when wrk is not installed."""
    path = shutil.which("wrk")
    if path is None:
        return None
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "installed (version unknown)"
    first = (out.stdout or out.stderr).strip().split()
    return " ".join(first[:2]) if first else "installed"


def machine_facts() -> dict[str, str]:
    """nproc, CPU model, Python, Locust, loadlab, wrk and the load average now."""
    load = os.getloadavg()
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "locust": _version("locust"),
        "loadlab": _version("loadlab"),
        "wrk": wrk_version() or "not installed",
        "kernel": platform.release(),
        "load average at start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "date (UTC)": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def print_header(title: str, params: Mapping[str, Any]) -> None:
    """Print the command, the parameters and the machine facts."""
    print(f"# {title}\n")
    print("command:    " + shlex.join([sys.executable, *sys.argv]))
    print("parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    facts = machine_facts()
    print("machine:    " + ", ".join(f"{k}={v}" for k, v in facts.items()))
    print(flush=True)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table (cells formatted with :func:`cell`)."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def cell(value: Any) -> str:
    """A table cell: None as a dash, floats with sensible precision."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def progress(message: str) -> None:
    """A progress line on stderr (the report itself goes to stdout)."""
    sys.stderr.write(f"bench: {message}\n")
    sys.stderr.flush()
