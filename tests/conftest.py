"""Test-wide fixtures: every test starts from a clean, secret-free environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.timeline import RequestSample, SessionRecord, TimelineEvent, TurnRecord

_ISOLATED_PREFIXES = ("AWS_", "LOADLAB_", "KUBERNETES_", "LOCUST_")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remove AWS, Kubernetes, Locust and loadlab settings so no test reaches a real account."""
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES) or name == "KUBECONFIG":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    yield


T0 = 1_700_000_000.0


def build_known_run(path: Path, *, slo: dict[str, float] | None = None) -> Path:
    """A run whose true numbers are known: 100 turns with latencies 1..100 s, 4 errors."""
    run_dir = RunDirectory(path)
    path.mkdir(parents=True)
    run_dir.write_manifest(
        RunManifest(
            run_id="known",
            name="known",
            started_at=T0,
            scenario_path="scenarios/x.yaml",
            scenario_sha256=None,
            scenario={"slo": slo or {}},
            target={"url": "http://127.0.0.1:9"},
            versions={},
            seed=7,
            ended_at=T0 + 200,
        )
    )
    with RunRecorder(run_dir) as rec:
        for i in range(1, 101):
            intent = "search" if i % 2 else "add_to_cart"
            start = T0 + i
            rec.emit(
                RequestSample(
                    t_start=start,
                    name=f"turn:{intent}",
                    session_id=f"s{i % 10}",
                    turn_index=i,
                    attempt=1,
                    latency_ms=i * 1000.0,
                    ttft_ms=float(i),
                    bytes=100,
                    status=200,
                    cold_start=i <= 3,
                    init_ms=800.0 if i <= 3 else None,
                    instance_id=f"pod-{i % 3}",
                )
            )
            rec.emit(
                TurnRecord(
                    t_start=start,
                    t_end=start + i,
                    session_id=f"s{i % 10}",
                    turn_index=i,
                    intent=intent,
                    ok=True,
                    attempts=1,
                    latency_ms=i * 1000.0,
                    ttft_ms=float(i),
                    interrupted=False,
                    cold_start=i <= 3,
                    ddb_calls=2,
                    ddb_wcu=1.0,
                    llm_calls=1,
                    tokens_out=10,
                )
            )
        for j in range(4):
            rec.emit(
                RequestSample(
                    t_start=T0 + 150 + j,
                    name="turn:search",
                    session_id="s-err",
                    turn_index=1,
                    attempt=j + 1,
                    latency_ms=5.0,
                    ttft_ms=None,
                    bytes=0,
                    status=0 if j < 3 else 503,
                    error_kind="reset" if j < 3 else "http_status",
                    error="connection reset mid-stream",
                )
            )
        rec.emit(
            TurnRecord(
                t_start=T0 + 150,
                t_end=T0 + 154,
                session_id="s-err",
                turn_index=1,
                intent="search",
                ok=False,
                attempts=4,
                latency_ms=5.0,
                ttft_ms=None,
                interrupted=True,
                error_kind="http_status",
            )
        )
        for k, verdict in enumerate(["clean"] * 6 + ["resumed"] * 2 + ["restarted", "failed"]):
            rec.emit(
                SessionRecord(
                    session_id=f"s{k}",
                    persona="p",
                    seed=k,
                    t_start=T0 + k,
                    t_end=T0 + 100 + k,
                    turns_planned=10,
                    turns_done=10,
                    interrupted_turns=1 if verdict != "clean" else 0,
                    verdict=verdict,
                    verdict_reason="",
                    resume_latency_ms=(1000.0 * k) if verdict == "resumed" else None,
                )
            )
        for t in range(0, 200, 10):
            rec.emit(TimelineEvent(t=T0 + t, kind="users", name="users", attrs={"users": t}))
        rec.emit(TimelineEvent(t=T0 + 60, kind="fault", name="delete pod", target="pod-1"))
    return path


@pytest.fixture
def known_run(tmp_path: Path) -> Callable[..., Path]:
    def make(**kwargs: dict[str, float]) -> Path:
        return build_known_run(tmp_path / "run", **kwargs)

    return make
