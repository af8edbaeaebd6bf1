"""The fleet's status API on loopback: list pods, delete one.

``GET /fleet/pods`` returns a JSON list of pod snapshots (live pods; add
``?includeTerminated=true`` for the recently terminated ones too).
``DELETE /fleet/pods/{name}?gracePeriodSeconds=N`` deletes a pod and returns
its snapshot; 404 if there is no such live pod, 400 for a bad grace period.
Errors are ``{"error": {"kind": ..., "message": ...}}`` like the agent's.

The API is a thin layer over :class:`~loadlab.embedded.fleet.supervisor.Fleet`.
The same application also serves the Kubernetes core/v1 pods API
(``/api/v1/namespaces/{ns}/pods`` ...; see :mod:`loadlab.embedded.fleet.k8s_api`),
so this base URL is the ``KUBERNETES_HOST`` for chaostoolkit-kubernetes.
"""

from __future__ import annotations

import math

from aiohttp import web

from loadlab.embedded.fleet.k8s_api import DEFAULT_NAMESPACE, add_kubernetes_routes, check_namespace
from loadlab.embedded.fleet.pod import PodNotFound
from loadlab.embedded.fleet.supervisor import HOST, Fleet


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"kind": kind, "message": message}}, status=status)


class _PodRoutes:
    """Handlers bound to one fleet (closures over it instead of app-level state)."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    async def list_pods(self, request: web.Request) -> web.Response:
        include = request.query.get("includeTerminated", "false").lower() in ("1", "true")
        pods = self._fleet.pods(include_terminated=include)
        return web.json_response([pod.to_json() for pod in pods])

    async def delete_pod(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        raw = request.query.get("gracePeriodSeconds")
        grace: float | None = None
        if raw is not None:
            try:
                grace = float(raw)
            except ValueError:
                grace = math.nan
            if not math.isfinite(grace) or grace < 0:
                return _error(
                    400,
                    "bad_request",
                    f"gracePeriodSeconds={raw!r} is invalid: give a number of seconds >= 0",
                )
        try:
            pod = await self._fleet.delete_pod(name, grace_period_seconds=grace)
        except PodNotFound as exc:
            return _error(404, "not_found", exc.message)
        return web.json_response(pod.to_json())


def fleet_app(fleet: Fleet, *, namespace: str = DEFAULT_NAMESPACE) -> web.Application:
    """Return the aiohttp application serving the fleet's status API and pods API.

    ``namespace`` is the Kubernetes namespace the fleet's pods appear in.
    """
    routes = _PodRoutes(fleet)
    app = web.Application()
    app.router.add_get("/fleet/pods", routes.list_pods)
    app.router.add_delete("/fleet/pods/{name}", routes.delete_pod)
    add_kubernetes_routes(app, fleet, namespace=namespace)
    return app


class FleetAPI:
    """The status API (and Kubernetes pods API) served on 127.0.0.1 (port 0 picks one)."""

    def __init__(self, *, fleet: Fleet, port: int = 0, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._fleet = fleet
        self._port = port
        self._namespace = check_namespace(namespace)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._url is None:
            raise RuntimeError("FleetAPI.url is known only after start()")
        return self._url

    async def start(self) -> str:
        """Start serving; return the base URL."""
        runner = web.AppRunner(fleet_app(self._fleet, namespace=self._namespace), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, HOST, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        self._url = f"http://{HOST}:{port}"
        return self._url

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
