"""The Locust-facing parts, each run in its own process (importing Locust patches gevent in).

An aiohttp test double of the remote agent (tests/load/load_agent_server.py)
runs in this process; the scripts in tests/load/locust_runs/ drive the
geventhttpclient transport, the shapes and a whole Locust Environment against
it and print JSON for the assertions here.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from load_agent_server import AgentServer

from loadlab.report.render import RenderedReport, headline, render_run

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUNS = Path(__file__).resolve().parent / "locust_runs"
SECRET = "integration-secret-0123456789abcdef0123"


def _run(*args: str) -> Any:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=90, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def agent() -> Iterator[AgentServer]:
    with AgentServer(secret=SECRET) as server:
        yield server


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_fasthttp_transport_classifies_real_failures(agent: AgentServer, refused_url: str) -> None:
    out = _run(str(RUNS / "fasthttp_cases.py"), agent.url, SECRET, refused_url)
    assert out["healthy"] == {
        "error_kind": None,
        "status": 200,
        "tokens": 2,
        "ttft": True,
        "bytes": out["healthy"]["bytes"],
        "retry_after_s": None,
        "cart": {"P-0042": 1},
    }
    assert out["healthy"]["bytes"] > 0
    kinds = {name: case["error_kind"] for name, case in out.items()}
    assert kinds == {
        "healthy": None,
        "garbage": "malformed",
        "slow": "timeout",
        "drip": None,
        "cut": "reset",
        "throttle": "throttled",
        "status503": "http_status",
        "auth": "auth",
        "refused": "connect",
        "after": None,
    }
    assert out["cut"]["tokens"] == 1 and out["cut"]["ttft"]
    assert out["slow"]["tokens"] == 1
    # The timeout bounds each wait for more data, not the whole stream.
    assert out["drip"]["tokens"] == 2
    assert out["throttle"]["retry_after_s"] == 0.0
    assert out["refused"]["status"] == 0


def test_shapes_tick_on_a_fake_clock() -> None:
    out = _run(str(RUNS / "shape_ticks.py"))
    assert out["flash_sale"] == [[10, 10.0], [60, 10.0], [110, 50], [60, 10.0], None]
    assert out["step"] == [[1, 2], [3, 2], None]
    assert out["spike"] == [[1, 8], [9, 8], [1, 8], None]
    assert out["soak_scaled"] == [[5, 10.0], [10, 10.0], None]
    assert out["default_flash_sale"] is True
    assert "peak_users" in out["bad_args"]
    assert out["scenario_shape"] == [[4, 8.0], [4, 8.0], None]
    assert "environment.loadlab" in out["unset"]


def test_locustfile_exposes_one_user_and_the_scenario_shape() -> None:
    code = (
        "import json, sys\n"
        "from locust.util.load_locustfile import load_locustfile\n"
        "users, shapes = load_locustfile(sys.argv[1])\n"
        "print(json.dumps([sorted(users), [type(s).__name__ for s in shapes]]))\n"
    )
    users, shapes = _run("-c", code, str(ROOT / "scenarios" / "shopping_assistant.py"))
    assert users == ["ShoppingSessionUser"]
    assert shapes == ["ScenarioShape"]


def test_locust_environment_rows_agree_with_stats_and_verdicts_with_the_truth(
    agent: AgentServer,
) -> None:
    out = _run(str(RUNS / "session_users.py"), agent.url, SECRET)
    assert out["stopped_by_shape"] is True
    assert out["user_errors"] == []
    requests, turns, sessions = out["requests"], out["turns"], out["sessions"]

    # Locust's own statistics count exactly the attempts loadlab recorded.
    stats = out["stats"]
    assert stats["requests"] == len(requests) > 20
    assert stats["failures"] == sum(1 for r in requests if r["error_kind"])
    assert set(stats["entries"]) == {f"SSE:{r['name']}" for r in requests}
    assert set(stats["errors"]) == {"reset (HTTP 200)"}

    # Rows agree with each other: attempts per turn, completed turns per session.
    attempts = Counter((r["session_id"], r["turn_index"]) for r in requests)
    for turn in turns:
        assert attempts[(turn["session_id"], turn["turn_index"])] == turn["attempts"]
    ok_turns: defaultdict[str, int] = defaultdict(int)
    for turn in turns:
        ok_turns[turn["session_id"]] += turn["ok"]
    assert len({s["session_id"] for s in sessions}) == len(sessions)
    for session in sessions:
        assert session["turns_done"] == ok_turns[session["session_id"]]
        assert session["worker"] == "w1"

    # Verdicts match what the agent double actually did to each session.
    expected = {"resumable": "resumed", "duplicating": "duplicated", "forgetful": "restarted"}
    judged = Counter()
    for session in sessions:
        sid = session["session_id"]
        if sid in agent.cut_sessions and session["turns_done"] >= 2:
            assert session["verdict"] == expected[agent.cut_sessions[sid]], session
            judged[session["verdict"]] += 1
        elif sid not in agent.cut_sessions:
            assert session["verdict"] == "clean", session
            judged["clean"] += 1
    assert set(judged) == {"clean", "resumed", "duplicated", "restarted"}, judged
    # Shapes stop users mid-session: those sessions still have their row.
    assert any(s["verdict_reason"] == "stopped" for s in sessions)


def _lateness_run(agent: AgentServer, tmp_path: Path, mode: str) -> RenderedReport:
    run = tmp_path / mode
    proc = subprocess.run(
        [sys.executable, str(RUNS / "lateness_users.py"), agent.url, SECRET, str(run), mode],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return render_run(run)


def test_a_user_blocking_the_loop_makes_turns_late_and_the_report_warns(
    agent: AgentServer, tmp_path: Path
) -> None:
    out = _lateness_run(agent, tmp_path, "blocked")
    late = out.summary.harness_lateness_ms
    # The blocker holds the loop 200 ms of every ~300 ms: turns due meanwhile wait for it.
    assert late.count > 50
    assert late.p99 is not None and late.p99 > 100
    assert late.distorted and late.warning is not None
    assert "harness lateness P99 = " in late.warning
    assert "coordinated omission" in late.warning
    html = out.html_path.read_text()
    assert 'id="harness-lateness"' in html and "harness lateness P99" in html
    assert "> Warning: harness lateness P99" in out.markdown_path.read_text()
    assert "WARNING" in headline(out.summary)
    # a warning, not a verdict: the run still passes on its own evidence
    summary = json.loads(out.summary_path.read_text())
    assert summary["harness_lateness_ms"]["distorted"] is True


def test_a_normal_run_has_small_lateness(agent: AgentServer, tmp_path: Path) -> None:
    out = _lateness_run(agent, tmp_path, "normal")
    late = out.summary.harness_lateness_ms
    assert late.count > 50
    # 20 shoppers leave the loop idle almost all the time: turns go out on time
    # (the bound is generous for a shared machine; the blocked run's P99 is > 100 ms)
    assert late.p99 is not None and late.p99 < 50


def test_keep_alive_holds_with_descriptors_above_1023(agent: AgentServer) -> None:
    # geventhttpclient's liveness check (select) refuses descriptors above 1023, and
    # its pool then closed every kept-alive connection: at 5,000 sessions each turn
    # paid a name lookup, a connect and a close, and queued on gevent's thread pool.
    out = _run(str(RUNS / "many_connections.py"), agent.url)
    assert min(out["fds"]) > 1023
    assert len(set(out["ports"])) == 1, out  # one connection carried all three requests


def test_failed_requests_leave_no_cyclic_garbage() -> None:
    # The collector is off while the load runs (loadlab.load.gc_pause): a refused
    # connection or a timeout left 30-50 objects in reference cycles each, until the
    # load stopped (the transport now clears a handled failure's traceback). A few
    # dozen objects once (the first connection's) are not per failure.
    n = 200
    out = _run(str(RUNS / "failure_cycles.py"), str(n))
    assert out["refused"]["kinds"] == ["connect"]
    assert out["stall"]["kinds"] == ["timeout"]
    assert out["reset"]["kinds"] == ["reset"]
    assert out["cut"]["kinds"] == ["malformed"] or out["cut"]["kinds"] == ["reset"]
    for kind, seen in out.items():
        assert seen["garbage"] < n // 2, (kind, seen)
