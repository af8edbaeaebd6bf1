"""The Kubernetes core/v1 pods API, served by the fleet on loopback.

Chaos Toolkit's Kubernetes extension (``chaosk8s``) and anything else built on
the kubernetes Python client can list, read and delete the fleet's pods exactly
as they do on EKS. The routes sit on the fleet's status API application (see
:func:`~loadlab.embedded.fleet.api.fleet_app`), so the base URL printed by
``python -m loadlab.embedded.fleet`` (``api=...``) and the embedded stack's
``fleet_url`` are the Kubernetes API server URL too.

Endpoints (JSON only; every path under ``/api`` needs the embedded stack's token
as a bearer token, which the stack's kubeconfig carries: without it a 401
``Unauthorized`` Status; ``/version`` is open, as on a cluster)::

    GET    /api/v1/namespaces/{ns}/pods          PodList; ?labelSelector= ?fieldSelector=
    GET    /api/v1/pods                          PodList over all namespaces (same queries)
    GET    /api/v1/namespaces/{ns}/pods/{name}   Pod
    DELETE /api/v1/namespaces/{ns}/pods/{name}   Pod, marked for deletion
    GET    /version  /api  /api/v1  /apis        discovery documents

* Every pod lives in one namespace (``default`` unless configured); listing
  another namespace gives an empty list, reading a pod in it a 404, as for a
  namespace without pods on a real cluster. Lists are sorted by name, as the
  API server returns them (``chaosk8s`` picks "the first N" in that order).
* ``labelSelector`` has the full Kubernetes grammar (``a=b``, ``a==b``,
  ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, ``a>1``, ``a<1``,
  comma = AND); ``fieldSelector`` supports ``metadata.name``,
  ``metadata.namespace``, ``status.phase``, ``status.podIP``, ``spec.nodeName``
  and ``spec.restartPolicy`` with ``=``, ``==``, ``!=``. A selector that does
  not parse is a 400 ``BadRequest`` Status naming the bad part.
* ``limit`` and ``continue`` are ignored (the whole list is one page, which a
  client reads as complete); ``watch`` is refused with 405.
* DELETE takes ``V1DeleteOptions`` in the body or, when there is no body, the
  query parameters, as the API server does (a body wins; its absent fields are
  not filled from the query). ``gracePeriodSeconds``: 0 SIGKILLs the replica at
  once; N > 0 sends SIGTERM and SIGKILL after N s; negative counts as 1;
  absent uses the fleet's grace period. A second delete may only shorten the
  grace. ``preconditions`` (uid, resourceVersion) give 409 ``Conflict`` when
  they do not hold; ``dryRun=All`` answers without deleting. The fleet creates
  the replacement pod (new name, new uid) at once; it turns Running after the
  startup delay.
* Errors are ``v1/Status`` objects, e.g. ``{"kind": "Status", "apiVersion":
  "v1", "status": "Failure", "message": "pods \\"x\\" not found", "reason":
  "NotFound", "code": 404, ...}``; unknown paths under ``/api`` and ``/apis``
  are 404 Status, other verbs on pods 405 Status.

Pointing Chaos Toolkit at it: the embedded stack writes a kubeconfig next to
its ``stack.json`` (``.loadlab/kubeconfig``, mode 0600: the server URL and the
token), which ``loadlab gameday`` passes as ``KUBECONFIG``; by hand::

    export KUBECONFIG=.loadlab/kubeconfig
    chaos run experiment.json   # chaosk8s.pod.actions.terminate_pods etc., ns "default"
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from loadlab.embedded.fleet.k8s_objects import (
    POD_FIELDS,
    api_groups,
    api_resources,
    api_versions,
    pod_fields,
    pod_list,
    pod_object,
    status_object,
    version_info,
)
from loadlab.embedded.fleet.pod import Pod, PodNotFound, now
from loadlab.embedded.fleet.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from loadlab.embedded.fleet.supervisor import Fleet
from loadlab.errors import ConfigError

DEFAULT_NAMESPACE = "default"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Failure(Exception):
    """A request the API refuses; answered with a ``v1/Status``."""

    def __init__(self, code: int, reason: str, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.status = status_object(code=code, reason=reason, message=message, name=name)
        self.code = code


def _not_found(name: str) -> _Failure:
    return _Failure(404, "NotFound", f'pods "{name}" not found', name=name)


def unauthorized_status(message: str) -> dict[str, Any]:
    """The ``v1/Status`` of a request without the right bearer token (401)."""
    return status_object(code=401, reason="Unauthorized", message=message)


def _bad_request(message: str) -> _Failure:
    return _Failure(400, "BadRequest", message)


def _answering_failures(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Failure as failure:
            return web.json_response(failure.status, status=failure.code)

    return wrapped


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteOptions:
    """The parts of ``V1DeleteOptions`` the fleet acts on."""

    grace_period_seconds: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False


class _ResourceVersions:
    """Increasing ``resourceVersion`` numbers, one per observed pod snapshot.

    The fleet replaces a pod's snapshot on every change, so a snapshot that is
    not the one seen last time means the pod changed: it gets the next number.
    """

    def __init__(self) -> None:
        self.last = 0
        self._seen: dict[str, tuple[Pod, int]] = {}

    def of(self, pod: Pod) -> int:
        seen = self._seen.get(pod.name)
        if seen is not None and seen[0] is pod:
            return seen[1]
        self.last += 1
        self._seen[pod.name] = (pod, self.last)
        return self.last

    def keep_only(self, names: Iterable[str]) -> None:
        keep = set(names)
        for name in [n for n in self._seen if n not in keep]:
            del self._seen[name]


class _PodsAPI:
    """Handlers bound to one fleet and one namespace."""

    def __init__(self, fleet: Fleet, namespace: str) -> None:
        self._fleet = fleet
        self._namespace = namespace
        self._versions = _ResourceVersions()

    # -- discovery ----------------------------------------------------------------

    async def version(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(version_info())

    async def api(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(api_versions(request.host))

    async def api_v1(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(api_resources())

    async def apis(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(api_groups())

    async def unknown_path(self, request: web.Request) -> web.StreamResponse:
        raise _Failure(404, "NotFound", "the server could not find the requested resource")

    async def unsupported_verb(self, request: web.Request) -> web.StreamResponse:
        raise _Failure(
            405,
            "MethodNotAllowed",
            f"{request.method} is not supported on {request.path} by loadlab's pods API: "
            "it serves get, list and delete",
        )

    # -- pods ---------------------------------------------------------------------

    async def list_namespaced(self, request: web.Request) -> web.StreamResponse:
        return self._list(request, request.match_info["namespace"])

    async def list_all(self, request: web.Request) -> web.StreamResponse:
        return self._list(request, None)

    async def read(self, request: web.Request) -> web.StreamResponse:
        pod = self._find(request)
        return web.json_response(self._render(pod))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        pod = self._find(request)
        options = await _delete_options(request)
        self._check_preconditions(pod, options)
        grace = options.grace_period_seconds
        if grace is not None and grace < 0:
            grace = 1  # as the API server does on the delete path
        if options.dry_run:
            version = self._versions.of(pod)
            if pod.deletion_timestamp is None:
                pod = dataclasses.replace(
                    pod,
                    deletion_timestamp=now(),
                    deletion_grace_period_seconds=float(
                        self._fleet.termination_grace_s if grace is None else grace
                    ),
                )
            return web.json_response(self._render(pod, version=version))
        try:
            deleted = await self._fleet.delete_pod(
                pod.name, grace_period_seconds=None if grace is None else float(grace)
            )
        except PodNotFound:
            raise _not_found(pod.name) from None
        return web.json_response(self._render(deleted))

    # -- internals ----------------------------------------------------------------

    def _list(self, request: web.Request, namespace: str | None) -> web.StreamResponse:
        if request.query.get("watch", "").lower() in ("true", "1"):
            raise _Failure(
                405,
                "MethodNotAllowed",
                "watch is not supported by loadlab's pods API; list the pods again instead",
            )
        labels, fields = _selectors(request)
        pods = self._fleet.pods()
        self._versions.keep_only(p.name for p in pods)
        items = []
        if namespace in (None, self._namespace):
            for pod in sorted(pods, key=lambda p: p.name):
                version = self._versions.of(pod)
                if labels.matches(pod.labels) and fields.matches(
                    pod_fields(pod, namespace=self._namespace)
                ):
                    items.append(self._render(pod, version=version, with_kind=False))
        return web.json_response(pod_list(items, resource_version=self._versions.last))

    def _find(self, request: web.Request) -> Pod:
        name = request.match_info["name"]
        if request.match_info["namespace"] != self._namespace:
            raise _not_found(name)
        try:
            return self._fleet.get_pod(name)
        except PodNotFound:
            raise _not_found(name) from None

    def _check_preconditions(self, pod: Pod, options: DeleteOptions) -> None:
        conflict = f'Operation cannot be fulfilled on pods "{pod.name}": '
        if options.uid is not None and options.uid != pod.uid:
            raise _Failure(
                409,
                "Conflict",
                conflict + f"the UID in the precondition ({options.uid}) does not match the "
                f"UID in record ({pod.uid}). The object might have been deleted and then "
                "recreated",
                name=pod.name,
            )
        version = str(self._versions.of(pod))
        if options.resource_version is not None and options.resource_version != version:
            raise _Failure(
                409,
                "Conflict",
                conflict + f"the ResourceVersion in the precondition ({options.resource_version})"
                f" does not match the ResourceVersion in record ({version}). The object might "
                "have been modified",
                name=pod.name,
            )

    def _render(
        self, pod: Pod, *, version: int | None = None, with_kind: bool = True
    ) -> dict[str, Any]:
        return pod_object(
            pod,
            namespace=self._namespace,
            resource_version=self._versions.of(pod) if version is None else version,
            termination_grace_s=self._fleet.termination_grace_s,
            with_kind=with_kind,
        )


def _selectors(request: web.Request) -> tuple[LabelSelector, FieldSelector]:
    try:
        labels = parse_label_selector(request.query.get("labelSelector", ""))
        fields = parse_field_selector(request.query.get("fieldSelector", ""), fields=POD_FIELDS)
    except SelectorError as exc:
        message = exc.message if exc.hint is None else f"{exc.message} ({exc.hint})"
        raise _bad_request(message) from None
    return labels, fields


def _int_option(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad_request(f"{name}={value!r} is invalid: give a whole number of seconds")
    return value


async def _delete_options(request: web.Request) -> DeleteOptions:
    """Read DeleteOptions from the body, or from the query when there is no body."""
    body = await request.read()
    if body.strip():
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise _bad_request(f"the DeleteOptions body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise _bad_request("the DeleteOptions body must be a JSON object")
        preconditions = data.get("preconditions") or {}
        if not isinstance(preconditions, dict):
            raise _bad_request("DeleteOptions.preconditions must be an object")
        dry_run = data.get("dryRun") or []
        if not isinstance(dry_run, list):
            raise _bad_request('DeleteOptions.dryRun must be a list, e.g. ["All"]')
        return DeleteOptions(
            grace_period_seconds=_int_option("gracePeriodSeconds", data.get("gracePeriodSeconds")),
            uid=_str_option("preconditions.uid", preconditions.get("uid")),
            resource_version=_str_option(
                "preconditions.resourceVersion", preconditions.get("resourceVersion")
            ),
            dry_run=_dry_run(dry_run),
        )
    raw = request.query.get("gracePeriodSeconds")
    grace: int | None = None
    if raw is not None:
        try:
            grace = int(raw)
        except ValueError:
            raise _bad_request(
                f"gracePeriodSeconds={raw!r} is invalid: give a whole number of seconds"
            ) from None
    return DeleteOptions(
        grace_period_seconds=grace, dry_run=_dry_run(request.query.getall("dryRun", []))
    )


def _str_option(name: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _bad_request(f"{name}={value!r} is invalid: give a string")


def _dry_run(values: list[Any]) -> bool:
    for value in values:
        if value != "All":
            raise _bad_request(f'dryRun={value!r} is invalid: the only supported value is "All"')
    return bool(values)


def check_namespace(namespace: str) -> str:
    """Return ``namespace`` if it is a valid Kubernetes namespace name; else ConfigError."""
    if not _NAMESPACE.fullmatch(namespace):
        raise ConfigError(
            f"namespace {namespace!r} is invalid",
            hint="a namespace is 1-63 of a-z 0-9 '-', starting and ending alphanumeric",
        )
    return namespace


def add_kubernetes_routes(
    app: web.Application, fleet: Fleet, *, namespace: str = DEFAULT_NAMESPACE
) -> None:
    """Serve the core/v1 pods API of ``fleet`` (pods in ``namespace``) from ``app``.

    Adds ``/version``, ``/api``, ``/api/v1``, ``/apis``, the pods routes and
    Status answers for every other path under ``/api`` and ``/apis``.
    """
    pods = _PodsAPI(fleet, check_namespace(namespace))
    wrap = _answering_failures
    router = app.router
    # The kubernetes client asks for "/version/", "/api/", "/apis/": serve both spellings.
    for path, handler in (
        ("/version", pods.version),
        ("/api", pods.api),
        ("/api/v1", pods.api_v1),
        ("/apis", pods.apis),
    ):
        router.add_get(path, wrap(handler))
        router.add_get(path + "/", wrap(handler))
    collection = router.add_resource("/api/v1/namespaces/{namespace}/pods")
    collection.add_route("GET", wrap(pods.list_namespaced))
    collection.add_route("*", wrap(pods.unsupported_verb))
    everywhere = router.add_resource("/api/v1/pods")
    everywhere.add_route("GET", wrap(pods.list_all))
    everywhere.add_route("*", wrap(pods.unsupported_verb))
    item = router.add_resource("/api/v1/namespaces/{namespace}/pods/{name}")
    item.add_route("GET", wrap(pods.read))
    item.add_route("DELETE", wrap(pods.delete))
    item.add_route("*", wrap(pods.unsupported_verb))
    router.add_route("*", "/api/{tail:.*}", wrap(pods.unknown_path))
    router.add_route("*", "/apis/{tail:.*}", wrap(pods.unknown_path))


def kubernetes_app(fleet: Fleet, *, namespace: str = DEFAULT_NAMESPACE) -> web.Application:
    """An aiohttp application serving only the pods API (for serving it on its own port)."""
    app = web.Application()
    add_kubernetes_routes(app, fleet, namespace=namespace)
    return app
