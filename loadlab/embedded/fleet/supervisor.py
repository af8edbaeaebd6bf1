"""The fleet: N replica processes on one shared port, kept at N like a ReplicaSet.

Every replica binds the same 127.0.0.1 port with ``SO_REUSEPORT``; the kernel
spreads incoming connections over the replicas that are listening, the way a
Service spreads them over pods. The fleet itself holds a bound, never-listening
``SO_REUSEPORT`` socket on that port, so the port stays reserved while every
replica is down (it takes no connections: only listening sockets do).

Lifecycle of a pod: it is created ``Pending`` and stays so for the startup
delay (scheduling and image start, multiplied by ``time_scale``); its process
is then spawned (``Running``), and it becomes ``ready`` when the process prints
its READY line. When the process exits unasked the pod turns ``Failed`` and a
replacement with a new name is created; when a pod is deleted the replacement
is created at once, as a ReplicaSet does, while the old process gets its grace
period.

Crash-loop protection: a pod that exits (or misses the ready deadline) before
it ever became ready is a startup failure. After ``max_startup_failures`` in a
row, with no pod becoming ready in between, the fleet stops replacing pods and
says so in the log, in the events file and in :attr:`Fleet.crash_loop`.
Replicas that die after becoming ready (chaos doing its job) never count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from loadlab.embedded.fleet.pod import (
    EventLog,
    Pod,
    PodEvent,
    PodNotFound,
    PodPhase,
    ReplicaLaunch,
    new_pod_name,
    now,
    parse_ready_line,
)
from loadlab.embedded.fleet.process import ChildProcess
from loadlab.errors import ConfigError, StackError

logger = logging.getLogger("loadlab.embedded.fleet")

HOST = "127.0.0.1"
READY_PREFIX = "READY"

ArgvSpec = Sequence[str] | Callable[[ReplicaLaunch], Sequence[str]]
EnvSpec = Mapping[str, str] | Callable[[ReplicaLaunch], Mapping[str, str]]


class _PodSlot:
    """The fleet's private, mutable handle on one pod (the Pod itself is a snapshot)."""

    __slots__ = (
        "child",
        "delete_requested",
        "grace_s",
        "kill_at",
        "pod",
        "regrace",
        "runner",
        "started_ready",
    )

    def __init__(self, pod: Pod) -> None:
        self.pod = pod
        self.child: ChildProcess | None = None
        self.runner: asyncio.Task[None] | None = None
        self.delete_requested = asyncio.Event()
        self.regrace = asyncio.Event()
        self.grace_s = 0.0
        self.kill_at = 0.0
        self.started_ready = False


class Fleet:
    """A ReplicaSet-like supervisor of replica processes sharing one loopback port.

    ``argv`` is the replica command, or a function of :class:`ReplicaLaunch`
    returning it; in a plain list, ``{host}``, ``{port}`` and ``{pod}`` are
    substituted. Children get ``os.environ`` (or nothing, with
    ``inherit_env=False``) updated with ``env`` (a mapping or a function of the
    launch), plus ``LOADLAB_POD_NAME``, ``LOADLAB_POD_UID`` and ``HOSTNAME``
    (= the pod name, as in Kubernetes).

    Run the fleet from the thread that will also stop it (see
    :mod:`loadlab.embedded.fleet.process` on PDEATHSIG).
    """

    def __init__(
        self,
        *,
        argv: ArgvSpec,
        env: EnvSpec | None = None,
        inherit_env: bool = True,
        replicas: int = 4,
        startup_delay_s: float = 2.0,
        time_scale: float = 1.0,
        port: int = 0,
        labels: Mapping[str, str] | None = None,
        name_prefix: str = "shopping-agent",
        ready_timeout_s: float = 60.0,
        max_startup_failures: int = 5,
        termination_grace_s: float = 30.0,
        keep_terminated: int = 50,
        log_dir: Path | None = None,
        events_path: Path | None = None,
        rng: random.Random | None = None,
    ) -> None:
        _check(replicas >= 0, "replicas", replicas, "must be >= 0")
        _check(startup_delay_s >= 0, "startup_delay_s", startup_delay_s, "must be >= 0 s")
        _check(time_scale > 0, "time_scale", time_scale, "must be > 0")
        _check(0 <= port <= 65535, "port", port, "must be in [0, 65535] (0 picks a free one)")
        _check(ready_timeout_s > 0, "ready_timeout_s", ready_timeout_s, "must be > 0 s")
        _check(max_startup_failures >= 1, "max_startup_failures", max_startup_failures, ">= 1")
        _check(termination_grace_s >= 0, "termination_grace_s", termination_grace_s, ">= 0 s")
        self._argv = argv
        self._env = env
        self._inherit_env = inherit_env
        self._replicas = replicas
        self._startup_delay_s = startup_delay_s * time_scale
        self._requested_port = port
        self._labels = dict(labels or {"app": "shopping-agent"})
        self._name_prefix = name_prefix
        self._ready_timeout_s = ready_timeout_s
        self._max_startup_failures = max_startup_failures
        self._termination_grace_s = termination_grace_s
        self._log_dir = log_dir
        self._events_path = events_path
        self._rng = rng or random.Random()
        self._slots: dict[str, _PodSlot] = {}
        self._terminated: deque[Pod] = deque(maxlen=keep_terminated)
        self._names_used: set[str] = set()
        self._startup_failures = 0
        self._crash_loop: str | None = None
        self._stopping = False
        self._started = False
        self._reservation: socket.socket | None = None
        self._port = 0
        self._events: EventLog | None = None
        self._changed = asyncio.Event()

    # -- properties -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The shared port (known once started)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: where the replicas answer."""
        return f"http://{HOST}:{self._port}"

    @property
    def replicas(self) -> int:
        """The desired number of live pods."""
        return self._replicas

    @property
    def termination_grace_s(self) -> float:
        """The grace period a delete without one gets (SIGTERM, then SIGKILL after it)."""
        return self._termination_grace_s

    @property
    def crash_loop(self) -> str | None:
        """Why the fleet stopped replacing pods, or ``None`` while it still does."""
        return self._crash_loop

    @property
    def log_dir(self) -> Path | None:
        """Where each pod's log goes (``<log_dir>/<pod name>.log``), if anywhere."""
        return self._log_dir

    def pod_log_path(self, name: str) -> Path | None:
        """The log file of pod ``name`` (stdout and stderr), if logs are kept."""
        return None if self._log_dir is None else self._log_dir / f"{name}.log"

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Reserve the port and create the pods; does not wait for them to be ready."""
        if self._started:
            raise StackError("the fleet was already started", hint="create a new Fleet")
        self._started = True
        self._reservation = _reserve_port(self._requested_port)
        self._port = self._reservation.getsockname()[1]
        if self._events_path is not None:
            self._events = EventLog(path=self._events_path)
        for _ in range(self._replicas):
            self._create_pod(restart_reason=None, replaces=None)

    async def stop(self, *, grace_s: float = 5.0) -> None:
        """Stop replacing pods, SIGTERM every replica, SIGKILL any left after ``grace_s``.

        Returns once every child has been reaped; idempotent.
        """
        self._stopping = True
        for slot in list(self._slots.values()):
            self._request_delete(slot, grace_s=grace_s, reason="FleetStopped")
        runners = [s.runner for s in self._slots.values() if s.runner is not None]
        if runners:
            _, pending = await asyncio.wait(runners, timeout=grace_s + 10.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5.0)
        for slot in list(self._slots.values()):
            # A runner that did not finish in time: its process must not survive us.
            if slot.child is not None and slot.child.returncode is None:
                slot.child.signal(signal.SIGKILL)
        if self._reservation is not None:
            self._reservation.close()
            self._reservation = None
        if self._events is not None:
            self._events.close()
            self._events = None

    async def __aenter__(self) -> Fleet:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- queries ----------------------------------------------------------------------

    def pods(self, *, include_terminated: bool = False) -> list[Pod]:
        """The live pods (Pending/Running, oldest first); with terminated ones on request.

        A pod leaves the live list once its process has exited (deleted or not);
        the last ``keep_terminated`` of those are kept, oldest first, for
        ``include_terminated=True``.
        """
        live = [slot.pod for slot in self._slots.values()]
        if not include_terminated:
            return live
        return [*self._terminated, *live]

    def get_pod(self, name: str) -> Pod:
        """The live pod called ``name``; raises :class:`PodNotFound`."""
        return self._slot(name).pod

    def _slot(self, name: str) -> _PodSlot:
        slot = self._slots.get(name)
        if slot is None:
            raise PodNotFound(
                f"pod {name!r} is not in the fleet",
                hint="list the live pods with Fleet.pods() or GET /fleet/pods",
            )
        return slot

    def ready_pods(self) -> list[Pod]:
        """Live pods that are ready and not being deleted."""
        return [p for p in self.pods() if p.ready and p.deletion_timestamp is None]

    async def wait_until(
        self, predicate: Callable[[list[Pod]], bool], *, timeout_s: float | None
    ) -> list[Pod]:
        """Wait until ``predicate(pods(include_terminated=True))`` holds; return those pods.

        Raises :class:`TimeoutError` after ``timeout_s`` (``None``: wait as long as it takes).
        """
        async with asyncio.timeout(timeout_s):
            while True:
                changed = self._changed
                pods = self.pods(include_terminated=True)
                if predicate(pods):
                    return pods
                await changed.wait()

    async def wait_ready(self, *, timeout_s: float, count: int | None = None) -> list[Pod]:
        """Wait until ``count`` (default: all replicas) pods are ready; return them.

        Raises :class:`~loadlab.errors.StackError` on a crash loop or after ``timeout_s``.
        """
        want = self._replicas if count is None else count
        try:
            await self.wait_until(
                lambda _: len(self.ready_pods()) >= want or self._crash_loop is not None,
                timeout_s=timeout_s,
            )
        except TimeoutError:
            raise StackError(
                f"only {len(self.ready_pods())} of {want} replicas were ready "
                f"after {timeout_s:.1f} s",
                hint=self._log_hint(),
            ) from None
        if self._crash_loop is not None:
            raise StackError(self._crash_loop, hint=self._log_hint())
        return self.ready_pods()

    async def wait_crash_loop(self) -> str:
        """Wait, without limit, until the fleet gives up on a crash loop; return why.

        Meant to be raced against a stop signal by whoever keeps the fleet running.
        """
        await self.wait_until(lambda _: self._crash_loop is not None, timeout_s=None)
        assert self._crash_loop is not None
        return self._crash_loop

    # -- deletion ---------------------------------------------------------------------

    async def delete_pod(self, name: str, *, grace_period_seconds: float | None = None) -> Pod:
        """Delete a pod: SIGTERM, then SIGKILL when the grace runs out (0: SIGKILL now).

        Returns at once with the pod marked for deletion; its replacement is
        created immediately. ``None`` uses the fleet's termination grace period.
        """
        slot = self._slot(name)
        grace = self._termination_grace_s if grace_period_seconds is None else grace_period_seconds
        _check(grace >= 0, "grace_period_seconds", grace, "must be >= 0")
        first = not slot.delete_requested.is_set()
        self._request_delete(slot, grace_s=grace, reason="Deleted")
        if first and not self._stopping:
            self._create_pod(restart_reason=f"replaces {name} (deleted)", replaces=name)
        return slot.pod

    def _request_delete(self, slot: _PodSlot, *, grace_s: float, reason: str) -> None:
        kill_at = asyncio.get_running_loop().time() + grace_s
        if slot.delete_requested.is_set():
            # Like Kubernetes, a second delete may only shorten the grace period.
            if kill_at < slot.kill_at:
                slot.grace_s = grace_s
                slot.kill_at = kill_at
                slot.regrace.set()
            return
        slot.grace_s = grace_s
        slot.kill_at = kill_at
        slot.delete_requested.set()
        self._update(
            slot,
            event="deleting",
            deletion_timestamp=now(),
            deletion_grace_period_seconds=grace_s,
            reason=reason,
        )

    # -- internals --------------------------------------------------------------------

    def _create_pod(self, *, restart_reason: str | None, replaces: str | None) -> None:
        name = new_pod_name(self._name_prefix, rng=self._rng, taken=self._names_used)
        self._names_used.add(name)
        pod = Pod(
            name=name,
            uid=str(uuid.uuid4()),
            labels=dict(self._labels),
            phase="Pending",
            created_at=now(),
            port=self._port,
            restart_reason=restart_reason,
            replaces=replaces,
        )
        slot = _PodSlot(pod)
        self._slots[name] = slot
        self._emit(pod, "created")
        if restart_reason is not None:
            logger.info("fleet: created %s (%s)", name, restart_reason)
        slot.runner = asyncio.create_task(self._run(slot), name=f"pod-{name}")

    async def _run(self, slot: _PodSlot) -> None:
        try:
            await self._run_pod(slot)
        except asyncio.CancelledError:
            if slot.child is not None and slot.child.returncode is None:
                slot.child.signal(signal.SIGKILL)
            self._finish(slot, code=None, reason="Cancelled")
            raise
        except Exception as exc:
            logger.exception("fleet: supervising %s failed", slot.pod.name)
            if slot.child is not None and slot.child.returncode is None:
                slot.child.signal(signal.SIGKILL)
            self._finish(slot, code=None, reason=f"SupervisorError: {exc}")

    async def _run_pod(self, slot: _PodSlot) -> None:
        # Pending: the scheduling + image start delay; a delete ends it early.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(slot.delete_requested.wait(), self._startup_delay_s)
        if slot.delete_requested.is_set():
            self._finish(slot, code=None, reason=slot.pod.reason or "Deleted")
            return
        launch = ReplicaLaunch(
            pod_name=slot.pod.name, pod_uid=slot.pod.uid, host=HOST, port=self._port
        )
        try:
            child = await ChildProcess.spawn(
                argv=self._build_argv(launch),
                name=slot.pod.name,
                env=self._build_env(launch),
                log_path=self.pod_log_path(slot.pod.name),
                ready_prefix=READY_PREFIX,
            )
        except OSError as exc:
            self._finish(slot, code=None, reason=f"StartError: {exc}")
            return
        slot.child = child
        self._update(slot, event="started", phase="Running", pid=child.pid, started_at=now())
        killer = asyncio.create_task(self._kill_on_delete(slot, child))
        try:
            await self._await_ready(slot, child)
            code = await child.wait()
        finally:
            killer.cancel()
            await asyncio.gather(killer, return_exceptions=True)
        child.kill_group()
        self._finish(slot, code=code, reason=None)

    async def _await_ready(self, slot: _PodSlot, child: ChildProcess) -> None:
        try:
            line = await child.ready_line(timeout_s=self._ready_timeout_s)
        except TimeoutError:
            if not slot.delete_requested.is_set():
                logger.warning(
                    "fleet: %s printed no READY line within %.1f s; killing it",
                    slot.pod.name,
                    self._ready_timeout_s,
                )
                self._update(slot, event="ready_timeout", reason="ReadyTimeout")
                child.signal(signal.SIGKILL)
            return
        if line is None or slot.delete_requested.is_set():
            return
        ready = parse_ready_line(line)
        slot.started_ready = True
        self._startup_failures = 0
        self._update(
            slot,
            event="ready",
            ready=True,
            ready_at=now(),
            instance_id=ready.instance_id,
            init_ms=ready.init_ms,
            metrics_url=ready.metrics_url,
        )

    async def _kill_on_delete(self, slot: _PodSlot, child: ChildProcess) -> None:
        """SIGTERM on delete, SIGKILL at the (possibly shortened) grace deadline.

        Cancelled by the runner as soon as the process has exited.
        """
        await slot.delete_requested.wait()
        loop = asyncio.get_running_loop()
        if slot.kill_at > loop.time():
            child.signal(signal.SIGTERM)
        while (remaining := slot.kill_at - loop.time()) > 0:
            slot.regrace.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(slot.regrace.wait(), remaining)
        if slot.grace_s > 0:
            logger.warning(
                "fleet: %s did not stop within its %.1f s grace period; sending SIGKILL",
                slot.pod.name,
                slot.grace_s,
            )
        child.signal(signal.SIGKILL)

    def _finish(self, slot: _PodSlot, *, code: int | None, reason: str | None) -> None:
        if slot.pod.name not in self._slots:
            return
        deleted = slot.delete_requested.is_set()
        phase: PodPhase = "Succeeded" if code == 0 else "Failed"
        if reason is None:
            reason = slot.pod.reason if deleted or slot.pod.reason else _exit_reason(code)
        self._update(
            slot,
            event="terminated",
            phase=phase,
            ready=False,
            exit_code=code,
            finished_at=now(),
            reason=reason,
        )
        del self._slots[slot.pod.name]
        self._terminated.append(slot.pod)
        if deleted or self._stopping:
            return
        logger.warning("fleet: %s exited unasked (%s)", slot.pod.name, reason)
        if not slot.started_ready:
            self._startup_failures += 1
            if self._crash_loop is None and self._startup_failures >= self._max_startup_failures:
                self._enter_crash_loop(slot)
        if self._crash_loop is None:
            self._create_pod(
                restart_reason=f"replaces {slot.pod.name} ({reason})", replaces=slot.pod.name
            )

    def _enter_crash_loop(self, slot: _PodSlot) -> None:
        log_path = self.pod_log_path(slot.pod.name)
        where = f"; its log: {log_path}" if log_path is not None else ""
        self._crash_loop = (
            f"crash loop: {self._startup_failures} replicas in a row exited before "
            f"becoming ready (last: {slot.pod.name}, {slot.pod.reason}); "
            f"the fleet stopped replacing pods{where}"
        )
        logger.error("fleet: %s", self._crash_loop)
        self._emit(slot.pod, "crash_loop", reason=self._crash_loop)
        self._notify()

    def _update(self, slot: _PodSlot, *, event: str, **changes: Any) -> None:
        slot.pod = replace(slot.pod, **changes)
        self._emit(slot.pod, event)
        self._notify()

    def _emit(self, pod: Pod, event: str, *, reason: str | None = None) -> None:
        if self._events is None:
            return
        self._events.write(
            PodEvent(
                t=now(),
                pod=pod.name,
                phase=pod.phase,
                event=event,
                ready=pod.ready,
                reason=reason or pod.reason or pod.restart_reason,
                pid=pod.pid,
                instance_id=pod.instance_id,
                exit_code=pod.exit_code,
            )
        )

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _build_argv(self, launch: ReplicaLaunch) -> list[str]:
        if callable(self._argv):
            return list(self._argv(launch))
        values = {"host": launch.host, "port": str(launch.port), "pod": launch.pod_name}
        return [arg.format_map(values) for arg in self._argv]

    def _build_env(self, launch: ReplicaLaunch) -> dict[str, str]:
        env = dict(os.environ) if self._inherit_env else {}
        if self._env is not None:
            env.update(self._env(launch) if callable(self._env) else self._env)
        env["LOADLAB_POD_NAME"] = launch.pod_name
        env["LOADLAB_POD_UID"] = launch.pod_uid
        env["HOSTNAME"] = launch.pod_name
        return env

    def _log_hint(self) -> str:
        if self._log_dir is None:
            return "run the replica command by hand to see why it does not start"
        return f"read the pod logs in {self._log_dir}"


def _reserve_port(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise StackError(
            f"cannot reserve the fleet port {HOST}:{port}: {exc}",
            hint="choose another port, or 0 to let the fleet pick a free one",
        ) from exc
    return sock


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "Unknown"
    if code < 0:
        try:
            return f"Killed: {signal.Signals(-code).name}"
        except ValueError:
            return f"Killed: signal {-code}"
    return "Completed" if code == 0 else f"Error: exit code {code}"


def _check(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ConfigError(f"fleet: {name}={value!r} is invalid", hint=f"{name} {rule}")
