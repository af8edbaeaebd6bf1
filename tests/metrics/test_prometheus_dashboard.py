"""A real Prometheus scrapes a ci_smoke run: the harness's --metrics-port and the stack's
file_sd targets; every PromQL query of every dashboard panel returns data.

Debian's ``prometheus`` 2.42 is used as installed (``scripts/check`` installs it as root);
its configuration is ``dashboards/prometheus.yml`` with the run's port, the
stack's targets file and a 1 s scrape interval.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 80.0
RATE_WINDOW = "5s"  # what Grafana's $__rate_interval becomes at a 1 s scrape interval

pytestmark = pytest.mark.integration


def binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: scripts/check installs it (as root)")
        pytest.skip(f"{name} not installed (apt-get install prometheus); CI installs it")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def panel_queries() -> list[tuple[str, str]]:
    spec = importlib.util.spec_from_file_location(
        "dashboards_generate", REPO / "dashboards" / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return [
        (title, expr.replace("$__rate_interval", RATE_WINDOW))
        for title, expr in module.panel_queries()
    ]


def prometheus_config(path: Path, *, harness_port: int, targets_file: Path) -> Path:
    config = yaml.safe_load((REPO / "dashboards" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    jobs["loadlab-harness"]["static_configs"] = [{"targets": [f"127.0.0.1:{harness_port}"]}]
    jobs["loadlab-stack"]["file_sd_configs"] = [
        {"files": [str(targets_file)], "refresh_interval": "1s"}
    ]
    path.write_text(yaml.safe_dump(config))
    return path


def query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_every_panel_query_returns_data_from_a_real_prometheus(tmp_path: Path) -> None:
    prometheus, promtool = binary("prometheus"), binary("promtool")
    harness_port, prom_port = free_port(), free_port()
    state = tmp_path / "state"
    targets_file = state / "prometheus" / "targets.json"
    config = prometheus_config(
        tmp_path / "prometheus.yml", harness_port=harness_port, targets_file=targets_file
    )
    queries = panel_queries()
    started = time.monotonic()
    run_log = (tmp_path / "run.log").open("w")
    run = subprocess.Popen(
        [sys.executable, "-m", "loadlab", "run", str(REPO / "scenarios" / "ci_smoke.yaml"),
         "--embedded", "--replicas", "2", "--stack-time-scale", "0.05",
         "--metrics-port", str(harness_port),
         "--state-dir", str(state), "--runs-root", str(tmp_path / "runs")],
        cwd=tmp_path, stdout=run_log, stderr=subprocess.STDOUT, env=os.environ.copy(),
    )  # fmt: skip
    prom_log = (tmp_path / "prometheus.log").open("w")
    prom: subprocess.Popen[bytes] | None = None
    answered: dict[str, str] = {}
    pods: set[str] = set()
    try:
        while not targets_file.exists() and run.poll() is None:
            assert time.monotonic() - started < DEADLINE_S, "the stack wrote no targets file"
            time.sleep(0.2)
        checked = subprocess.run(
            [promtool, "check", "config", str(config)], capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0 and "WARNING" not in checked.stdout, checked.stdout
        prom = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=prom_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{prom_port}"
        while len(answered) < len(queries) and run.poll() is None:
            assert time.monotonic() - started < DEADLINE_S
            time.sleep(1.0)
            try:
                for title, expr in queries:
                    if expr not in answered and query(base, expr):
                        answered[expr] = title
                pods |= {r["metric"]["pod"] for r in query(base, 'up{component="agent"} == 1')}
            except OSError:
                continue  # Prometheus still starting
        missing = [f"{title}: {expr}" for title, expr in queries if expr not in answered]
        assert not missing, "no data for:\n" + "\n".join(missing)
        assert len(pods) == 2, pods  # each pod scraped on its own port, labelled by name
        rc = run.wait(timeout=max(5.0, DEADLINE_S - (time.monotonic() - started)))
        assert rc == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        for process in (prom, run):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        run_log.close()
        prom_log.close()
