"""ministack launcher and the embedded stack, with the real servers."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import re
import signal
import stat
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import botocore.session
import pytest

from loadlab.embedded.ministack import Ministack, find_ministack
from loadlab.embedded.stack import EmbeddedStack, LLMOptions, serve_forever
from loadlab.errors import ConfigError, StackError

TIMEOUT = 30.0

needs_real_servers = pytest.mark.skipif(
    importlib.util.find_spec("loadlab.embedded.llm.__main__") is None
    or importlib.util.find_spec("loadlab.embedded.agent.__main__") is None,
    reason="the LLM simulator and the reference agent are not in this tree yet",
)


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def executable(path: Path, body: str) -> Path:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


# -- finding ministack -----------------------------------------------------------------


def test_find_ministack_prefers_the_explicit_path_then_the_environment(tmp_path: Path) -> None:
    explicit = executable(tmp_path / "explicit", "exit 0")
    from_env = executable(tmp_path / "from-env", "exit 0")
    environ = {"LOADLAB_MINISTACK_BIN": str(from_env), "PATH": ""}

    assert find_ministack(explicit, environ=environ, repo_root=tmp_path) == explicit
    assert find_ministack(None, environ=environ, repo_root=tmp_path) == from_env


def test_find_ministack_uses_the_repo_venv_then_path(tmp_path: Path) -> None:
    bundled = tmp_path / "repo" / ".venv-ministack" / "bin"
    bundled.mkdir(parents=True)
    in_venv = executable(bundled / "ministack", "exit 0")
    on_path_dir = tmp_path / "bin"
    on_path_dir.mkdir()
    on_path = executable(on_path_dir / "ministack", "exit 0")

    assert find_ministack(environ={"PATH": ""}, repo_root=tmp_path / "repo") == in_venv
    assert find_ministack(environ={"PATH": str(on_path_dir)}, repo_root=tmp_path) == on_path


def test_find_ministack_says_to_run_bootstrap(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="ministack not found") as err:
        find_ministack(environ={"PATH": ""}, repo_root=tmp_path)
    assert "scripts/bootstrap" in str(err.value)

    with pytest.raises(StackError, match="no-such-file"):
        find_ministack(tmp_path / "no-such-file", environ={"PATH": ""}, repo_root=tmp_path)


# -- running ministack -----------------------------------------------------------------


@pytest.mark.integration
def test_ministack_starts_reports_health_and_stops(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, dict[str, Any], int]:
        ministack = Ministack(state_dir=tmp_path, start_timeout_s=TIMEOUT)
        async with ministack:
            assert ministack.url.startswith("http://127.0.0.1:")
            pid = ministack.pid
            assert pid is not None
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{ministack.url}/_ministack/health") as resp,
            ):
                return resp.status, await resp.json(), pid

    status, health, pid = asyncio.run(scenario())

    assert status == 200
    assert health["services"]["dynamodb"] == "available"
    assert not process_alive(pid)
    assert "Running on http://127.0.0.1:" in (tmp_path / "ministack.log").read_text()


@pytest.mark.integration
def test_ministack_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    broken = executable(tmp_path / "ministack", 'echo "no module named ministack.app" >&2; exit 7')

    async def scenario() -> None:
        await Ministack(state_dir=tmp_path / "state", binary=broken).start()

    with pytest.raises(StackError, match="status 7") as err:
        asyncio.run(scenario())
    assert "no module named ministack.app" in str(err.value)
    assert "ministack.log" in str(err.value)


# -- the embedded stack ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("replicas", 0), ("time_scale", 0.0), ("agent_mode", "sloppy"), ("agent_port", -1)],
)
def test_bad_stack_configuration_names_the_value(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        EmbeddedStack(**{option: value})  # type: ignore[arg-type]


def table_exists(endpoint: str, table: str) -> bool:
    no_profile = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    client = boto3.session.Session(
        botocore_session=no_profile,
        aws_access_key_id="any",
        aws_secret_access_key="any",
        region_name="us-east-1",
    ).client("dynamodb", endpoint_url=endpoint)
    try:
        return bool(client.describe_table(TableName=table)["Table"]["TableName"] == table)
    finally:
        client.close()


@pytest.mark.integration
@needs_real_servers
def test_embedded_stack_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A profile this machine does not have: the stack must not hand it to anyone.
    monkeypatch.setenv("AWS_PROFILE", "loadlab-test-no-such-profile")
    state = tmp_path / "state"

    async def scenario() -> dict[str, Any]:
        stack = EmbeddedStack(
            replicas=2,
            time_scale=0.01,
            startup_delay_s=1.0,
            state_dir=state,
            seed=7,
            start_timeout_s=TIMEOUT,
        )
        async with stack:
            out: dict[str, Any] = {"endpoints": stack.endpoints, "pids": stack.child_pids()}
            out["mode"] = stat.S_IMODE(stack.stack_file.stat().st_mode)
            out["file"] = json.loads(stack.stack_file.read_text())
            intruder = EmbeddedStack(state_dir=state)
            try:
                with pytest.raises(StackError, match="already running"):
                    await intruder.start()
            finally:
                await intruder.stop()
            out["file_kept"] = stack.stack_file.exists()
            out["kubeconfig_mode"] = stat.S_IMODE(stack.kubeconfig_file.stat().st_mode)
            auth = {"Authorization": f"Bearer {stack.state.admin_token}"}
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{stack.endpoints.agent_url}/healthz") as resp:
                    out["healthz"] = resp.status
                async with http.get(
                    f"{stack.endpoints.fleet_url}/fleet/pods", headers=auth
                ) as resp:
                    out["pods"] = await resp.json()
                victim = out["pods"][0]["name"]
                for headers in ({}, {"Authorization": "Bearer garbage"}):
                    async with http.delete(
                        f"{stack.endpoints.fleet_url}/api/v1/namespaces/default/pods/{victim}",
                        headers=headers,
                    ) as resp:
                        out.setdefault("refused", []).append(resp.status)
                async with http.delete(
                    f"{stack.endpoints.fleet_url}/fleet/pods/{victim}",
                    params={"gracePeriodSeconds": "0"},
                    headers=auth,
                ) as resp:
                    out["delete"] = resp.status
                await stack.fleet.wait_until(
                    lambda ps: any(p.replaces == victim and p.ready for p in ps),
                    timeout_s=TIMEOUT,
                )
                async with http.get(f"{stack.endpoints.agent_url}/healthz") as resp:
                    out["healthz_after_kill"] = resp.status
            out["table"] = await asyncio.to_thread(
                table_exists, stack.endpoints.aws_endpoint_url, stack.endpoints.table
            )
            out["pids"] += stack.child_pids()
        out["file_after_stop"] = stack.stack_file.exists()
        out["kubeconfig_after_stop"] = stack.kubeconfig_file.exists()
        return out

    out = asyncio.run(scenario())

    endpoints = out["endpoints"]
    for url in (endpoints.agent_url, endpoints.aws_endpoint_url, endpoints.llm_url):
        assert url.startswith("http://127.0.0.1:")
    assert out["healthz"] == 200
    assert out["table"] is True
    assert len(out["pods"]) == 2 and all(p["ready"] for p in out["pods"])
    assert {p["instance_id"] for p in out["pods"]} == {p["name"] for p in out["pods"]}
    assert out["refused"] == [401, 401], "no token, or a wrong one: the pod stays"
    assert out["delete"] == 200
    assert out["healthz_after_kill"] == 200
    # stack.json: owner-only, endpoints for the harness, the secret only there.
    assert out["mode"] == 0o600
    secret = out["file"]["jwt_secret"]
    assert len(secret) >= 32
    assert out["file"]["endpoints"]["agent_url"] == endpoints.agent_url
    assert out["file"]["endpoints"]["fleet_url"] == endpoints.fleet_url
    assert out["file_kept"]
    assert not out["file_after_stop"]
    # the admin token: in stack.json and the kubeconfig (both 0600), nowhere else
    token = out["file"]["admin_token"]
    assert len(token) >= 32 and token != secret
    assert out["kubeconfig_mode"] == 0o600
    assert out["file"]["kubeconfig"] == str(state / "kubeconfig")
    assert not out["kubeconfig_after_stop"]
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err
    assert token not in captured.out + captured.err
    for path in state.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path
            assert token not in path.read_text(errors="replace"), path
    assert (state / "fleet-events.jsonl").read_text().count('"event": "terminated"') >= 3
    assert len(list((state / "pods").glob("*.log"))) == 3
    # No process of the stack survives stop().
    assert len(out["pids"]) >= 4
    assert not [pid for pid in out["pids"] if process_alive(pid)]


class _Announced(io.StringIO):
    """Captures serve_forever's output and says when the endpoints were printed."""

    def __init__(self) -> None:
        super().__init__()
        self.up = asyncio.Event()

    def write(self, text: str) -> int:
        if "Press Ctrl-C" in text:
            self.up.set()
        return super().write(text)


@pytest.mark.integration
@needs_real_servers
def test_serve_forever_prints_endpoints_and_stops_on_sigterm(tmp_path: Path) -> None:
    async def scenario() -> tuple[str, list[int], str]:
        stack = EmbeddedStack(
            replicas=1, time_scale=0.01, state_dir=tmp_path, start_timeout_s=TIMEOUT
        )
        out = _Announced()
        serving = asyncio.create_task(serve_forever(stack, out=out))
        await asyncio.wait_for(out.up.wait(), TIMEOUT)
        secret = json.loads(stack.stack_file.read_text())["jwt_secret"]
        pids = stack.child_pids()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(serving, TIMEOUT)
        return out.getvalue(), pids, secret

    text, pids, secret = asyncio.run(scenario())

    assert "agent      http://127.0.0.1:" in text
    assert "fleet      http://127.0.0.1:" in text
    assert "embedded stack stopped" in text
    assert secret not in text
    assert len(pids) == 3
    assert not [pid for pid in pids if process_alive(pid)]


@pytest.mark.integration
@needs_real_servers
def test_serve_forever_reports_a_dead_part(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        stack = EmbeddedStack(
            replicas=1, time_scale=0.01, state_dir=tmp_path, start_timeout_s=TIMEOUT
        )
        out = _Announced()
        serving = asyncio.create_task(serve_forever(stack, out=out))
        await asyncio.wait_for(out.up.wait(), TIMEOUT)
        pids = stack.child_pids()
        llm_pid = json.loads(stack.stack_file.read_text())["pids"]["llm"]
        os.kill(llm_pid, signal.SIGKILL)
        with pytest.raises(StackError, match="LLM simulator exited"):
            await asyncio.wait_for(serving, TIMEOUT)
        return pids

    pids = asyncio.run(scenario())

    assert not [pid for pid in pids if process_alive(pid)]


@pytest.mark.integration
@needs_real_servers
def test_stack_that_cannot_start_cleans_up_and_names_the_log(tmp_path: Path) -> None:
    async def scenario() -> EmbeddedStack:
        stack = EmbeddedStack(
            replicas=1,
            time_scale=0.01,
            state_dir=tmp_path,
            llm=LLMOptions(rpm=-5),
            start_timeout_s=TIMEOUT,
        )
        with pytest.raises(StackError, match="LLM simulator exited") as err:
            await stack.start()
        assert "llm.log" in str(err.value)
        return stack

    stack = asyncio.run(scenario())

    assert not stack.stack_file.exists()
    # ministack had started (hypercorn logs "[<pid>] [INFO] Running on ...") and is gone.
    started = re.search(r"\[(\d+)\] \[INFO\] Running on", (tmp_path / "ministack.log").read_text())
    assert started is not None
    assert not process_alive(int(started.group(1)))
