"""The fleet's HTTP status API and its command line, against real processes."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from loadlab.embedded.fleet import Fleet, FleetAPI

pytestmark = pytest.mark.integration

TOKEN = "fleet-api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

TIMEOUT = 15.0


def test_api_lists_and_deletes_pods(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    async def scenario() -> dict[str, Any]:
        fleet = Fleet(
            argv=replica_argv("serve"),
            replicas=2,
            startup_delay_s=1.0,
            time_scale=0.01,
            labels={"app": "shopping-agent", "tier": "web"},
        )
        api = FleetAPI(fleet=fleet, admin_token=TOKEN)
        async with fleet:
            url = await api.start()
            try:
                ready = await fleet.wait_ready(timeout_s=TIMEOUT)
                async with aiohttp.ClientSession(headers=AUTH) as http:
                    async with http.get(f"{url}/fleet/pods") as resp:
                        listed = await resp.json()
                        listed_status = resp.status
                    victim = ready[0].name
                    async with http.delete(
                        f"{url}/fleet/pods/{victim}", params={"gracePeriodSeconds": "0"}
                    ) as resp:
                        deleted = await resp.json()
                        deleted_status = resp.status
                    async with http.delete(f"{url}/fleet/pods/shopping-agent-zzzzz") as resp:
                        missing = await resp.json()
                        missing_status = resp.status
                    async with http.delete(
                        f"{url}/fleet/pods/{ready[1].name}", params={"gracePeriodSeconds": "-1"}
                    ) as resp:
                        bad_status = resp.status
                    await fleet.wait_until(
                        lambda ps: any(p.replaces == victim and p.ready for p in ps),
                        timeout_s=TIMEOUT,
                    )
                    async with http.get(
                        f"{url}/fleet/pods", params={"includeTerminated": "true"}
                    ) as resp:
                        everything = await resp.json()
            finally:
                await api.stop()
        return {
            "ready": {p.name for p in ready},
            "listed": listed,
            "listed_status": listed_status,
            "victim": victim,
            "deleted": deleted,
            "deleted_status": deleted_status,
            "missing": missing,
            "missing_status": missing_status,
            "bad_status": bad_status,
            "everything": everything,
        }

    out = asyncio.run(scenario())

    assert out["listed_status"] == 200
    assert {p["name"] for p in out["listed"]} == out["ready"]
    assert all(p["labels"] == {"app": "shopping-agent", "tier": "web"} for p in out["listed"])
    assert all(p["phase"] == "Running" and p["ready"] for p in out["listed"])
    assert out["deleted_status"] == 200
    assert out["deleted"]["name"] == out["victim"]
    assert out["deleted"]["deletion_grace_period_seconds"] == 0
    assert out["missing_status"] == 404
    assert "shopping-agent-zzzzz" in out["missing"]["error"]["message"]
    assert out["bad_status"] == 400
    by_name = {p["name"]: p for p in out["everything"]}
    assert by_name[out["victim"]]["exit_code"] == -signal.SIGKILL
    assert any(p["replaces"] == out["victim"] for p in out["everything"])


def test_cli_help_documents_the_ready_contract() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadlab.embedded.fleet", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert "READY pid=" in done.stdout
    assert "--replicas" in done.stdout
    assert "--startup-delay" in done.stdout


def read_line(proc: subprocess.Popen[str], *, timeout_s: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    assert ready, "the fleet printed nothing in time"
    return proc.stdout.readline().strip()


def wait_gone(pids: list[int], *, timeout_s: float) -> None:
    """Wait (on pidfds, no sleeping) until every pid has exited."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            continue
    try:
        deadline = time.monotonic() + timeout_s
        pending = set(fds)
        while pending and (left := deadline - time.monotonic()) > 0:
            done, _, _ = select.select(list(pending), [], [], left)
            pending -= set(done)
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture
def fleet_cli(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> Iterator[subprocess.Popen[str]]:
    events = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadlab.embedded.fleet",
            "--replicas",
            "2",
            "--startup-delay",
            "0",
            "--events-file",
            str(events),
            "--log-dir",
            str(tmp_path / "pods"),
            "--",
            *replica_argv("serve"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"LOADLAB_ADMIN_TOKEN": TOKEN},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def cli_pods(proc: subprocess.Popen[str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    line = read_line(proc, timeout_s=TIMEOUT)
    assert line.startswith("FLEET "), line
    fields = dict(token.split("=", 1) for token in line.split()[1:])
    request = urllib.request.Request(f"{fields['api']}/fleet/pods", headers=AUTH)
    with urllib.request.urlopen(request, timeout=5) as resp:
        pods: list[dict[str, Any]] = json.load(resp)
    return fields, pods


def test_cli_stops_its_replicas_on_sigterm(
    fleet_cli: subprocess.Popen[str], process_alive: Callable[[int], bool]
) -> None:
    fields, pods = cli_pods(fleet_cli)
    pids = [p["pid"] for p in pods]
    assert fields["replicas"] == "2" and len(pids) == 2
    assert all(process_alive(pid) for pid in pids)

    fleet_cli.send_signal(signal.SIGTERM)

    assert fleet_cli.wait(timeout=TIMEOUT) == 0
    wait_gone(pids, timeout_s=TIMEOUT)
    assert not any(process_alive(pid) for pid in pids)


def test_sigkilled_supervisor_leaves_no_orphans(
    fleet_cli: subprocess.Popen[str], process_alive: Callable[[int], bool]
) -> None:
    _, pods = cli_pods(fleet_cli)
    pids = [p["pid"] for p in pods]
    assert len(pids) == 2 and all(process_alive(pid) for pid in pids)

    fleet_cli.kill()
    fleet_cli.wait(timeout=TIMEOUT)

    wait_gone(pids, timeout_s=TIMEOUT)
    assert not any(process_alive(pid) for pid in pids)
