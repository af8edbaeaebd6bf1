"""The embedded stack: local AWS, an LLM simulator and an agent fleet, in one object.

:class:`EmbeddedStack` starts, in order, ministack (DynamoDB), the checkpoint
table, the LLM simulator, optionally the agent as a Lambda function in
ministack (``lambda_function=True``; see :mod:`loadlab.embedded.aws_lambda`), and
a :class:`~loadlab.embedded.fleet.Fleet` of agent replicas pointed at both, then
waits until every replica is ready. The agents reach DynamoDB through a
capacity gate in front of ministack (:mod:`loadlab.embedded.ddb_gate`: unlimited
unless ``ddb_rcu``/``ddb_wcu`` are given or a lease lowers it). All of it
binds 127.0.0.1 only, every wait is bounded, and stopping (or the supervisor
dying) leaves no process behind.

The state directory (default ``.loadlab``) holds::

    stack.json           endpoints, JWT secret, admin token, AWS keys, pids, log paths
                         (mode 0600; removed on stop)
    kubeconfig           the pods API's URL and the admin token, for Kubernetes clients
                         (mode 0600; removed on stop)
    ministack.log        ministack's stdout and stderr
    ministack/           ministack's scratch files (pid file, S3 data)
    llm.log              the LLM simulator's stdout and stderr
    lambda/              the Lambda function's zip cache (with lambda_function=True)
    pods/<pod>.log       each agent replica's stdout and stderr
    fleet-events.jsonl   pod lifecycle lines (t, pod, phase, reason, ...)

The JWT secret is generated per start and exists only in ``stack.json`` and in
the agents' environment: it is never printed or logged. So is the admin token
that the pods API and the admin APIs require
(:mod:`loadlab.embedded.admin_auth`); it also goes in ``kubeconfig``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from loadlab.embedded.admin_auth import ADMIN_TOKEN_ENV, new_admin_token
from loadlab.embedded.agent.config import AGENT_MODES, DEFAULT_TABLE, AgentMode
from loadlab.embedded.aws_lambda.deploy import DeployedFunction, LambdaOptions
from loadlab.embedded.cloudwatch_publisher import CloudWatchPublisher, ministack_cloudwatch_client
from loadlab.embedded.ddb_gate import DEFAULT_BURST_S, DynamoDBGate
from loadlab.embedded.fleet import Fleet, FleetAPI, ReplicaLaunch
from loadlab.embedded.fleet.process import ChildProcess, log_tail
from loadlab.embedded.ministack import Ministack
from loadlab.embedded.prom_targets import TARGETS_FILE, ScrapeTargets, target_group
from loadlab.embedded.state import (
    KUBECONFIG_FILE,
    STACK_FILE,
    LambdaFunctionState,
    LocalAWS,
    StackEndpoints,
    StackState,
    write_kubeconfig,
)
from loadlab.errors import ConfigError, StackError
from loadlab.orphans import running

if TYPE_CHECKING:
    from loadlab.embedded.aws_lambda.snapshot_keeper import SnapshotKeeper

HOST = "127.0.0.1"
# ministack accepts any key; these only keep boto3 from looking for real credentials.
_AWS_KEY_ID = "loadlab"
_AWS_SECRET = "loadlab-local"


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMOptions:
    """How the LLM simulator is started (``None`` keeps the simulator's default).

    Quotas are per simulated minute (0 = unlimited); ``extra_args`` are passed
    to ``python -m loadlab.embedded.llm`` as they are.
    """

    rpm: int = 0
    tpm: int = 0
    max_concurrency: int = 0
    ttft_median_ms: float | None = None
    token_interval_median_ms: float | None = None
    extra_args: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        """The simulator flags for these options."""
        args = ["--rpm", str(self.rpm), "--tpm", str(self.tpm)]
        args += ["--max-concurrency", str(self.max_concurrency)]
        if self.ttft_median_ms is not None:
            args += ["--ttft-median-ms", str(self.ttft_median_ms)]
        if self.token_interval_median_ms is not None:
            args += ["--token-interval-median-ms", str(self.token_interval_median_ms)]
        return [*args, *self.extra_args]


class EmbeddedStack:
    """ministack + checkpoint table + LLM simulator + agent fleet, started as one.

    Use ``async with EmbeddedStack(...) as stack:`` or ``await start()`` /
    ``await stop()``, from the thread that will also stop it (children are
    bound to that thread's life, see :mod:`loadlab.embedded.fleet.process`).
    ``time_scale`` multiplies the LLM's latencies, the agents' own delays and
    the pods' ``startup_delay_s``.
    """

    def __init__(
        self,
        *,
        replicas: int = 4,
        time_scale: float = 1.0,
        startup_delay_s: float = 2.0,
        llm: LLMOptions | None = None,
        seed: int = 0,
        state_dir: Path | str = ".loadlab",
        agent_mode: AgentMode = "correct",
        agent_init_ms: float | None = None,
        agent_port: int = 0,
        ministack_bin: str | Path | None = None,
        table: str = DEFAULT_TABLE,
        region: str = "us-east-1",
        start_timeout_s: float = 60.0,
        stop_grace_s: float = 5.0,
        lambda_function: bool = False,
        lambda_options: LambdaOptions | None = None,
        ddb_rcu: float | None = None,
        ddb_wcu: float | None = None,
        ddb_burst_s: float = DEFAULT_BURST_S,
    ) -> None:
        _check(replicas >= 1, "replicas", replicas, "must be >= 1")
        _check(0 < time_scale <= 100, "time_scale", time_scale, "must be in (0, 100]")
        _check(startup_delay_s >= 0, "startup_delay_s", startup_delay_s, "must be >= 0 s")
        _check(agent_mode in AGENT_MODES, "agent_mode", agent_mode, f"one of {AGENT_MODES}")
        _check(
            agent_init_ms is None or agent_init_ms >= 0,
            "agent_init_ms",
            agent_init_ms,
            "must be >= 0 ms",
        )
        _check(0 <= agent_port <= 65535, "agent_port", agent_port, "must be in [0, 65535]")
        _check(start_timeout_s > 0, "start_timeout_s", start_timeout_s, "must be > 0 s")
        _check(stop_grace_s >= 0, "stop_grace_s", stop_grace_s, "must be >= 0 s")
        _check(bool(region), "region", region, "must not be empty")
        for name, units in (("ddb_rcu", ddb_rcu), ("ddb_wcu", ddb_wcu)):
            _check(units is None or units >= 0, name, units, "must be >= 0 (None: unlimited)")
        _check(ddb_burst_s >= 0, "ddb_burst_s", ddb_burst_s, "must be >= 0 s")
        self._replicas = replicas
        self._time_scale = time_scale
        self._startup_delay_s = startup_delay_s
        self._llm_options = llm or LLMOptions()
        self._seed = seed
        self.state_dir = Path(state_dir).absolute()
        self._agent_mode = agent_mode
        self._agent_init_ms = agent_init_ms
        self._agent_port = agent_port
        self._ministack = Ministack(
            state_dir=self.state_dir, binary=ministack_bin, start_timeout_s=start_timeout_s
        )
        self._table = table
        self._region = region
        self._start_timeout_s = start_timeout_s
        self._stop_grace_s = stop_grace_s
        self._lambda_options = (lambda_options or LambdaOptions()) if lambda_function else None
        self._lambda: DeployedFunction | None = None
        self._snapshot: SnapshotKeeper | None = None
        self.provisioned_environments: tuple[str, ...] = ()
        """Instance ids of the environments provisioned before the sale (emulated)."""
        self._ddb_capacity = (ddb_rcu, ddb_wcu, ddb_burst_s)
        self._ddb_gate: DynamoDBGate | None = None
        self._publisher: CloudWatchPublisher | None = None
        self._llm: ChildProcess | None = None
        self._fleet: Fleet | None = None
        self._api: FleetAPI | None = None
        self._targets: ScrapeTargets | None = None
        self._endpoints: StackEndpoints | None = None
        self._jwt_secret: str | None = None
        self._state_now: StackState | None = None
        self._wrote_stack_file = False
        self._admin_token = new_admin_token()

    # -- what callers read ------------------------------------------------------------

    @property
    def endpoints(self) -> StackEndpoints:
        """The stack's URLs; raises :class:`~loadlab.errors.StackError` before start."""
        if self._endpoints is None:
            raise StackError("the embedded stack is not running", hint="await stack.start()")
        return self._endpoints

    @property
    def fleet(self) -> Fleet:
        """The agent fleet (to list or delete pods)."""
        if self._fleet is None:
            raise StackError("the embedded stack is not running", hint="await stack.start()")
        return self._fleet

    @property
    def state(self) -> StackState:
        """What ``stack.json`` holds (endpoints, JWT secret, AWS keys); running stacks only."""
        if self._state_now is None:
            raise StackError("the embedded stack is not running", hint="await stack.start()")
        return self._state_now

    @property
    def stack_file(self) -> Path:
        """``<state_dir>/stack.json``."""
        return self.state_dir / STACK_FILE

    @property
    def targets_file(self) -> Path:
        """``<state_dir>/prometheus/targets.json``: every ``/metrics`` endpoint (file_sd)."""
        return self.state_dir / TARGETS_FILE

    @property
    def kubeconfig_file(self) -> Path:
        """``<state_dir>/kubeconfig``: the pods API with the stack's token (mode 0600)."""
        return self.state_dir / KUBECONFIG_FILE

    @property
    def running(self) -> bool:
        """True between a successful start and stop."""
        return self._endpoints is not None

    def child_pids(self) -> list[int]:
        """Process ids of every server the stack runs now (ministack, LLM, live pods).

        ministack's own children (the Lambda function's execution environments)
        are included.
        """
        pids = [self._ministack.pid] if self._ministack.pid is not None else []
        pids += [child for pid in pids for child in _children(pid)]
        if self._llm is not None and self._llm.returncode is None:
            pids.append(self._llm.pid)
        if self._fleet is not None:
            pids += [p.pid for p in self._fleet.pods() if p.pid is not None]
        return pids

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> StackEndpoints:
        """Start every part and wait until all agent replicas are ready.

        On any failure everything already started is stopped again and a
        :class:`~loadlab.errors.StackError` names the part, its log and the fix.
        """
        if self._endpoints is not None:
            return self._endpoints
        self._prepare_state_dir()
        self._jwt_secret = secrets.token_urlsafe(32)
        self._admin_token = new_admin_token()
        try:
            aws_url = await self._ministack.start()
            gate_url = await self._start_ddb_gate(aws_url)
            await self._create_table(aws_url)
            llm_url = await self._start_llm()
            await self._start_publisher(aws_url=aws_url, llm_url=llm_url)
            if self._lambda_options is not None:
                self._lambda = await self._deploy_lambda(
                    self._lambda_options, aws_url=aws_url, llm_url=llm_url
                )
            agent_url, fleet_url = await self._start_fleet(aws_url=aws_url, llm_url=llm_url)
            servers = [target_group(f"{llm_url}/metrics", component="llm")]
            if gate_url:
                servers.append(target_group(f"{gate_url}/metrics", component="dynamodb"))
            self._targets = ScrapeTargets(self.targets_file, servers=servers).follow(self.fleet)
        except BaseException:
            await self.stop()
            raise
        self._endpoints = StackEndpoints(
            agent_url=agent_url,
            aws_endpoint_url=aws_url,
            llm_url=llm_url,
            fleet_url=fleet_url,
            region=self._region,
            table=self._table,
            lambda_function=None if self._lambda is None else self._lambda.name,
            lambda_url=None if self._lambda is None else self._lambda.url,
            ddb_gate_url=gate_url,
        )
        self._state_now = self._state(self._endpoints)
        write_kubeconfig(self.kubeconfig_file, server=fleet_url, token=self._admin_token)
        self._state_now.write(self.stack_file)
        self._wrote_stack_file = True
        return self._endpoints

    async def stop(self) -> None:
        """Stop the fleet, the LLM simulator and ministack; idempotent, no orphans."""
        self._endpoints = None
        self._state_now = None
        if self._wrote_stack_file:
            # Only our own: a stack refused for a busy state dir must not unlink the owner's.
            with contextlib.suppress(FileNotFoundError):
                self.stack_file.unlink()
            with contextlib.suppress(FileNotFoundError):
                self.kubeconfig_file.unlink()
            self._wrote_stack_file = False
        targets, self._targets = self._targets, None
        if targets is not None:
            await targets.stop()
        api, self._api = self._api, None
        if api is not None:
            await api.stop()
        fleet = self._fleet
        if fleet is not None:
            await fleet.stop(grace_s=self._stop_grace_s)
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.stop()
        gate, self._ddb_gate = self._ddb_gate, None
        if gate is not None:
            await gate.stop()
        llm, self._llm = self._llm, None
        if llm is not None:
            await llm.terminate(grace_s=self._stop_grace_s)
        ministack_pid = self._ministack.pid
        environments = [] if ministack_pid is None else _children(ministack_pid)
        await self._ministack.stop(grace_s=self._stop_grace_s)
        # ministack's Lambda environments outlive it until they read the end of their stdin.
        await _reap_environments(environments, grace_s=self._stop_grace_s)
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            await snapshot.stop(grace_s=self._stop_grace_s)
        self._lambda = None
        self._jwt_secret = None

    async def wait_failure(self) -> str:
        """Wait, without limit, until a part dies for good; return what happened.

        ministack or the LLM simulator exiting, or the fleet giving up on a
        crash loop. Agent replicas that die are replaced by the fleet and do not
        count. Meant to be raced against a stop signal (see :func:`serve_forever`).
        """
        waits: dict[asyncio.Task[Any], str] = {
            asyncio.create_task(self._ministack.wait_exit()): (
                f"ministack exited (see {self._ministack.log_path})"
            ),
            asyncio.create_task(self.fleet.wait_crash_loop()): "the agent fleet gave up",
        }
        if self._llm is not None:
            waits[asyncio.create_task(self._llm.wait())] = (
                f"the LLM simulator exited (see {self.state_dir / 'llm.log'})"
            )
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        task = done.pop()
        result = task.result()
        if isinstance(result, str):
            return f"{waits[task]}: {result}"
        return f"{waits[task]} with status {result}"

    async def __aenter__(self) -> EmbeddedStack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- the parts --------------------------------------------------------------------

    def _prepare_state_dir(self) -> None:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        other = _running_owner(self.stack_file)
        if other is not None:
            raise StackError(
                f"an embedded stack (pid {other}) is already running with state dir "
                f"{self.state_dir}",
                hint="stop it (Ctrl-C in its terminal), or use another state dir",
            )
        # Logs of an earlier stack would interleave with this one's.
        for old in (
            self.state_dir / "ministack.log",
            self.state_dir / "llm.log",
            self.state_dir / "fleet-events.jsonl",
            *self.state_dir.glob("pods/*.log"),
        ):
            with contextlib.suppress(FileNotFoundError):
                old.unlink()

    async def _create_table(self, aws_url: str) -> None:
        # Imported here: boto3 is slow to import and only this step needs it.
        import boto3
        import botocore.session
        from botocore.config import Config

        from loadlab.embedded.agent.checkpoint import ensure_table

        # The user's AWS_PROFILE (maybe absent from this machine) must not matter here.
        no_profile = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        client = boto3.session.Session(
            botocore_session=no_profile,
            aws_access_key_id=_AWS_KEY_ID,
            aws_secret_access_key=_AWS_SECRET,
            region_name=self._region,
        ).client(
            "dynamodb",
            endpoint_url=aws_url,
            config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2}),
        )
        try:
            await asyncio.to_thread(
                ensure_table, client, self._table, timeout_s=self._start_timeout_s
            )
        finally:
            client.close()

    async def _start_llm(self) -> str:
        log_path = self.state_dir / "llm.log"
        argv = [
            sys.executable,
            "-m",
            "loadlab.embedded.llm",
            "--host",
            HOST,
            "--port",
            "0",
            "--time-scale",
            str(self._time_scale),
            "--seed",
            str(self._seed),
            *self._llm_options.argv(),
        ]
        self._llm = await ChildProcess.spawn(
            argv=argv,
            name="llm-simulator",
            env=_local_env() | {ADMIN_TOKEN_ENV: self._admin_token},
            log_path=log_path,
            ready_prefix="LISTENING ",
        )
        try:
            line = await self._llm.ready_line(timeout_s=self._start_timeout_s)
        except TimeoutError:
            raise StackError(
                f"the LLM simulator printed no LISTENING line within {self._start_timeout_s:.0f} s",
                hint=f"read {log_path}",
            ) from None
        if line is None:
            code = await self._llm.wait()
            raise StackError(
                f"the LLM simulator exited with status {code} before listening; "
                f"last lines of {log_path}:\n{log_tail(log_path)}",
                hint=f"read {log_path}; check the LLM options ({' '.join(argv[3:])})",
            )
        return line.split(maxsplit=1)[1].rstrip("/")

    async def _deploy_lambda(
        self, options: LambdaOptions, *, aws_url: str, llm_url: str
    ) -> DeployedFunction:
        # Imported here: only a stack with the Lambda target pays for boto3 and the zip.
        from botocore.exceptions import BotoCoreError, ClientError

        from loadlab.embedded.aws_lambda.deploy import (
            FunctionSpec,
            agent_environment,
            deploy_function,
            lambda_client,
        )
        from loadlab.embedded.aws_lambda.package import build_package

        assert self._jwt_secret is not None
        cache = options.package_cache or self.state_dir / "lambda"
        package = await asyncio.to_thread(build_package, cache_dir=cache)
        function_env = agent_environment(
            jwt_secret=self._jwt_secret,
            llm_url=llm_url,
            table=self._table,
            # Through the capacity gate, like the pods, so DynamoDB faults reach it too.
            dynamodb_endpoint=aws_url if self._ddb_gate is None else self._ddb_gate.url,
            aws_endpoint_url=aws_url,
            time_scale=self._time_scale,
            mode=self._agent_mode,
            init_ms=self._agent_init_ms,
            extra={"LOADLAB_AGENT_INIT": options.agent_init},
        )
        if options.snapstart:
            from loadlab.embedded.aws_lambda.snapshot_keeper import start_snapshot_keeper

            # "Publishing" the version: Init runs once, before any environment exists.
            self._snapshot = await start_snapshot_keeper(
                environment=_local_env()
                | function_env
                | {
                    "AWS_REGION": self._region,
                    "AWS_DEFAULT_REGION": self._region,
                    "AWS_ACCESS_KEY_ID": _AWS_KEY_ID,
                    "AWS_SECRET_ACCESS_KEY": _AWS_SECRET,
                    "AWS_LAMBDA_FUNCTION_NAME": options.function_name,
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(options.memory_mb),
                },
                log_path=self.state_dir / "snapstart.log",
                timeout_s=self._start_timeout_s,
            )
            function_env |= self._snapshot.function_variables()
        spec = FunctionSpec(
            name=options.function_name,
            memory_mb=options.memory_mb,
            timeout_s=options.timeout_s,
            reserved_concurrency=options.reserved_concurrency,
            function_url=options.function_url,
            environment=function_env,
            snapstart=options.snapstart,
        )
        client = lambda_client(
            endpoint_url=aws_url,
            region=self._region,
            access_key_id=_AWS_KEY_ID,
            secret_access_key=_AWS_SECRET,
        )
        try:
            deployed = await asyncio.to_thread(
                deploy_function,
                client,
                spec,
                package.read(),
                endpoint_url=aws_url,
                timeout_s=self._start_timeout_s,
            )
            if options.provisioned_concurrency > 0:
                from loadlab.embedded.aws_lambda.provisioned import provision

                self.provisioned_environments = await asyncio.to_thread(
                    provision, client, deployed.name, options.provisioned_concurrency
                )
            return deployed
        except (BotoCoreError, ClientError) as exc:
            raise StackError(
                f"cannot deploy the Lambda function {spec.name} to ministack: {exc}",
                hint=f"read {self._ministack.log_path}",
            ) from None
        finally:
            client.close()

    async def _start_publisher(self, *, aws_url: str, llm_url: str) -> None:
        # The LLM's and the gate's figures, in ministack's CloudWatch under AWS's names.
        gate = self._ddb_gate
        self._publisher = CloudWatchPublisher(
            client=ministack_cloudwatch_client(
                endpoint_url=aws_url,
                region=self._region,
                access_key_id=_AWS_KEY_ID,
                secret_access_key=_AWS_SECRET,
            ),
            llm_url=llm_url,
            dynamodb_metrics_url=None if gate is None else f"{gate.url}/metrics",
            interval_s=max(1.0, 5.0 * self._time_scale),
        )
        await self._publisher.start()

    async def _start_ddb_gate(self, aws_url: str) -> str:
        rcu, wcu, burst_s = self._ddb_capacity
        self._ddb_gate = DynamoDBGate(
            upstream_url=aws_url,
            rcu=rcu,
            wcu=wcu,
            burst_s=burst_s,
            time_scale=self._time_scale,
            admin_token=self._admin_token,
        )
        return await self._ddb_gate.start()

    async def _start_fleet(self, *, aws_url: str, llm_url: str) -> tuple[str, str]:
        assert self._jwt_secret is not None
        gate = self._ddb_gate
        agent_env = _local_env()
        agent_env.update(
            AWS_ACCESS_KEY_ID=_AWS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=_AWS_SECRET,
            AWS_DEFAULT_REGION=self._region,
            AWS_REGION=self._region,
            AWS_ENDPOINT_URL=aws_url,
            LOADLAB_AGENT_DYNAMODB_ENDPOINT=aws_url if gate is None else gate.url,
            LOADLAB_AGENT_TABLE=self._table,
            LOADLAB_AGENT_LLM_URL=llm_url,
            LOADLAB_JWT_SECRET=self._jwt_secret,
            LOADLAB_TIME_SCALE=str(self._time_scale),
            LOADLAB_AGENT_MODE=self._agent_mode,
        )
        if self._agent_init_ms is not None:
            agent_env["LOADLAB_AGENT_INIT_MS"] = str(self._agent_init_ms)

        def pod_env(launch: ReplicaLaunch) -> Mapping[str, str]:
            return {**agent_env, "LOADLAB_AGENT_INSTANCE_ID": launch.pod_name}

        self._fleet = Fleet(
            argv=[
                sys.executable,
                "-m",
                "loadlab.embedded.agent",
                "--host",
                "{host}",
                "--port",
                "{port}",
                "--reuse-port",
                "--metrics-port",
                "0",
            ],
            env=pod_env,
            inherit_env=False,
            replicas=self._replicas,
            startup_delay_s=self._startup_delay_s,
            time_scale=self._time_scale,
            port=self._agent_port,
            ready_timeout_s=self._start_timeout_s,
            log_dir=self.state_dir / "pods",
            events_path=self.state_dir / "fleet-events.jsonl",
        )
        await self._fleet.start()
        self._api = FleetAPI(fleet=self._fleet, admin_token=self._admin_token)
        fleet_url = await self._api.start()
        await self._fleet.wait_ready(
            timeout_s=self._start_timeout_s + self._startup_delay_s * self._time_scale
        )
        return self._fleet.url, fleet_url

    def _state(self, endpoints: StackEndpoints) -> StackState:
        assert self._jwt_secret is not None
        return StackState(
            pid=os.getpid(),
            started_at=time.time(),
            endpoints=endpoints,
            jwt_secret=self._jwt_secret,
            admin_token=self._admin_token,
            kubeconfig=str(self.kubeconfig_file),
            aws=LocalAWS(
                endpoint_url=endpoints.aws_endpoint_url,
                region=self._region,
                access_key_id=_AWS_KEY_ID,
                secret_access_key=_AWS_SECRET,
            ),
            replicas=self._replicas,
            time_scale=self._time_scale,
            agent_mode=self._agent_mode,
            seed=self._seed,
            pids={
                "ministack": self._ministack.pid,
                "llm": None if self._llm is None else self._llm.pid,
            },
            logs={
                "ministack": str(self._ministack.log_path),
                "llm": str(self.state_dir / "llm.log"),
                "pods": str(self.state_dir / "pods"),
                "fleet_events": str(self.state_dir / "fleet-events.jsonl"),
            },
            lambda_function=None
            if self._lambda is None
            else LambdaFunctionState(
                function_name=self._lambda.name,
                function_arn=self._lambda.arn,
                url=self._lambda.url,
                reserved_concurrency=self._lambda.reserved_concurrency,
            ),
        )


async def serve_forever(stack: EmbeddedStack, *, out: TextIO | None = None) -> None:
    """Start ``stack`` (unless running), print its endpoints, run until SIGINT/SIGTERM.

    Stops the stack cleanly on the signal. Raises
    :class:`~loadlab.errors.StackError` if it fails to start or a part of it
    dies for good while serving. The JWT secret is not printed: it is in
    ``stack.json``.
    """
    out = sys.stdout if out is None else out
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait())
    try:
        starting = asyncio.create_task(stack.start())
        await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return
        endpoints = starting.result()
        _print_endpoints(stack, endpoints, out)
        failure = asyncio.create_task(stack.wait_failure())
        await asyncio.wait({failure, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if failure.done():
            raise StackError(
                f"the embedded stack stopped serving: {failure.result()}",
                hint=f"read the logs in {stack.state_dir}, then start it again",
            )
        failure.cancel()
        await asyncio.gather(failure, return_exceptions=True)
    finally:
        stopper.cancel()
        await asyncio.gather(stopper, return_exceptions=True)
        for sig in signals:
            loop.remove_signal_handler(sig)
        await stack.stop()
        print("loadlab: embedded stack stopped", file=out, flush=True)


def _print_endpoints(stack: EmbeddedStack, endpoints: StackEndpoints, out: TextIO) -> None:
    lines = [
        f"loadlab: embedded stack up ({stack.fleet.replicas} agent replicas)",
        f"  agent      {endpoints.agent_url}",
        f"  aws        {endpoints.aws_endpoint_url}  (region {endpoints.region}, "
        f"table {endpoints.table})",
        f"  llm        {endpoints.llm_url}",
        f"  dynamodb   {endpoints.ddb_gate_url}  (capacity gate: /admin/capacity, /metrics)",
        f"  fleet      {endpoints.fleet_url}/fleet/pods",
        f"  prometheus {stack.targets_file}  (file_sd: every /metrics endpoint, a pod each)",
        *(
            [f"  lambda     {endpoints.lambda_function}  (url {endpoints.lambda_url})"]
            if endpoints.lambda_function
            else []
        ),
        f"  kubernetes KUBECONFIG={stack.kubeconfig_file} "
        "(pods API for chaostoolkit-kubernetes; holds the stack's token, mode 0600)",
        f"  state      {stack.stack_file}  (JWT secret, admin token and keys; mode 0600)",
        f"  logs       {stack.state_dir}",
        "Press Ctrl-C to stop.",
    ]
    print("\n".join(lines), file=out, flush=True)


def _local_env() -> dict[str, str]:
    """The parent's environment without AWS settings: children must not reach a real account."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: list[int] = []
    for tasks in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            children += [int(child) for child in tasks.read_text().split()]
    return children


async def _reap_environments(pids: list[int], *, grace_s: float) -> None:
    """Wait (bounded) for ministack's former Lambda workers to exit; SIGKILL what is left."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    left = [pid for pid in pids if _is_lambda_worker(pid)]
    while left and loop.time() < deadline:
        await asyncio.sleep(0.05)  # not our children: no exit event to wait on
        left = [pid for pid in left if _is_lambda_worker(pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _is_lambda_worker(pid: int) -> bool:
    """True while ``pid`` is a live ministack Lambda worker (checked by its command line)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"ministack-lambda-" in cmdline and running(pid)


def _running_owner(stack_file: Path) -> int | None:
    """The pid recorded in an existing stack file, if that process is still alive."""
    try:
        state = StackState.read(stack_file)
    except StackError:
        return None
    return state.pid if state is not None and state.owner_alive() else None


def _check(ok: bool, name: str, value: object, rule: str) -> None:
    if not ok:
        raise ConfigError(f"embedded stack: {name}={value!r} is invalid", hint=f"{name} {rule}")
