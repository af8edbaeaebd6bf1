"""The embedded stack's file_sd targets: every /metrics endpoint, a pod each, kept current."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from pathlib import Path

import pytest

from loadlab.embedded.fleet import Fleet, ReplicaLaunch
from loadlab.embedded.prom_targets import ScrapeTargets, target_group

TIMEOUT_S = 30.0


def agent_env(launch: ReplicaLaunch) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "LOADLAB_JWT_SECRET": "s" * 32,
        "LOADLAB_AGENT_LLM_URL": "http://127.0.0.1:9",  # never called: no turn is played
        "LOADLAB_AGENT_DYNAMODB_ENDPOINT": "http://127.0.0.1:9",
        "LOADLAB_TIME_SCALE": "0.01",
        "LOADLAB_AGENT_INSTANCE_ID": launch.pod_name,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def read_groups(path: Path) -> list[dict[str, object]]:
    return json.loads(path.read_text())


def pods_in(path: Path) -> dict[str, str]:
    return {
        g["labels"]["pod"]: g["targets"][0]  # type: ignore[index]
        for g in read_groups(path)
        if g["labels"].get("component") == "agent"  # type: ignore[union-attr]
    }


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def test_a_target_group_is_what_file_sd_reads() -> None:
    assert target_group("http://127.0.0.1:4000/metrics", component="llm") == {
        "targets": ["127.0.0.1:4000"],
        "labels": {"component": "llm", "__metrics_path__": "/metrics", "__scheme__": "http"},
    }
    with pytest.raises(ValueError, match="has no host:port"):
        target_group("http://127.0.0.1/metrics")


@pytest.mark.integration
def test_each_pod_is_a_target_of_its_own_and_a_replaced_pod_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "prometheus" / "targets.json"

    async def scenario() -> None:
        fleet = Fleet(
            argv=[sys.executable, "-m", "loadlab.embedded.agent", "--host", "{host}",
                  "--port", "{port}", "--reuse-port", "--metrics-port", "0"],
            env=agent_env,
            inherit_env=False,
            replicas=2,
            startup_delay_s=0.0,
            log_dir=tmp_path / "pods",
        )  # fmt: skip
        servers = [target_group("http://127.0.0.1:4000/metrics", component="llm")]
        async with fleet:
            await fleet.wait_ready(timeout_s=TIMEOUT_S)
            targets = ScrapeTargets(path, servers=servers).follow(fleet)
            try:
                first = pods_in(path)
                assert sorted(first) == sorted(p.name for p in fleet.ready_pods())
                assert len(set(first.values())) == 2  # a port each, not the shared one
                assert all(t.split(":")[1] != str(fleet.port) for t in first.values())
                assert read_groups(path)[0]["labels"] == servers[0]["labels"]
                for pod, target in first.items():
                    text = await asyncio.to_thread(get, f"http://{target}/metrics")
                    assert "loadlab_agent_init_seconds" in text, pod

                victim = sorted(first)[0]
                await fleet.delete_pod(victim, grace_period_seconds=0)
                await fleet.wait_until(
                    lambda pods: (
                        len([p for p in pods if p.ready and p.live]) == 2
                        and victim not in {p.name for p in pods if p.live}
                    ),
                    timeout_s=TIMEOUT_S,
                )
                for _ in range(100):
                    now = pods_in(path)
                    if victim not in now and len(now) == 2:
                        break
                    await asyncio.sleep(0.05)
                assert victim not in now and len(now) == 2
                assert set(now) == {p.name for p in fleet.ready_pods()}
            finally:
                await targets.stop()
        assert not path.exists()  # its ports died with the fleet

    asyncio.run(scenario())
