"""Test-wide fixtures: every test starts from a clean, secret-free environment."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.rows import RequestSample, SessionRecord, TimelineEvent, TurnRecord

_ISOLATED_PREFIXES = ("AWS_", "LOADLAB_", "KUBERNETES_", "LOCUST_")
REPO = Path(__file__).resolve().parents[1]
MINISTACK = REPO / ".venv-ministack" / "bin" / "ministack"
STARTUP_TIMEOUT_S = 30.0


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


def build_fault_run(path: Path, *, recover_at: float | None = 115.0) -> Path:
    """A run around one pod kill whose consequences are known exactly.

    Seconds are since ``T0``; the run lasts 200 s.

    * Background turns end every 0.5 s (0.5 .. 199.5) in session ``s-bg`` (not in
      the sessions table) and are never in flight at a fault. Normally they take
      100 + (k % 10) * 10 ms, so the P99 of any 30 s window is 190 ms. Those ending
      in [100, ``recover_at``) take 400 ms (over 1.1 x 190), so with 5 s buckets
      aligned on the fault P99 is back at ``recover_at``; ``None`` keeps them slow
      to the end.
    * Fault ``f1`` "terminate pods" on pod-1 starts at 100 and ends (succeeded)
      at 102; fault ``f2`` "throttle function" on fn-agent starts at 101 and has
      no end event.
    * Sessions: s-A 90..110 resumed (turn A 99..104 interrupted, ok after 2
      attempts); s-B 95..126 failed (turn B 99.5..125 interrupted, failed after 3
      attempts); s-C 60..101 clean (turn C 98..100.2 ok; an interrupted turn at
      68.9..69, before the fault); s-D 60..100 clean (ends as f1 lands, with a
      failed turn 80.85..81); s-E 100..150 restarted (interrupted turn 105..108,
      ok); s-F 101.5..107 failed (starts while f1 runs; failed turn 106..106.1);
      s-G 10..50 clean; s-H 150..190 duplicated. A failed 4 s turn 112..116 (in
      s-bg) never counts towards P99 or recovery.
    * Requests: one per background turn, one for D (an error), two for A (a reset
      ending at 100.1, then the successful retry).
    """
    run_dir = RunDirectory(path)
    path.mkdir(parents=True)
    run_dir.write_manifest(
        RunManifest(
            run_id="faults",
            name="faults",
            started_at=T0,
            scenario_path=None,
            scenario_sha256=None,
            scenario={},
            target={"url": "http://127.0.0.1:9"},
            versions={},
            seed=1,
            ended_at=T0 + 200,
        )
    )
    slow_until = 1e9 if recover_at is None else recover_at

    def turn(
        session: str,
        start: float,
        end: float,
        *,
        index: int = 1,
        ok: bool = True,
        attempts: int = 1,
        interrupted: bool = False,
    ) -> TurnRecord:
        return TurnRecord(
            t_start=T0 + start,
            t_end=T0 + end,
            session_id=session,
            turn_index=index,
            intent="search",
            ok=ok,
            attempts=attempts,
            latency_ms=(end - start) * 1000.0,
            ttft_ms=None,
            interrupted=interrupted,
            error_kind=None if ok else "reset",
        )

    def request(
        session: str, start: float, latency_s: float, *, error: str | None = None
    ) -> RequestSample:
        return RequestSample(
            t_start=T0 + start,
            name="turn:search",
            session_id=session,
            turn_index=1,
            attempt=1,
            latency_ms=latency_s * 1000.0,
            ttft_ms=None,
            bytes=10,
            status=200 if error is None else 0,
            error_kind=error,
        )

    with RunRecorder(run_dir) as rec:
        for k in range(1, 400):
            end = k * 0.5
            latency = 0.4 if 100 <= end < slow_until else 0.1 + (k % 10) * 0.01
            rec.emit(turn("s-bg", end - latency, end, index=k))
            rec.emit(request("s-bg", end - latency, latency))
        rec.emit(turn("s-A", 99.0, 104.0, ok=True, attempts=2, interrupted=True))
        rec.emit(request("s-A", 99.0, 1.1, error="reset"))
        rec.emit(request("s-A", 100.5, 3.5))
        rec.emit(turn("s-B", 99.5, 125.0, ok=False, attempts=3, interrupted=True))
        rec.emit(turn("s-C", 68.9, 69.0, interrupted=True))
        rec.emit(turn("s-C", 98.0, 100.2, index=2))
        rec.emit(turn("s-D", 80.85, 81.0, ok=False))
        rec.emit(request("s-D", 80.85, 0.15, error="http_status"))
        rec.emit(turn("s-E", 105.0, 108.0, interrupted=True))
        rec.emit(turn("s-F", 106.0, 106.1, ok=False))
        rec.emit(turn("s-bg", 112.0, 116.0, ok=False))
        for sid, start, end, verdict in [
            ("s-A", 90, 110, "resumed"),
            ("s-B", 95, 126, "failed"),
            ("s-C", 60, 101, "clean"),
            ("s-D", 60, 100, "clean"),
            ("s-E", 100, 150, "restarted"),
            ("s-F", 101.5, 107, "failed"),
            ("s-G", 10, 50, "clean"),
            ("s-H", 150, 190, "duplicated"),
        ]:
            rec.emit(
                SessionRecord(
                    session_id=sid,
                    persona="p",
                    seed=0,
                    t_start=T0 + start,
                    t_end=T0 + end,
                    turns_planned=3,
                    turns_done=3,
                    interrupted_turns=0,
                    verdict=verdict,
                    verdict_reason=f"{verdict} by design",
                    resume_latency_ms=4000.0 if verdict == "resumed" else None,
                )
            )
        kill = "chaosk8s.pod.actions.terminate_pods"
        throttle = "chaosaws.awslambda.actions.put_function_concurrency"
        for t, fault_id, name, target, attrs in [
            (100.0, "f1", "terminate pods", "label_selector=app=agent", {"phase": "start"}),
            (101.0, "f2", "throttle function", "function_name=fn-agent", {"activity": throttle}),
            (102.0, "f1", "terminate pods", "pod-1", {"phase": "end", "status": "succeeded"}),
        ]:
            rec.emit(
                TimelineEvent(
                    t=T0 + t,
                    kind="fault",
                    name=name,
                    target=target,
                    attrs={"fault_id": fault_id, "phase": "start", "status": None, "activity": kill}
                    | attrs,
                )
            )
    return path


@pytest.fixture
def fault_run(tmp_path: Path) -> Callable[..., Path]:
    def make(**kwargs: float | None) -> Path:
        return build_fault_run(tmp_path / "faults", **kwargs)

    return make


def run_tiny_experiment(directory: Path, *, deviate: bool) -> Path:
    """Run a real ``chaos run`` on a tiny experiment in ``directory``; return its journal.

    The hypothesis: the current directory and ``marker/`` exist (``os.path.isdir``).
    The method removes ``marker/`` when ``deviate`` (so the hypothesis after the
    method deviates on probe ``marker-exists``), tries to remove a directory that
    does not exist (an action that fails), and lists the directory (a probe). The
    rollback recreates ``marker/``.
    """
    import json
    import subprocess
    import sys

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "marker").mkdir(exist_ok=True)

    def python(
        activity: str, kind: str, module: str, func: str, **arguments: object
    ) -> dict[str, object]:
        provider = {"type": "python", "module": module, "func": func, "arguments": arguments}
        return {"type": kind, "name": activity, "provider": provider}

    method = [
        python("remove-missing", "action", "os", "rmdir", path="no-such-dir"),
        python("list-cwd", "probe", "os", "listdir", path="."),
    ]
    if deviate:
        method.insert(0, python("remove-marker", "action", "os", "rmdir", path="marker"))
    experiment = {
        "version": "1.0.0",
        "title": "the marker survives",
        "description": "loadlab test experiment",
        "steady-state-hypothesis": {
            "title": "marker exists",
            "probes": [
                python("cwd-exists", "probe", "os.path", "isdir", s=".") | {"tolerance": True},
                python("marker-exists", "probe", "os.path", "isdir", s="marker")
                | {"tolerance": True},
            ],
        },
        "method": method,
        "rollbacks": [
            python("restore-marker", "action", "os", "makedirs", name="marker", exist_ok=True)
        ],
    }
    (directory / "experiment.json").write_text(json.dumps(experiment))
    journal = directory / "journal.json"
    chaos = Path(sys.executable).parent / "chaos"
    subprocess.run(
        [
            str(chaos),
            "--no-version-check",
            "--no-log-file",
            "--settings",
            str(directory / "settings.yaml"),
            "run",
            "--journal-path",
            str(journal),
            "--no-verify-tls",
            "--rollback-strategy",
            "always",
            "experiment.json",
        ],
        cwd=directory,
        check=False,
        capture_output=True,
        timeout=120,
    )
    assert journal.exists(), "chaos run wrote no journal"
    return journal


@pytest.fixture(scope="session")
def chaos_journals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real Chaos Toolkit journals: ``deviated`` and ``met`` (see run_tiny_experiment)."""
    root = tmp_path_factory.mktemp("chaos")
    return {
        "deviated": run_tiny_experiment(root / "deviated", deviate=True),
        "met": run_tiny_experiment(root / "met", deviate=False),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ministack on a free loopback port for this module; yields its endpoint URL."""
    if not MINISTACK.exists():
        pytest.skip(f"ministack is not installed at {MINISTACK}; run scripts/bootstrap")
    workdir = tmp_path_factory.mktemp("ministack")
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
    }
    endpoint = f"http://127.0.0.1:{port}"
    with (workdir / "ministack.log").open("wb") as log:
        process = subprocess.Popen(
            [str(MINISTACK)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                log_text = (workdir / "ministack.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"ministack exited with {process.returncode}:\n{log_text}")
            try:
                with urllib.request.urlopen(f"{endpoint}/_ministack/health", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"ministack did not answer within {STARTUP_TIMEOUT_S} s")
                time.sleep(0.1)  # no readiness event to await: poll the health endpoint
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
