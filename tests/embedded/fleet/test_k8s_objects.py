"""Fleet pods as Kubernetes JSON, read back through the kubernetes client's own models."""

from __future__ import annotations

import datetime as dt
import json
import signal
from typing import Any

from kubernetes import client

from loadlab.embedded.fleet import Pod
from loadlab.embedded.fleet.k8s_objects import (
    POD_FIELDS,
    k8s_time,
    pod_fields,
    pod_object,
    status_object,
)

T0 = 1_700_000_000.0


class _Body:
    """The one attribute ``ApiClient.deserialize`` reads from an HTTP response."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body)


def as_model(body: dict[str, Any], model: str) -> Any:
    return client.ApiClient().deserialize(_Body(body), model)


def running_pod(**changes: Any) -> Pod:
    fields: dict[str, Any] = {
        "name": "shopping-agent-b2c4d",
        "uid": "0b9c8a6e-0000-4000-8000-000000000001",
        "labels": {"app": "shopping-agent"},
        "phase": "Running",
        "created_at": T0,
        "port": 8080,
        "ready": True,
        "pid": 4242,
        "instance_id": "shopping-agent-b2c4d",
        "init_ms": 12.5,
        "started_at": T0 + 1,
        "ready_at": T0 + 2,
    }
    fields.update(changes)
    return Pod(**fields)


def test_k8s_time_is_rfc3339_utc_seconds() -> None:
    assert k8s_time(T0 + 0.9) == "2023-11-14T22:13:20Z"


def test_running_pod_reads_back_as_a_v1_pod() -> None:
    pod = as_model(
        pod_object(running_pod(), namespace="shop", resource_version=7, termination_grace_s=30),
        "V1Pod",
    )
    assert isinstance(pod, client.V1Pod)
    assert pod.metadata.name == "shopping-agent-b2c4d"
    assert pod.metadata.generate_name == "shopping-agent-"
    assert pod.metadata.namespace == "shop"
    assert pod.metadata.resource_version == "7"
    assert pod.metadata.creation_timestamp == dt.datetime.fromtimestamp(T0, tz=dt.UTC)
    assert pod.metadata.annotations == {
        "loadlab/instance-id": "shopping-agent-b2c4d",
        "loadlab/pid": "4242",
        "loadlab/init-ms": "12.5",
    }
    assert pod.spec.termination_grace_period_seconds == 30
    assert pod.spec.restart_policy == "Always"
    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions["Ready"] == "True"
    [container] = pod.status.container_statuses
    assert container.container_id == "process://4242"
    assert container.state.running.started_at == dt.datetime.fromtimestamp(T0 + 1, tz=dt.UTC)


def test_running_but_not_ready_pod_is_not_ready() -> None:
    pod = as_model(pod_object(running_pod(ready=False), namespace="d", resource_version=1), "V1Pod")
    ready = next(c for c in pod.status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "ContainersNotReady")
    assert pod.status.container_statuses[0].ready is False
    assert pod.status.container_statuses[0].started is True


def test_deletion_timestamp_is_the_end_of_the_grace_period() -> None:
    pod = running_pod(deletion_timestamp=T0 + 10, deletion_grace_period_seconds=30.0)
    body = pod_object(pod, namespace="default", resource_version=3)
    assert body["metadata"]["deletionTimestamp"] == k8s_time(T0 + 40)
    assert body["metadata"]["deletionGracePeriodSeconds"] == 30
    # Still Running until its process exits, as a terminating pod on a cluster.
    assert body["status"]["phase"] == "Running"


def test_sigkilled_pod_reports_exit_code_137() -> None:
    pod = running_pod(
        phase="Failed",
        ready=False,
        exit_code=-int(signal.SIGKILL),
        finished_at=T0 + 5,
        reason="Deleted",
    )
    model = as_model(pod_object(pod, namespace="default", resource_version=9), "V1Pod")
    terminated = model.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 137
    assert terminated.signal == int(signal.SIGKILL)
    assert terminated.reason == "Error"
    assert terminated.message == "Deleted"
    assert model.status.reason == "Deleted"


def test_not_found_status_is_the_api_servers() -> None:
    status = as_model(
        status_object(code=404, reason="NotFound", message='pods "x" not found', name="x"),
        "V1Status",
    )
    assert (status.status, status.reason, status.code) == ("Failure", "NotFound", 404)
    assert status.details.name == "x"


def test_every_selectable_field_has_a_value() -> None:
    assert set(pod_fields(running_pod(), namespace="default")) == POD_FIELDS
