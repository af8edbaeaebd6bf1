"""Fleet pods rendered as Kubernetes core/v1 JSON objects (Pod, Status, discovery).

Pure functions: a :class:`~loadlab.embedded.fleet.pod.Pod` snapshot in, the JSON
the Kubernetes API server would send out. The shapes are the ones the
kubernetes Python client deserializes into ``V1Pod``, ``V1PodList``,
``V1Status``, ``VersionInfo``, ``V1APIVersions`` and ``V1APIResourceList``.

How a fleet pod maps onto a Kubernetes pod:

* one container, ``agent``, image ``loadlab/agent:local``, listening on the
  fleet's shared port; ``podIP`` and ``hostIP`` are 127.0.0.1;
* phase is the fleet's phase; a pod that is ``Pending`` has its container
  ``waiting`` (``ContainerCreating``), a ``Running`` one has it ``running``;
* ``Ready`` and ``ContainersReady`` follow the READY line of the replica;
* ``restartCount`` is always 0: like a ReplicaSet that replaces pods, the fleet
  starts a new pod (new name, new uid) instead of restarting a container;
* ``metadata.deletionTimestamp`` is when the grace period ends (request time +
  grace), as the API server sets it;
* loadlab's own facts (instance id, pid, why the pod was created) are
  annotations under ``loadlab/``.
"""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from typing import Any

from loadlab.embedded.fleet.pod import Pod

API_VERSION = "v1"
CONTAINER_NAME = "agent"
CONTAINER_IMAGE = "loadlab/agent:local"
NODE_NAME = "loadlab-local"
POD_IP = "127.0.0.1"
# The Kubernetes release whose core/v1 pods behaviour this API follows.
SERVED_VERSION = ("1", "31")
# The pod fields a field selector may name (a subset of the API server's).
POD_FIELDS = frozenset(
    {
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "status.phase",
        "status.podIP",
    }
)


def k8s_time(t: float) -> str:
    """A UNIX time as Kubernetes writes ``metav1.Time`` (RFC 3339, seconds, UTC)."""
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_fields(pod: Pod, *, namespace: str) -> dict[str, str]:
    """The values of the pod fields a field selector may name (:data:`POD_FIELDS`)."""
    return {
        "metadata.name": pod.name,
        "metadata.namespace": namespace,
        "spec.nodeName": NODE_NAME,
        "spec.restartPolicy": "Always",
        "status.phase": pod.phase,
        "status.podIP": POD_IP,
    }


def pod_object(
    pod: Pod,
    *,
    namespace: str,
    resource_version: int,
    termination_grace_s: float | None = None,
    with_kind: bool = True,
) -> dict[str, Any]:
    """The ``v1/Pod`` JSON for a fleet pod snapshot."""
    metadata: dict[str, Any] = {
        "name": pod.name,
        "generateName": pod.name.rsplit("-", 1)[0] + "-",
        "namespace": namespace,
        "uid": pod.uid,
        "resourceVersion": str(resource_version),
        "creationTimestamp": k8s_time(pod.created_at),
        "labels": dict(pod.labels),
    }
    annotations = _annotations(pod)
    if annotations:
        metadata["annotations"] = annotations
    if pod.deletion_timestamp is not None:
        grace = pod.deletion_grace_period_seconds or 0.0
        metadata["deletionTimestamp"] = k8s_time(pod.deletion_timestamp + grace)
        metadata["deletionGracePeriodSeconds"] = int(grace)
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": CONTAINER_NAME,
                "image": CONTAINER_IMAGE,
                "imagePullPolicy": "Never",
                "ports": [{"name": "http", "containerPort": pod.port, "protocol": "TCP"}],
            }
        ],
        "restartPolicy": "Always",
        "nodeName": NODE_NAME,
        "schedulerName": "default-scheduler",
    }
    if termination_grace_s is not None:
        spec["terminationGracePeriodSeconds"] = int(termination_grace_s)
    body: dict[str, Any] = {"metadata": metadata, "spec": spec, "status": _status(pod)}
    if with_kind:
        return {"kind": "Pod", "apiVersion": API_VERSION, **body}
    return body


def pod_list(items: list[dict[str, Any]], *, resource_version: int) -> dict[str, Any]:
    """The ``v1/PodList`` JSON around already rendered pods."""
    return {
        "kind": "PodList",
        "apiVersion": API_VERSION,
        "metadata": {"resourceVersion": str(resource_version)},
        "items": items,
    }


def status_object(
    *, code: int, reason: str, message: str, name: str | None = None
) -> dict[str, Any]:
    """A failure ``v1/Status`` as the API server returns it with an error code."""
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": API_VERSION,
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if name is not None:
        status["details"] = {"name": name, "kind": "pods"}
    return status


def version_info() -> dict[str, str]:
    """``GET /version``: a Kubernetes-shaped version naming loadlab as the server."""
    major, minor = SERVED_VERSION
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{major}.{minor}.0+loadlab",
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": "loadlab",
        "platform": f"{sys.platform}/{platform.machine()}",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """``GET /api``: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": [API_VERSION],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_resources() -> dict[str, Any]:
    """``GET /api/v1``: the one resource served, pods, and its verbs."""
    return {
        "kind": "APIResourceList",
        "groupVersion": API_VERSION,
        "resources": [
            {
                "name": "pods",
                "singularName": "pod",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["delete", "get", "list"],
                "shortNames": ["po"],
            }
        ],
    }


def api_groups() -> dict[str, Any]:
    """``GET /apis``: no named API groups are served."""
    return {"kind": "APIGroupList", "apiVersion": API_VERSION, "groups": []}


# -- internals ------------------------------------------------------------------------


def _annotations(pod: Pod) -> dict[str, str]:
    facts = {
        "loadlab/instance-id": pod.instance_id,
        "loadlab/pid": None if pod.pid is None else str(pod.pid),
        "loadlab/init-ms": None if pod.init_ms is None else f"{pod.init_ms:.1f}",
        "loadlab/restart-reason": pod.restart_reason,
        "loadlab/replaces": pod.replaces,
    }
    return {key: value for key, value in facts.items() if value is not None}


def _condition(kind: str, ok: bool, since: float, reason: str | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": k8s_time(since),
    }
    if reason is not None and not ok:
        condition["reason"] = reason
    return condition


def _status(pod: Pod) -> dict[str, Any]:
    running = pod.phase == "Running"
    ready = pod.ready and running
    ready_since = pod.ready_at if ready and pod.ready_at else (pod.started_at or pod.created_at)
    conditions = [
        _condition("PodReadyToStartContainers", running, pod.started_at or pod.created_at),
        _condition("Initialized", True, pod.created_at),
        _condition("Ready", ready, ready_since, "ContainersNotReady"),
        _condition("ContainersReady", ready, ready_since, "ContainersNotReady"),
        _condition("PodScheduled", True, pod.created_at),
    ]
    status: dict[str, Any] = {
        "phase": pod.phase,
        "conditions": conditions,
        "hostIP": POD_IP,
        "hostIPs": [{"ip": POD_IP}],
        "podIP": POD_IP,
        "podIPs": [{"ip": POD_IP}],
        "startTime": k8s_time(pod.created_at),
        "qosClass": "BestEffort",
        "containerStatuses": [_container_status(pod, ready=ready)],
    }
    if pod.reason is not None and not pod.live:
        status["reason"] = pod.reason
    return status


def _container_status(pod: Pod, *, ready: bool) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": CONTAINER_IMAGE,
        "imageID": "",
        "ready": ready,
        "restartCount": 0,
        "started": pod.started_at is not None and pod.live,
    }
    if pod.pid is not None:
        status["containerID"] = f"process://{pod.pid}"
    if pod.phase == "Pending":
        status["state"] = {"waiting": {"reason": "ContainerCreating"}}
    elif pod.phase == "Running":
        status["state"] = {"running": {"startedAt": k8s_time(pod.started_at or pod.created_at)}}
    else:
        status["state"] = {"terminated": _terminated(pod)}
    return status


def _terminated(pod: Pod) -> dict[str, Any]:
    code = pod.exit_code
    # Kubernetes reports a signal death as 128 + the signal number (SIGKILL: 137).
    exit_code = 128 - code if code is not None and code < 0 else (code or 0)
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
    }
    if code is not None and code < 0:
        terminated["signal"] = -code
    if pod.started_at is not None:
        terminated["startedAt"] = k8s_time(pod.started_at)
    if pod.finished_at is not None:
        terminated["finishedAt"] = k8s_time(pod.finished_at)
    if pod.reason:
        terminated["message"] = pod.reason
    return terminated
