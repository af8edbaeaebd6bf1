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

Every route under ``/fleet/`` and ``/api`` needs the stack's token
(``Authorization: Bearer <token>``, see :mod:`loadlab.embedded.admin_auth`);
without it the answer is 401. ``/version`` is open, as on a cluster.
"""

from __future__ import annotations

import math

from aiohttp import web

from loadlab.embedded.admin_auth import admin_token_from_env, require_token
from loadlab.embedded.fleet.k8s_api import (
    DEFAULT_NAMESPACE,
    add_kubernetes_routes,
    check_namespace,
    unauthorized_status,
)
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


def _unauthorized(request: web.Request, message: str) -> web.Response:
    if request.path.startswith("/api"):
        return web.json_response(unauthorized_status(message), status=401)
    return _error(401, "unauthorized", message)


def fleet_app(
    fleet: Fleet, *, namespace: str = DEFAULT_NAMESPACE, admin_token: str | None = None
) -> web.Application:
    """Return the aiohttp application serving the fleet's status API and pods API.

    ``namespace`` is the Kubernetes namespace the fleet's pods appear in;
    ``admin_token`` the token every ``/fleet/`` and ``/api`` request must carry
    (default: ``LOADLAB_ADMIN_TOKEN``, see
    :func:`~loadlab.embedded.admin_auth.admin_token_from_env`).
    """
    routes = _PodRoutes(fleet)
    token = admin_token_from_env() if admin_token is None else admin_token
    app = web.Application(
        middlewares=[require_token(token, prefixes=("/fleet/", "/api"), refuse=_unauthorized)]
    )
    app.router.add_get("/fleet/pods", routes.list_pods)
    app.router.add_delete("/fleet/pods/{name}", routes.delete_pod)
    add_kubernetes_routes(app, fleet, namespace=namespace)
    return app


class FleetAPI:
    """The status API (and Kubernetes pods API) served on 127.0.0.1 (port 0 picks one)."""

    def __init__(
        self,
        *,
        fleet: Fleet,
        port: int = 0,
        namespace: str = DEFAULT_NAMESPACE,
        admin_token: str | None = None,
    ) -> None:
        self._fleet = fleet
        self._admin_token = admin_token
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
        app = fleet_app(self._fleet, namespace=self._namespace, admin_token=self._admin_token)
        runner = web.AppRunner(app, access_log=None)
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
