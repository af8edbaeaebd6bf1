"""The fleet supervisor against real stand-in replica processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from loadlab.embedded.fleet import Fleet, Pod, PodNotFound
from loadlab.errors import ConfigError, StackError

pytestmark = pytest.mark.integration

TIMEOUT = 15.0


def make_fleet(argv: list[str], tmp_path: Path, **overrides: object) -> Fleet:
    options: dict[str, object] = {
        "replicas": 2,
        "startup_delay_s": 5.0,
        "time_scale": 0.01,
        "log_dir": tmp_path / "pods",
        "events_path": tmp_path / "events.jsonl",
        "ready_timeout_s": 10.0,
    }
    options.update(overrides)
    return Fleet(argv=argv, **options)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(fleet: Fleet) -> AsyncIterator[Fleet]:
    """Start the fleet; stop it with a short grace (some stand-ins ignore SIGTERM)."""
    await fleet.start()
    try:
        yield fleet
    finally:
        await fleet.stop(grace_s=0.3)


def read_events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def fetch_instance(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()
        await writer.wait_closed()


def test_pods_become_ready_with_kubernetes_style_names(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    async def scenario() -> list[Pod]:
        async with make_fleet(replica_argv("serve"), tmp_path, replicas=3) as fleet:
            return await fleet.wait_ready(timeout_s=TIMEOUT)

    pods = asyncio.run(scenario())

    assert len(pods) == 3
    assert len({p.name for p in pods}) == 3
    for pod in pods:
        prefix, suffix = pod.name.rsplit("-", 1)
        assert prefix == "shopping-agent"
        assert len(suffix) == 5 and suffix.isalnum() and suffix == suffix.lower()
        assert pod.labels == {"app": "shopping-agent"}
        assert pod.phase == "Running" and pod.ready
        assert pod.instance_id == pod.name  # the stand-in reports LOADLAB_POD_NAME
        assert pod.init_ms == 1.5
        assert pod.pid is not None and pod.started_at is not None
        assert pod.restart_reason is None


def test_killed_replica_is_replaced_by_a_new_pod_after_the_startup_delay(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    delay_s = 30.0 * 0.01

    async def scenario() -> tuple[Pod, Pod, list[Pod]]:
        fleet = make_fleet(replica_argv("serve"), tmp_path, startup_delay_s=30.0)
        async with fleet:
            victim = (await fleet.wait_ready(timeout_s=TIMEOUT))[0]
            assert victim.pid is not None
            os.kill(victim.pid, signal.SIGKILL)
            pods = await fleet.wait_until(
                lambda ps: any(p.replaces == victim.name and p.ready for p in ps),
                timeout_s=TIMEOUT,
            )
            replacement = next(p for p in pods if p.replaces == victim.name)
            dead = next(p for p in pods if p.name == victim.name)
            return replacement, dead, fleet.pods()

    replacement, dead, live = asyncio.run(scenario())

    assert dead.phase == "Failed"
    assert dead.exit_code == -signal.SIGKILL
    assert dead.reason == "Killed: SIGKILL"
    assert replacement.name != dead.name
    assert replacement.restart_reason == f"replaces {dead.name} (Killed: SIGKILL)"
    assert dead.finished_at is not None and replacement.started_at is not None
    assert replacement.created_at >= dead.finished_at
    # The replacement spent the (scaled) startup delay Pending before its process started.
    assert replacement.started_at - replacement.created_at >= delay_s * 0.9
    assert len(live) == 2 and all(p.ready for p in live)
    events = read_events(tmp_path / "events.jsonl")
    phases = [(e["event"], e["phase"]) for e in events if e["pod"] == replacement.name]
    assert phases[:3] == [("created", "Pending"), ("started", "Running"), ("ready", "Running")]
    died = [e for e in events if e["pod"] == dead.name and e["event"] == "terminated"]
    assert died and died[0]["phase"] == "Failed" and died[0]["reason"] == "Killed: SIGKILL"
    assert {"t", "pod", "phase", "reason"} <= set(died[0])


def test_delete_with_grace_zero_kills_at_once(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    async def scenario() -> tuple[Pod, Pod, Pod]:
        async with make_fleet(replica_argv("serve"), tmp_path) as fleet:
            target = (await fleet.wait_ready(timeout_s=TIMEOUT))[0]
            marked = await fleet.delete_pod(target.name, grace_period_seconds=0)
            pods = await fleet.wait_until(
                lambda ps: (
                    any(p.name == target.name and not p.live for p in ps)
                    and any(p.replaces == target.name and p.ready for p in ps)
                ),
                timeout_s=TIMEOUT,
            )
            gone = next(p for p in pods if p.name == target.name)
            new = next(p for p in pods if p.replaces == target.name)
            assert target.name not in {p.name for p in fleet.pods()}
            return marked, gone, new

    marked, gone, new = asyncio.run(scenario())

    assert marked.deletion_timestamp is not None
    assert marked.deletion_grace_period_seconds == 0
    assert gone.exit_code == -signal.SIGKILL and gone.phase == "Failed"
    assert gone.reason == "Deleted"
    assert new.restart_reason == f"replaces {gone.name} (deleted)"


def test_delete_with_grace_lets_the_replica_stop_on_sigterm(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    async def scenario() -> Pod:
        async with make_fleet(replica_argv("serve"), tmp_path) as fleet:
            target = (await fleet.wait_ready(timeout_s=TIMEOUT))[0]
            await fleet.delete_pod(target.name, grace_period_seconds=10)
            pods = await fleet.wait_until(
                lambda ps: any(p.name == target.name and not p.live for p in ps),
                timeout_s=TIMEOUT,
            )
            return next(p for p in pods if p.name == target.name)

    gone = asyncio.run(scenario())

    assert gone.exit_code == 0
    assert gone.phase == "Succeeded"


def test_replica_ignoring_sigterm_is_killed_when_the_grace_runs_out(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    async def scenario() -> Pod:
        async with running(make_fleet(replica_argv("ignore-term"), tmp_path, replicas=1)) as fleet:
            target = (await fleet.wait_ready(timeout_s=TIMEOUT))[0]
            await fleet.delete_pod(target.name, grace_period_seconds=0.5)
            pods = await fleet.wait_until(
                lambda ps: any(p.name == target.name and not p.live for p in ps),
                timeout_s=TIMEOUT,
            )
            return next(p for p in pods if p.name == target.name)

    gone = asyncio.run(scenario())

    assert gone.exit_code == -signal.SIGKILL
    log = (tmp_path / "pods" / f"{gone.name}.log").read_text()
    assert "SIGTERM received and ignored" in log


def test_a_second_delete_with_grace_zero_shortens_the_grace(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    async def scenario() -> tuple[Pod, int]:
        async with running(make_fleet(replica_argv("ignore-term"), tmp_path, replicas=1)) as fleet:
            target = (await fleet.wait_ready(timeout_s=TIMEOUT))[0]
            await fleet.delete_pod(target.name, grace_period_seconds=300)
            await fleet.delete_pod(target.name, grace_period_seconds=0)
            pods = await fleet.wait_until(
                lambda ps: any(p.name == target.name and not p.live for p in ps),
                timeout_s=TIMEOUT,
            )
            replacements = [p for p in pods if p.replaces == target.name]
            return next(p for p in pods if p.name == target.name), len(replacements)

    gone, replacements = asyncio.run(scenario())

    assert gone.exit_code == -signal.SIGKILL
    assert replacements == 1  # deleting twice replaces once


def test_delete_of_unknown_pod_names_it(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with make_fleet(replica_argv("serve"), tmp_path, replicas=0) as fleet:
            await fleet.delete_pod("shopping-agent-nope1", grace_period_seconds=0)

    with pytest.raises(PodNotFound, match="shopping-agent-nope1"):
        asyncio.run(scenario())


def test_replicas_share_one_port(replica_argv: Callable[[str], list[str]], tmp_path: Path) -> None:
    async def scenario() -> tuple[set[str], set[str]]:
        async with make_fleet(replica_argv("serve"), tmp_path) as fleet:
            pods = await fleet.wait_ready(timeout_s=TIMEOUT)
            names = {p.name for p in pods}
            seen: set[str] = set()
            for _ in range(200):
                seen.add(await fetch_instance(fleet.port))
                if seen == names:
                    break
            return names, seen

    names, seen = asyncio.run(scenario())

    assert seen == names


def test_crash_loop_stops_replacing_pods(
    replica_argv: Callable[[str], list[str]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> tuple[str | None, list[Pod], list[Pod]]:
        fleet = make_fleet(replica_argv("crash"), tmp_path, replicas=1, max_startup_failures=3)
        async with fleet:
            with pytest.raises(StackError, match="crash loop"):
                await fleet.wait_ready(timeout_s=TIMEOUT)
            return fleet.crash_loop, fleet.pods(), fleet.pods(include_terminated=True)

    with caplog.at_level(logging.ERROR, logger="loadlab.embedded.fleet"):
        crash_loop, live, everything = asyncio.run(scenario())

    assert crash_loop is not None
    assert live == []
    assert len(everything) == 3
    assert all(p.phase == "Failed" and p.exit_code == 3 for p in everything)
    assert any("crash loop" in r.getMessage() for r in caplog.records)
    assert "stopped replacing pods" in crash_loop
    events = read_events(tmp_path / "events.jsonl")
    assert [e["event"] for e in events].count("crash_loop") == 1


def test_a_ready_pod_resets_the_crash_loop_count(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    """Replicas killed after they became ready are chaos, not a crash loop."""

    async def scenario() -> tuple[str | None, int]:
        fleet = make_fleet(replica_argv("serve"), tmp_path, replicas=1, max_startup_failures=1)
        async with fleet:
            for _ in range(3):
                pod = (await fleet.wait_ready(timeout_s=TIMEOUT))[0]
                assert pod.pid is not None
                os.kill(pod.pid, signal.SIGKILL)
                await fleet.wait_until(
                    lambda ps, name=pod.name: any(p.replaces == name for p in ps),
                    timeout_s=TIMEOUT,
                )
            await fleet.wait_ready(timeout_s=TIMEOUT)
            return fleet.crash_loop, len(fleet.pods(include_terminated=True))

    crash_loop, total = asyncio.run(scenario())

    assert crash_loop is None
    assert total == 4


def test_stop_leaves_no_child_processes(
    replica_argv: Callable[[str], list[str]],
    tmp_path: Path,
    process_alive: Callable[[int], bool],
    children_of: Callable[[int], list[int]],
) -> None:
    async def scenario() -> list[int]:
        fleet = make_fleet(replica_argv("ignore-term"), tmp_path, replicas=3)
        await fleet.start()
        try:
            pods = await fleet.wait_ready(timeout_s=TIMEOUT)
        finally:
            await fleet.stop(grace_s=0.3)
        return [p.pid for p in pods if p.pid is not None]

    pids = asyncio.run(scenario())

    assert len(pids) == 3
    assert not any(process_alive(pid) for pid in pids)
    assert not set(children_of(os.getpid())) & set(pids)


def test_pending_pods_are_not_spawned_after_stop(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    async def scenario() -> list[Pod]:
        fleet = make_fleet(replica_argv("serve"), tmp_path, startup_delay_s=10_000.0)
        await fleet.start()
        await fleet.stop()
        return fleet.pods(include_terminated=True)

    pods = asyncio.run(scenario())

    assert len(pods) == 2
    assert all(p.pid is None and not p.live and p.reason == "FleetStopped" for p in pods)


@pytest.mark.parametrize(
    ("option", "value"),
    [("replicas", -1), ("time_scale", 0.0), ("startup_delay_s", -1.0), ("port", 70000)],
)
def test_bad_configuration_names_the_value(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        Fleet(argv=["true"], **{option: value})  # type: ignore[arg-type]
