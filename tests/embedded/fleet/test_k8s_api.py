"""The fleet's Kubernetes pods API, driven by the real kubernetes client and chaosk8s.

Every test runs a real Fleet of stand-in replicas and its API on 127.0.0.1; the
synchronous clients run in a worker thread (``asyncio.to_thread``) so that the
fleet keeps supervising in the event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import urllib3
from chaosk8s.pod.actions import terminate_pods
from chaosk8s.pod.probes import count_pods, pods_in_phase
from chaoslib.exceptions import ActivityFailed
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.config import kube_config

from loadlab.embedded.fleet import Fleet, FleetAPI, Pod
from loadlab.embedded.fleet.process import free_loopback_port
from loadlab.embedded.state import write_kubeconfig

pytestmark = pytest.mark.integration

TIMEOUT = 20.0
LABELS = {"app": "shopping-agent", "tier": "web"}
TOKEN = "pods-api-test-token"
"""The token the test fleets' pods API requires."""
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextlib.asynccontextmanager
async def running(
    argv: list[str],
    *,
    replicas: int = 2,
    startup_delay_s: float = 1.0,
    grace_s: float = 20.0,
    namespace: str = "default",
    wait_ready: bool = True,
) -> AsyncIterator[tuple[Fleet, str]]:
    """A started fleet (startup delay scaled to 10 ms) and its API URL."""
    fleet = Fleet(
        argv=argv,
        replicas=replicas,
        startup_delay_s=startup_delay_s,
        time_scale=0.01,
        labels=LABELS,
        termination_grace_s=grace_s,
    )
    api = FleetAPI(fleet=fleet, namespace=namespace, admin_token=TOKEN)
    async with fleet:
        url = await api.start()
        try:
            if wait_ready:
                await fleet.wait_ready(timeout_s=TIMEOUT)
            yield fleet, url
        finally:
            await api.stop()


def core_v1(url: str, token: str | None = TOKEN) -> tuple[client.ApiClient, client.CoreV1Api]:
    config = client.Configuration(host=url)
    if token is not None:
        config.api_key = {"authorization": f"Bearer {token}"}  # as a kubeconfig token sets it
    api = client.ApiClient(config)
    return api, client.CoreV1Api(api)


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def point_chaosk8s_at(monkeypatch: pytest.MonkeyPatch, url: str, tmp_path: Path) -> None:
    # as the embedded stack does: a kubeconfig with the pods API and its token
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, server=url, token=TOKEN)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_HOST", raising=False)
    # the kubernetes client reads $KUBECONFIG once, when imported; `chaos run` starts afresh
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))


def gone_and_replaced(victim: str) -> Callable[[list[Pod]], bool]:
    def check(pods: list[Pod]) -> bool:
        terminated = any(p.name == victim and not p.live for p in pods)
        return terminated and any(p.replaces == victim and p.ready for p in pods)

    return check


# -- the kubernetes client ---------------------------------------------------------------


def test_kubernetes_client_lists_and_reads_pods(replica_argv: Callable[[str], list[str]]) -> None:
    def calls(url: str) -> dict[str, Any]:
        api, v1 = core_v1(url)
        with api:
            out: dict[str, Any] = {"list": v1.list_namespaced_pod("default")}
            out["by_label"] = {
                sel: sorted(
                    p.metadata.name
                    for p in v1.list_namespaced_pod("default", label_selector=sel).items
                )
                for sel in (
                    "app=shopping-agent",
                    "app==shopping-agent,tier=web",
                    "app!=shopping-agent",
                    "tier in (web,api)",
                    "tier notin (web)",
                    "app,!canary",
                    "canary",
                )
            }
            first = out["list"].items[0].metadata.name
            out["by_field"] = {
                sel: len(v1.list_namespaced_pod("default", field_selector=sel).items)
                for sel in (
                    "status.phase=Running",
                    "status.phase!=Running",
                    f"metadata.name={first}",
                    "metadata.namespace=default,spec.restartPolicy=Always",
                )
            }
            out["all"] = v1.list_pod_for_all_namespaces(label_selector="app=shopping-agent")
            out["other_ns"] = v1.list_namespaced_pod("other")
            out["read"] = v1.read_namespaced_pod(first, "default")
            for key, call in {
                "missing": lambda: v1.read_namespaced_pod("shopping-agent-zzzzz", "default"),
                "wrong_ns": lambda: v1.read_namespaced_pod(first, "other"),
                "bad_label": lambda: v1.list_namespaced_pod("default", label_selector="app in ("),
                "bad_field": lambda: v1.list_namespaced_pod("default", field_selector="spec.x=1"),
            }.items():
                try:
                    call()
                except ApiException as exc:
                    out[key] = exc
            return out

    async def scenario() -> tuple[list[Pod], dict[str, Any]]:
        async with running(replica_argv("serve"), replicas=3) as (fleet, url):
            out = await asyncio.to_thread(calls, url)
            return fleet.pods(), out

    pods, out = asyncio.run(scenario())
    names = sorted(p.name for p in pods)
    by_name = {p.name: p for p in pods}

    listed: client.V1PodList = out["list"]
    assert isinstance(listed, client.V1PodList)
    assert [p.metadata.name for p in listed.items] == names  # sorted, like the API server
    assert listed.metadata.resource_version
    for item in listed.items:
        pod = by_name[item.metadata.name]
        assert item.metadata.namespace == "default"
        assert item.metadata.uid == pod.uid
        assert item.metadata.labels == LABELS
        assert isinstance(item.metadata.creation_timestamp, dt.datetime)
        assert item.metadata.creation_timestamp.tzinfo is not None
        assert item.metadata.deletion_timestamp is None
        assert item.metadata.resource_version
        assert item.metadata.annotations["loadlab/pid"] == str(pod.pid)
        assert [(c.name, c.image) for c in item.spec.containers] == [
            ("agent", "loadlab/agent:local")
        ]
        assert item.spec.containers[0].ports[0].container_port == pod.port
        assert item.spec.termination_grace_period_seconds == 20
        assert item.status.phase == "Running"
        assert item.status.pod_ip == "127.0.0.1"
        assert isinstance(item.status.start_time, dt.datetime)
        conditions = {c.type: c.status for c in item.status.conditions}
        assert conditions["Ready"] == "True"
        assert conditions["ContainersReady"] == "True"
        assert conditions["PodScheduled"] == "True"
        [container] = item.status.container_statuses
        assert container.name == "agent"
        assert container.ready is True
        assert container.restart_count == 0
        assert container.state.running is not None
        assert isinstance(container.state.running.started_at, dt.datetime)

    assert out["by_label"] == {
        "app=shopping-agent": names,
        "app==shopping-agent,tier=web": names,
        "app!=shopping-agent": [],
        "tier in (web,api)": names,
        "tier notin (web)": [],
        "app,!canary": names,
        "canary": [],
    }
    assert out["by_field"] == {
        "status.phase=Running": 3,
        "status.phase!=Running": 0,
        f"metadata.name={names[0]}": 1,
        "metadata.namespace=default,spec.restartPolicy=Always": 3,
    }
    assert sorted(p.metadata.name for p in out["all"].items) == names
    assert out["other_ns"].items == []

    read: client.V1Pod = out["read"]
    assert read.kind == "Pod" and read.api_version == "v1"
    assert read.metadata.name == names[0]
    assert read.metadata.uid == by_name[names[0]].uid

    for key in ("missing", "wrong_ns"):
        assert out[key].status == 404
    assert status_of(out["missing"]) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "shopping-agent-zzzzz" not found',
        "reason": "NotFound",
        "details": {"name": "shopping-agent-zzzzz", "kind": "pods"},
        "code": 404,
    }
    assert out["bad_label"].status == 400
    bad_label = status_of(out["bad_label"])
    assert bad_label["reason"] == "BadRequest" and bad_label["code"] == 400
    assert "app in (" in bad_label["message"]
    bad_field = status_of(out["bad_field"])
    assert out["bad_field"].status == 400
    assert "'spec.x' is not supported" in bad_field["message"]


def test_pending_pods_look_pending(replica_argv: Callable[[str], list[str]]) -> None:
    def calls(url: str) -> client.V1PodList:
        api, v1 = core_v1(url)
        with api:
            return v1.list_namespaced_pod("default")

    async def scenario() -> client.V1PodList:
        # A 60 s startup delay keeps every pod Pending for the whole test.
        async with running(replica_argv("serve"), startup_delay_s=6000, wait_ready=False) as (
            _,
            url,
        ):
            return await asyncio.to_thread(calls, url)

    listed = asyncio.run(scenario())
    assert len(listed.items) == 2
    for item in listed.items:
        assert item.status.phase == "Pending"
        conditions = {c.type: c.status for c in item.status.conditions}
        assert conditions["Ready"] == "False"
        assert conditions["PodScheduled"] == "True"
        [container] = item.status.container_statuses
        assert container.ready is False
        assert container.started is False
        assert container.state.waiting.reason == "ContainerCreating"


def test_delete_honours_grace_preconditions_and_dry_run(
    replica_argv: Callable[[str], list[str]],
) -> None:
    def calls(url: str, names: list[str]) -> dict[str, Any]:
        p0, p1, p2, p3 = names
        api, v1 = core_v1(url)
        out: dict[str, Any] = {}
        with api:
            out["dry_run"] = v1.delete_namespaced_pod(p0, "default", dry_run="All")
            out["after_dry_run"] = v1.read_namespaced_pod(p0, "default")
            try:
                v1.delete_namespaced_pod(
                    p0,
                    "default",
                    body=client.V1DeleteOptions(
                        preconditions=client.V1Preconditions(uid="not-the-uid")
                    ),
                )
            except ApiException as exc:
                out["conflict"] = exc
            out["graceful"] = v1.delete_namespaced_pod(
                p0, "default", body=client.V1DeleteOptions(grace_period_seconds=30)
            )
            # No body: the query parameter is the grace period.
            out["query_zero"] = v1.delete_namespaced_pod(p1, "default", grace_period_seconds=0)
            # A body wins over the query, as on the API server: the fleet default applies.
            out["body_wins"] = v1.delete_namespaced_pod(
                p2, "default", grace_period_seconds=0, body=client.V1DeleteOptions()
            )
            out["negative"] = v1.delete_namespaced_pod(
                p3, "default", body=client.V1DeleteOptions(grace_period_seconds=-3)
            )
            try:
                v1.delete_namespaced_pod("shopping-agent-zzzzz", "default")
            except ApiException as exc:
                out["missing"] = exc
        return out

    async def raw_bad_grace(url: str, name: str) -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession(headers=AUTH) as http,
            http.delete(
                f"{url}/api/v1/namespaces/default/pods/{name}",
                params={"gracePeriodSeconds": "soon"},
            ) as resp,
        ):
            return resp.status, await resp.json()

    async def scenario() -> tuple[list[str], dict[str, Any], list[Pod], tuple[int, Any]]:
        async with running(replica_argv("serve"), replicas=4) as (fleet, url):
            names = sorted(p.name for p in fleet.ready_pods())
            bad = await raw_bad_grace(url, names[0])
            out = await asyncio.to_thread(calls, url, names)
            pods = await fleet.wait_until(
                lambda ps: all(any(p.name == n and not p.live for p in ps) for n in names),
                timeout_s=TIMEOUT,
            )
            return names, out, pods, bad

    names, out, pods, bad = asyncio.run(scenario())
    p0, p1, p2, p3 = names
    ended = {p.name: p for p in pods if p.name in names}

    assert bad[0] == 400 and bad[1]["reason"] == "BadRequest"
    assert "gracePeriodSeconds='soon'" in bad[1]["message"]

    dry: client.V1Pod = out["dry_run"]
    assert dry.metadata.deletion_timestamp is not None
    assert out["after_dry_run"].metadata.deletion_timestamp is None

    assert out["conflict"].status == 409
    conflict = status_of(out["conflict"])
    assert conflict["reason"] == "Conflict"
    assert "not-the-uid" in conflict["message"]

    graceful: client.V1Pod = out["graceful"]
    assert graceful.metadata.deletion_grace_period_seconds == 30
    # deletionTimestamp is when the grace period ends, as the API server sets it.
    assert graceful.metadata.deletion_timestamp >= graceful.metadata.creation_timestamp + (
        dt.timedelta(seconds=29)
    )
    assert out["query_zero"].metadata.deletion_grace_period_seconds == 0
    assert out["body_wins"].metadata.deletion_grace_period_seconds == 20
    assert out["negative"].metadata.deletion_grace_period_seconds == 1
    assert out["missing"].status == 404

    # The stand-in replica exits 0 on SIGTERM: graceful deletes ended that way,
    # the zero-grace one was SIGKILLed.
    assert ended[p0].exit_code == 0
    assert ended[p1].exit_code == -signal.SIGKILL
    assert ended[p2].exit_code == 0
    assert ended[p3].exit_code == 0
    replaced = {p.replaces for p in pods if p.replaces}
    assert set(names) <= replaced


def test_discovery_and_unknown_paths(replica_argv: Callable[[str], list[str]]) -> None:
    def calls(url: str) -> dict[str, Any]:
        api, v1 = core_v1(url)
        out: dict[str, Any] = {}
        with api:
            out["version"] = client.VersionApi(api).get_code()
            out["api"] = client.CoreApi(api).get_api_versions()
            out["resources"] = v1.get_api_resources()
            out["groups"] = client.ApisApi(api).get_api_versions()
            try:
                v1.create_namespaced_pod("default", client.V1Pod())
            except ApiException as exc:
                out["create"] = exc
            try:
                v1.list_namespaced_service("default")
            except ApiException as exc:
                out["services"] = exc
        return out

    async def scenario() -> dict[str, Any]:
        async with running(replica_argv("serve"), replicas=1) as (_, url):
            return await asyncio.to_thread(calls, url)

    out = asyncio.run(scenario())
    assert out["version"].major == "1"
    assert out["version"].git_version.endswith("+loadlab")
    assert out["api"].versions == ["v1"]
    [pods] = out["resources"].resources
    assert (pods.name, pods.kind, pods.namespaced) == ("pods", "Pod", True)
    assert sorted(pods.verbs) == ["delete", "get", "list"]
    assert out["groups"].groups == []
    assert out["create"].status == 405
    assert status_of(out["create"])["reason"] == "MethodNotAllowed"
    assert out["services"].status == 404
    assert status_of(out["services"])["reason"] == "NotFound"


# -- chaostoolkit-kubernetes -------------------------------------------------------------


def test_chaosk8s_counts_checks_and_terminates_pods(
    replica_argv: Callable[[str], list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    selector = "app=shopping-agent"

    async def scenario() -> dict[str, Any]:
        async with running(replica_argv("serve"), replicas=2) as (fleet, url):
            point_chaosk8s_at(monkeypatch, url, tmp_path)
            before = sorted(p.name for p in fleet.pods())
            out: dict[str, Any] = {"before": before}
            out["count"] = await asyncio.to_thread(
                count_pods, label_selector=selector, ns="default"
            )
            out["count_running"] = await asyncio.to_thread(
                count_pods, label_selector=selector, phase="Running", ns="default"
            )
            out["in_phase"] = await asyncio.to_thread(
                pods_in_phase, label_selector=selector, phase="Running", ns="default"
            )
            out["deleted"] = await asyncio.to_thread(
                terminate_pods, label_selector=selector, ns="default", qty=1, grace_period=0
            )
            [victim] = out["deleted"]
            await fleet.wait_until(gone_and_replaced(victim), timeout_s=TIMEOUT)
            out["terminated"] = next(
                p for p in fleet.pods(include_terminated=True) if p.name == victim
            )
            out["after"] = sorted(p.name for p in fleet.pods())
            out["count_after"] = await asyncio.to_thread(
                count_pods, label_selector=selector, phase="Running", ns="default"
            )
            out["in_phase_after"] = await asyncio.to_thread(
                pods_in_phase, label_selector=selector, phase="Running", ns="default"
            )
            return out

    out = asyncio.run(scenario())
    assert out["count"] == 2
    assert out["count_running"] == 2
    assert out["in_phase"] is True
    # chaosk8s takes the first pods in the server's (name) order.
    assert out["deleted"] == [out["before"][0]]
    victim = out["deleted"][0]
    assert out["terminated"].exit_code == -signal.SIGKILL
    assert victim not in out["after"]
    assert len(out["after"]) == 2
    [newcomer] = set(out["after"]) - set(out["before"])
    assert newcomer != victim
    assert out["count_after"] == 2
    assert out["in_phase_after"] is True


def test_chaosk8s_with_a_selector_that_matches_nothing(
    replica_argv: Callable[[str], list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    selector = "app=nothing-here"

    async def scenario() -> dict[str, Any]:
        async with running(replica_argv("serve"), replicas=2) as (fleet, url):
            point_chaosk8s_at(monkeypatch, url, tmp_path)
            out: dict[str, Any] = {"before": {p.uid for p in fleet.pods()}}
            out["count"] = await asyncio.to_thread(count_pods, label_selector=selector)
            out["deleted"] = await asyncio.to_thread(
                terminate_pods, label_selector=selector, qty=1, grace_period=0
            )
            out["quiet"] = await asyncio.to_thread(
                pods_in_phase, label_selector=selector, raise_on_invalid_phase=False
            )
            try:
                await asyncio.to_thread(pods_in_phase, label_selector=selector)
            except ActivityFailed as exc:
                out["raised"] = exc
            out["after"] = {p.uid for p in fleet.pods()}
            out["deleting"] = [p.name for p in fleet.pods() if p.deletion_timestamp]
            return out

    out = asyncio.run(scenario())
    assert out["count"] == 0
    assert out["deleted"] == []
    assert out["quiet"] is False
    assert str(out["raised"]) == "no pods 'app=nothing-here' were found"
    assert out["after"] == out["before"]
    assert out["deleting"] == []


def test_chaosk8s_sees_pending_pods_as_not_running(
    replica_argv: Callable[[str], list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def scenario() -> dict[str, Any]:
        async with running(replica_argv("serve"), startup_delay_s=6000, wait_ready=False) as (
            _,
            url,
        ):
            point_chaosk8s_at(monkeypatch, url, tmp_path)
            out: dict[str, Any] = {}
            out["pending"] = await asyncio.to_thread(
                count_pods, label_selector="app=shopping-agent", phase="Pending"
            )
            out["running"] = await asyncio.to_thread(
                count_pods, label_selector="app=shopping-agent", phase="Running"
            )
            try:
                await asyncio.to_thread(pods_in_phase, label_selector="app=shopping-agent")
            except ActivityFailed as exc:
                out["raised"] = exc
            return out

    out = asyncio.run(scenario())
    assert out["pending"] == 2
    assert out["running"] == 0
    assert "is in phase 'Pending' but should be 'Running'" in str(out["raised"])


def test_chaosk8s_against_a_closed_port_raises_max_retry_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}"
    point_chaosk8s_at(monkeypatch, url, tmp_path)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as caught:
        count_pods(label_selector="app=shopping-agent")
    assert isinstance(caught.value.reason, urllib3.exceptions.NewConnectionError)
    assert "/api/v1/namespaces/default/pods" in str(caught.value)


# -- the chaos command line --------------------------------------------------------------


def test_chaos_run_terminates_a_pod(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    chaos = Path(sys.executable).with_name("chaos")
    experiment = {
        "title": "A shopping-agent pod dies and is replaced",
        "description": "terminate_pods against loadlab's embedded pods API",
        "steady-state-hypothesis": {
            "title": "two agent pods run",
            "probes": [
                {
                    "type": "probe",
                    "name": "two-pods-running",
                    "tolerance": 2,
                    "provider": {
                        "type": "python",
                        "module": "chaosk8s.pod.probes",
                        "func": "count_pods",
                        "arguments": {"label_selector": "app=shopping-agent", "phase": "Running"},
                    },
                }
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "terminate-one-pod",
                "provider": {
                    "type": "python",
                    "module": "chaosk8s.pod.actions",
                    "func": "terminate_pods",
                    "arguments": {
                        "label_selector": "app=shopping-agent",
                        "ns": "default",
                        "qty": 1,
                        "grace_period": 0,
                    },
                },
            }
        ],
        "rollbacks": [],
    }
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment), encoding="utf-8")
    journal_path = tmp_path / "journal.json"

    async def scenario() -> tuple[int, str, list[str], list[Pod]]:
        async with running(replica_argv("serve"), replicas=2) as (fleet, url):
            before = sorted(p.name for p in fleet.pods())
            kubeconfig = tmp_path / "kubeconfig"
            write_kubeconfig(kubeconfig, server=url, token=TOKEN)
            env = {
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
                "KUBECONFIG": str(kubeconfig),
            }
            proc = await asyncio.create_subprocess_exec(
                str(chaos),
                "--no-version-check",
                "--no-log-file",
                "--settings",
                str(tmp_path / "settings.yaml"),
                "run",
                "--journal-path",
                str(journal_path),
                "--hypothesis-strategy",
                "before-method-only",
                str(path),
                cwd=tmp_path,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                output, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
            assert proc.returncode is not None
            journal = json.loads(journal_path.read_text(encoding="utf-8"))
            [victim] = journal["run"][0]["output"]
            pods = await fleet.wait_until(gone_and_replaced(victim), timeout_s=TIMEOUT)
            return proc.returncode, output.decode(), before, pods

    code, output, before, pods = asyncio.run(scenario())
    assert code == 0, output
    journal = json.loads(journal_path.read_text(encoding="utf-8"))
    assert journal["status"] == "completed"
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert journal["run"][0]["status"] == "succeeded"
    assert journal["run"][0]["output"] == [before[0]]
    victim = next(p for p in pods if p.name == before[0])
    assert victim.exit_code == -signal.SIGKILL


def test_cli_serves_pods_in_the_given_namespace(
    replica_argv: Callable[[str], list[str]], tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadlab.embedded.fleet",
            "--replicas",
            "1",
            "--startup-delay",
            "0",
            "--namespace",
            "shop",
            "--",
            *replica_argv("serve"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"LOADLAB_ADMIN_TOKEN": TOKEN},
    )
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        assert readable, "the fleet printed nothing in time"
        line = proc.stdout.readline().strip()
        assert line.startswith("FLEET "), line
        url = dict(t.split("=", 1) for t in line.split()[1:])["api"]
        api, v1 = core_v1(url)
        with api:
            in_shop = v1.list_namespaced_pod("shop")
            in_default = v1.list_namespaced_pod("default")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert [p.metadata.namespace for p in in_shop.items] == ["shop"]
    assert in_default.items == []


def test_cli_refuses_a_bad_namespace() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadlab.embedded.fleet", "--namespace", "Not_A_Namespace"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "namespace 'Not_A_Namespace' is invalid" in done.stderr


# -- the token ---------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "garbage"], ids=["no-token", "garbage-token"])
def test_the_pods_api_refuses_a_missing_or_wrong_token_and_deletes_nothing(
    replica_argv: Callable[[str], list[str]], token: str | None
) -> None:
    def calls(url: str, name: str) -> dict[str, ApiException]:
        api, v1 = core_v1(url, token=token)
        out: dict[str, ApiException] = {}
        with api:
            for what, call in (
                ("list", lambda: v1.list_namespaced_pod("default")),
                ("read", lambda: v1.read_namespaced_pod(name, "default")),
                (
                    "delete",
                    lambda: v1.delete_namespaced_pod(name, "default", grace_period_seconds=0),
                ),
            ):
                try:
                    call()
                except ApiException as exc:
                    out[what] = exc
        return out

    async def raw_fleet_delete(url: str, name: str) -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.delete(f"{url}/fleet/pods/{name}", params={"gracePeriodSeconds": "0"}) as resp,
        ):
            return resp.status

    async def scenario() -> tuple[dict[str, ApiException], int, list[str], list[str]]:
        async with running(replica_argv("serve"), replicas=2) as (fleet, url):
            before = sorted(p.name for p in fleet.ready_pods())
            refused = await asyncio.to_thread(calls, url, before[0])
            fleet_status = await raw_fleet_delete(url, before[0])
            after = sorted(p.name for p in fleet.ready_pods())
            return refused, fleet_status, before, after

    refused, fleet_status, before, after = asyncio.run(scenario())
    assert sorted(refused) == ["delete", "list", "read"]
    for exc in refused.values():
        assert exc.status == 401
        body = status_of(exc)
        assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
        assert "Bearer" in body["message"] and TOKEN not in body["message"]
    assert fleet_status == 401
    assert after == before, "no pod was deleted"


def test_the_stack_kubeconfig_is_private_and_carries_the_token(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, server="http://127.0.0.1:1", token=TOKEN)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = client.Configuration()
    kube_config.load_kube_config(config_file=str(path), client_configuration=loaded)
    assert loaded.host == "http://127.0.0.1:1"
    assert loaded.auth_settings()["BearerToken"]["value"] == f"Bearer {TOKEN}"
