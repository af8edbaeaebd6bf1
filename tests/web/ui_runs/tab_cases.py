"""The loadlab tab on Locust's real web UI (Flask test client); prints what it served as JSON.

Run in its own process (importing locust patches gevent in; see
tests/web/test_web_tab.py): ``python tab_cases.py WORK_DIR``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

WORK = Path(sys.argv[1])
sys.argv = ["locust"]  # Locust's web UI reads its own command line

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: conftest's builders

from conftest import build_fault_run  # noqa: E402
from locust import User, task  # noqa: E402
from locust.env import Environment  # noqa: E402

from loadlab.analysis.rundata import load_run  # noqa: E402
from loadlab.app.locust_plugin.web_tab import REPORT_PATH, SESSIONS_CSV, LoadlabTab  # noqa: E402
from loadlab.measure.live_status import LiveWindow  # noqa: E402
from loadlab.measure.rundir import RunDirectory  # noqa: E402
from loadlab.rows import PressureSample  # noqa: E402

T0 = 1_700_000_000.0


class _Idle(User):
    @task
    def nothing(self) -> None:  # never spawned
        pass


def web_ui() -> Any:
    """Locust's web UI on a local runner, not listening (the test client calls it)."""
    environment = Environment(user_classes=[_Idle])
    environment.create_local_runner()
    return environment.create_web_ui("127.0.0.1", 0, delayed_start=True)


def extended(client: Any) -> Any:
    """The ``extended_stats`` of ``/stats/requests``, as the browser gets them."""
    answer = client.get("/stats/requests")
    return {"status": answer.status_code, "extended_stats": answer.get_json()["extended_stats"]}


def played(run_dir: Path) -> LiveWindow:
    """A window that saw the run's rows as they were emitted (as dicts, as forwarded)."""
    run = load_run(run_dir)
    window = LiveWindow(window_s=30.0)
    for table, frame in (("requests", run.requests), ("turns", run.turns)):
        window.observe_dicts(table, frame.to_dict("records"))
    window.observe_dicts("sessions", run.sessions.to_dict("records"))
    return window


def fault_run_case() -> dict[str, Any]:
    """The pod-kill run of tests/conftest.py at 110 s (fault f2 running) and at 200 s."""
    path = build_fault_run(WORK / "faults")
    ui = web_ui()
    clock = [T0 + 110.0]
    LoadlabTab(
        web_ui=ui,
        window=played(path),
        run_dir=RunDirectory(path),
        users=lambda: 7,
        clock=lambda: clock[0],
        off_loop=lambda work: work(),
    ).install()
    client = ui.app.test_client()
    page = client.get("/").get_data(as_text=True)
    at_110 = extended(client)
    clock[0] = T0 + 200.0
    at_200 = extended(client)
    return {
        "page": page,
        "at_110": at_110,
        "at_200": at_200,
        "verdicts": load_run(path).sessions["verdict"].value_counts().to_dict(),
    }


def percentiles_case() -> dict[str, Any]:
    """100 successful turns of 1..100 ms (TTFT 1001..1100 ms) in the last 30 s."""
    window = LiveWindow(window_s=30.0)
    window.observe_dicts(
        "turns",
        [
            {
                "t_start": T0 + i / 10,
                "t_end": T0 + i / 10 + i / 1000,
                "ok": True,
                "ttft_ms": float(1000 + i),
            }
            for i in range(1, 101)
        ],
    )
    (WORK / "percentiles").mkdir()
    ui = web_ui()
    LoadlabTab(
        web_ui=ui,
        window=window,
        run_dir=RunDirectory(WORK / "percentiles"),
        clock=lambda: T0 + 20,
    ).install()
    return extended(ui.app.test_client())


def downloads_case() -> dict[str, Any]:
    """The session CSV, and the report before and after it exists."""
    path = build_fault_run(WORK / "downloads")
    ui = web_ui()
    LoadlabTab(web_ui=ui, window=LiveWindow(), run_dir=RunDirectory(path)).install()
    client = ui.app.test_client()
    csv = client.get(SESSIONS_CSV)
    missing = client.get(REPORT_PATH)
    before = extended(client)
    (path / "report.html").write_text("<html>the report</html>")
    found = client.get(REPORT_PATH)
    return {
        "csv": {
            "status": csv.status_code,
            "mimetype": csv.mimetype,
            "disposition": csv.headers.get("Content-Disposition", ""),
            "text": csv.get_data(as_text=True),
        },
        "session_ids": sorted(load_run(path).sessions["session_id"]),
        "missing": {"status": missing.status_code, "text": missing.get_data(as_text=True)},
        "before": before,
        "found": {"status": found.status_code, "text": found.get_data(as_text=True)},
    }


def left_alone_case() -> dict[str, Any]:
    """Answers of other routes (404, 500) pass through untouched."""
    (WORK / "alone").mkdir()
    ui = web_ui()
    LoadlabTab(web_ui=ui, window=LiveWindow(), run_dir=RunDirectory(WORK / "alone")).install()

    @ui.app.route("/elsewhere/<int:status>")
    def elsewhere(status: int) -> Any:
        return "plain", status

    client = ui.app.test_client()
    out = {}
    for status in (404, 500):
        answer = client.get(f"/elsewhere/{status}")
        out[str(status)] = {"status": answer.status_code, "text": answer.get_data(as_text=True)}
    return out


def downstream_case() -> dict[str, Any]:
    """LLM calls reported by two turns and sampled twice from the simulator's counter."""
    window = LiveWindow()
    window.observe_dicts(
        "turns",
        [
            {"t_start": T0, "t_end": T0 + 1, "ok": True, "llm_calls": 2, "llm_throttles": 1},
            {"t_start": T0, "t_end": T0 + 2, "ok": True, "llm_calls": 3, "llm_throttles": 0},
        ],
    )
    labels = json.dumps({"instance": "llm"})
    for t, value in ((T0, 40.0), (T0 + 5, 44.0)):
        window.observe(PressureSample(t, "prometheus", "loadlab_llm_requests_total", value, labels))
    (WORK / "downstream").mkdir()
    ui = web_ui()
    LoadlabTab(web_ui=ui, window=window, run_dir=RunDirectory(WORK / "downstream")).install()
    return extended(ui.app.test_client())


CANARY = "canary-secret-4f1d9a7c2b"


def redaction_case() -> dict[str, Any]:
    """A fault whose target quotes the JWT secret, written by a writer that did not redact."""
    os.environ["LOADLAB_JWT_SECRET"] = CANARY
    (WORK / "redaction").mkdir()
    event = {
        "t": T0,
        "kind": "fault",
        "name": "proxy cut",
        "target": f"url=http://agent:{CANARY}@127.0.0.1:9",
        "attrs": {"fault_id": "r1", "phase": "start"},
    }
    (WORK / "redaction" / "events.jsonl").write_text(json.dumps(event) + "\n")
    ui = web_ui()
    LoadlabTab(
        web_ui=ui,
        window=LiveWindow(),
        run_dir=RunDirectory(WORK / "redaction"),
        clock=lambda: T0 + 1,
    ).install()
    return {"canary": CANARY, "answer": extended(ui.app.test_client())}


def main() -> None:
    """Every case, one JSON document on stdout."""
    out = {
        "fault_run": fault_run_case(),
        "percentiles": percentiles_case(),
        "downloads": downloads_case(),
        "left_alone": left_alone_case(),
        "downstream": downstream_case(),
        "redaction": redaction_case(),
    }
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
