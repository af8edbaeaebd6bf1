"""The stack's ``/metrics`` endpoints as a Prometheus ``file_sd`` targets file.

``<state dir>/prometheus/targets.json`` lists every server of the embedded stack
that exposes Prometheus metrics, one target group each:

* each ready agent pod, on its own metrics port (``component="agent"``,
  ``pod=<name>``): the shared agent port answers with any one replica's figures;
* the LLM simulator (``component="llm"``);
* the DynamoDB capacity gate (``component="dynamodb"``).

The file is rewritten (atomically, so Prometheus never reads half of it) every
time the set of ready pods changes: a deleted pod leaves it, its replacement
joins it once ready. Point a ``file_sd_configs`` entry of ``prometheus.yml`` at
it (see ``dashboards/prometheus.yml``). It is removed when the stack stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadlab.embedded.fleet import Fleet, Pod

log = logging.getLogger("loadlab.embedded")

TARGETS_FILE = Path("prometheus") / "targets.json"
"""Where the targets file lives, relative to the stack's state directory."""

TargetGroup = dict[str, Any]


def target_group(url: str, **labels: str) -> TargetGroup:
    """One ``file_sd`` group for the ``/metrics``-style ``url`` (its path becomes the label)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.port is None:
        raise ValueError(f"metrics URL {url!r} has no host:port")
    meta = {"__metrics_path__": parts.path or "/metrics", "__scheme__": parts.scheme or "http"}
    return {"targets": [parts.netloc], "labels": {**labels, **meta}}


def pod_groups(pods: Iterable[Pod]) -> list[TargetGroup]:
    """A group for each ready pod that has a metrics URL of its own."""
    return [
        target_group(pod.metrics_url, component="agent", pod=pod.name)
        for pod in sorted(pods, key=lambda p: p.name)
        if pod.ready and pod.deletion_timestamp is None and pod.metrics_url
    ]


class ScrapeTargets:
    """Keeps ``targets.json`` equal to the stack's live ``/metrics`` endpoints."""

    def __init__(self, path: Path, *, servers: Sequence[TargetGroup]) -> None:
        self.path = path
        self._servers = list(servers)
        self._task: asyncio.Task[None] | None = None
        self._written: list[TargetGroup] | None = None

    def write(self, pods: Iterable[Pod]) -> None:
        """Write the servers' and the ready pods' groups (only when they changed)."""
        groups = self._servers + pod_groups(pods)
        if groups == self._written:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(groups, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        self._written = groups

    def follow(self, fleet: Fleet) -> ScrapeTargets:
        """Write now, then again whenever the fleet's pods change (until :meth:`stop`)."""
        self.write(fleet.pods())
        self._task = asyncio.get_running_loop().create_task(self._follow(fleet))
        return self

    async def _follow(self, fleet: Fleet) -> None:
        while True:
            await fleet.wait_until(self._changed(self._written), timeout_s=None)
            try:
                self.write(fleet.pods())
            except OSError as exc:  # a full disk must not take the stack down
                log.warning("cannot write %s: %s", self.path, exc)
                await asyncio.sleep(1.0)

    def _changed(self, written: list[TargetGroup] | None) -> Callable[[list[Pod]], bool]:
        return lambda pods: self._servers + pod_groups(pods) != written

    async def stop(self) -> None:
        """Stop following and remove the file (its ports die with the stack)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
