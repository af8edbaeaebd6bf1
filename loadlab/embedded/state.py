"""``stack.json``: what a running embedded stack tells other loadlab processes.

An :class:`~loadlab.embedded.stack.EmbeddedStack` writes its :class:`StackState`
to ``<state dir>/stack.json`` (owner-only, mode 0600: it holds the JWT secret,
the stack's admin token and the local AWS keys) when it is up, and removes it
when it stops. Next to it, ``<state dir>/kubeconfig`` (also 0600, see
:func:`write_kubeconfig`) points Kubernetes clients at the pods API with the
token. Neither is ever printed or copied into a run directory. Every
reader goes through :meth:`StackState.read`: ``loadlab run`` against the stack of
``loadlab up``, the benchmarks, the capacity probe. A process that already
holds the stack object uses :attr:`EmbeddedStack.state` instead of the file.

A file whose writer died without removing it (SIGKILL) is *stale*:
:meth:`StackState.read_running` ignores it, so a later run is never pointed at
a dead agent.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import yaml

from loadlab.errors import StackError
from loadlab.orphans import running

STACK_FILE = "stack.json"
KUBECONFIG_FILE = "kubeconfig"
_CLOCK_SLACK_S = 2.0
"""How much later than ``started_at`` the kernel may date the owner's start (its
clock ticks, rounding): a process started later than that is another one."""

FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class StackEndpoints:
    """Where the embedded stack answers (all on 127.0.0.1)."""

    agent_url: str
    aws_endpoint_url: str
    llm_url: str
    fleet_url: str
    region: str
    table: str
    lambda_function: str | None = None
    lambda_url: str | None = None
    ddb_gate_url: str | None = None

    def to_json(self) -> dict[str, str | None]:
        """The endpoints as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalAWS:
    """The stack's ministack account: endpoint, region and (local, throwaway) keys."""

    endpoint_url: str
    region: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)

    def env(self) -> dict[str, str]:
        """``AWS_*`` variables that point boto3 (and chaostoolkit-aws) at this account."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LambdaFunctionState:
    """The agent deployed as a Lambda function into the stack's ministack."""

    function_name: str
    function_arn: str
    url: str | None
    reserved_concurrency: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StackState:
    """A running embedded stack, as ``stack.json`` records it."""

    pid: int
    started_at: float
    endpoints: StackEndpoints
    jwt_secret: str = field(repr=False)
    aws: LocalAWS
    replicas: int
    time_scale: float
    agent_mode: str
    seed: int
    pids: dict[str, int | None]
    logs: dict[str, str]
    lambda_function: LambdaFunctionState | None = None
    admin_token: str = field(default="", repr=False)
    """The token the pods API and the admin APIs require (see loadlab.embedded.admin_auth)."""
    kubeconfig: str | None = None
    """The kubeconfig file that points Kubernetes clients at the pods API, with the token."""

    # -- the file -------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The ``stack.json`` document."""
        data: dict[str, Any] = {
            "format": FORMAT,
            "pid": self.pid,
            "started_at": self.started_at,
            "endpoints": self.endpoints.to_json(),
            "jwt_secret": self.jwt_secret,
            "admin_token": self.admin_token,
            "kubeconfig": self.kubeconfig,
            "aws": {
                "access_key_id": self.aws.access_key_id,
                "secret_access_key": self.aws.secret_access_key,
                "region": self.aws.region,
                "endpoint_url": self.aws.endpoint_url,
            },
            "replicas": self.replicas,
            "time_scale": self.time_scale,
            "agent_mode": self.agent_mode,
            "seed": self.seed,
            "pids": dict(self.pids),
            "logs": dict(self.logs),
        }
        if self.lambda_function is not None:
            data["lambda"] = asdict(self.lambda_function)
        return data

    def write(self, path: Path) -> None:
        """Write ``path`` atomically, readable by the owner only (0600)."""
        _write_private(path, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> StackState | None:
        """The state in ``path``; None when there is no such file.

        Raises :class:`~loadlab.errors.StackError` (naming the file and the fix)
        when the file exists but is not a stack state this loadlab can read.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise _unreadable(path, str(exc)) from None
        try:
            return cls.from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise _unreadable(path, f"{type(exc).__name__}: {exc}") from None

    @classmethod
    def read_running(cls, path: Path) -> StackState | None:
        """The state in ``path`` if the stack that wrote it is still alive, else None."""
        state = cls.read(path)
        return state if state is not None and state.owner_alive() else None

    @classmethod
    def from_json(cls, data: Any) -> StackState:
        """Parse a ``stack.json`` document (``ValueError``/``KeyError``/``TypeError`` if bad)."""
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        aws = data["aws"]
        function = data.get("lambda")
        return cls(
            pid=int(data["pid"]),
            started_at=float(data["started_at"]),
            endpoints=StackEndpoints(**data["endpoints"]),
            jwt_secret=str(data["jwt_secret"]),
            aws=LocalAWS(
                endpoint_url=str(aws["endpoint_url"]),
                region=str(aws["region"]),
                access_key_id=str(aws["access_key_id"]),
                secret_access_key=str(aws["secret_access_key"]),
            ),
            replicas=int(data["replicas"]),
            time_scale=float(data["time_scale"]),
            agent_mode=str(data["agent_mode"]),
            seed=int(data["seed"]),
            pids={str(k): (None if v is None else int(v)) for k, v in data["pids"].items()},
            logs={str(k): str(v) for k, v in data["logs"].items()},
            lambda_function=None if function is None else LambdaFunctionState(**function),
            admin_token=str(data.get("admin_token") or ""),
            kubeconfig=None if data.get("kubeconfig") is None else str(data["kubeconfig"]),
        )

    # -- what readers ask -------------------------------------------------------------

    def owner_alive(self) -> bool:
        """True while the process that started the stack is alive.

        A pid alone is not enough: after a reboot or a long uptime the owner's pid
        can belong to another process. The owner was running before it wrote
        ``started_at``; a process by that pid that started later is not it.
        """
        if not running(self.pid):  # gone, or ended and never reaped (a zombie)
            return False
        try:
            created = psutil.Process(self.pid).create_time()
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:  # not ours to inspect: alive, as os.kill(pid, 0) would say
            return True
        return created <= self.started_at + _CLOCK_SLACK_S

    def serves(self, url: str) -> bool:
        """True when ``url`` points at one of this stack's servers (same host and port)."""
        origins = {_origin(v) for v in self.endpoints.to_json().values() if isinstance(v, str)}
        return _origin(url) in origins - {""}


def write_kubeconfig(path: Path, *, server: str, token: str, namespace: str = "default") -> None:
    """Write a kubeconfig (mode 0600) for the pods API at ``server``, sending ``token``.

    One cluster, one user with the token, one context (``loadlab-embedded``),
    current: what the kubernetes client and chaostoolkit-kubernetes read.
    """
    name = "loadlab-embedded"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }
    _write_private(path, yaml.safe_dump(config, sort_keys=False))


def _write_private(path: Path, text: str) -> None:
    """Write ``path`` atomically, readable by the owner only (0600)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    return f"{parts.hostname}:{port}" if parts.hostname and port else ""


def _unreadable(path: Path, why: str) -> StackError:
    return StackError(
        f"the embedded stack state {path} cannot be read ({why})",
        hint=f"stop the stack that wrote it (`loadlab up` in another terminal), or delete {path}",
    )
