"""Deploy the agent zip as a Lambda function (ministack or AWS), and what ministack's Lambda does.

:func:`deploy_function` creates the function (or updates its code and
configuration), waits until it is ``Active``, sets its reserved concurrency and,
if asked, its Function URL. The boto3 client is passed in; :func:`lambda_client`
builds one with loadlab's settings.

What ministack 1.5.33 does with a Python zip function
=====================================================

Facts read in ``.venv-ministack/lib/python3.11/site-packages/ministack`` and
checked against a running ministack (``services/lambda_svc.py`` = svc,
``core/lambda_runtime.py`` = rt).

Execution environments
    Each environment is one persistent subprocess: ``<ministack's
    sys.executable> <tmp>/ministack-lambda-<function>-XXXX/_worker.py`` (rt
    ``_detect_runtime_binary``, ``Worker._spawn``), a direct child of the
    ministack process, cwd ``.../code`` where the zip is extracted (again for
    every new environment). The ``Runtime`` string is ignored for the
    interpreter: it is always ministack's own venv Python (3.11.7 here), whose
    site-packages has botocore 1.43.x, urllib3, dateutil, yaml, but **no boto3,
    aiohttp or PyJWT** (hence the vendored zip, :mod:`.package`). The worker
    imports the handler module once (the cold start happens *inside* the first
    ``Invoke``: the caller waits for spawn + unzip + imports), then serves
    invocations over a JSON-lines stdin/stdout protocol, **one at a time** (a
    per-worker lock, rt ``Worker.invoke``); ``print`` and stderr go to a pipe.
Concurrency and limits
    Concurrent invocations lease separate workers from a per-function pool (rt
    ``acquire_worker``): a burst of N concurrent invocations makes N processes
    (4 concurrent sleeps -> 4 pids). There is no per-function ceiling (rt
    ``_LOCAL_MAX_WORKERS = 0``); the only caps are checked once per invocation
    in svc ``_acquire_execution_slot``: ``ReservedConcurrentExecutions`` and an
    account cap ``LAMBDA_ACCOUNT_CONCURRENCY`` (default svc
    ``_default_account_concurrency``: memory/2 / 21 MiB, at most 1000: 573 on
    this 24 GB machine). Neither queues. Idle surplus workers are reaped after
    ``LAMBDA_WARM_TTL_SECONDS`` (300 s; the first worker of a function is kept
    forever), checked every 30 s (svc ``_ensure_reaper_thread``).
Throttling (reserved concurrency)
    ``PutFunctionConcurrency`` is enforced exactly (svc ``_acquire_execution_slot``,
    ``_throttle_response``): an invocation beyond it gets HTTP **429
    ``TooManyRequestsException``** (``Reason:
    ReservedFunctionConcurrentInvocationLimitExceeded``, ``Retry-After: 1``) at
    once; ``0`` throttles every invocation; ``DeleteFunctionConcurrency`` lifts
    it. boto3's default retry modes retry this error silently: the harness's
    client uses ``total_max_attempts=1`` (see :func:`lambda_client`).
Recycling (``UpdateFunctionConfiguration``)
    Changing ``Environment`` (or Handler, Timeout, MemorySize, Layers, Runtime ...)
    kills **every** worker of ``$LATEST`` at once (svc ``_update_config`` ->
    rt ``invalidate_worker`` -> ``kill_workers``: SIGTERM, SIGKILL after 2 s),
    **including those in the middle of an invocation**: such an invocation ends
    with ``FunctionError: Unhandled``, payload ``{"errorMessage": "Worker process
    died", "errorType": "Runtime.HandlerError"}``. AWS instead lets in-flight
    invocations finish on the old environments. The next invocation starts cold.
    ``Environment`` is replaced wholesale: send all variables plus the nonce.
    The function goes ``Pending`` for 0.5 s but ``$LATEST`` is still invoked.
Killing an environment mid-invocation
    A worker that dies (the handler kills its own process, or anyone SIGKILLs the
    pid) gives the same ``Unhandled`` / ``Worker process died`` answer; any
    unhandled exception in the handler also makes ministack kill the worker (AWS
    keeps the environment after an exception). On timeout (``Timeout``) the
    worker is killed and the answer is ``Task timed out after N.00 seconds``
    (``errorType: Sandbox.Timedout``). The next invocation spawns a new worker,
    but only once the dead worker's exit is visible: the agent's process has
    threads, and for ~5-7 ms after a SIGKILL (until they are all gone) ministack
    still hands it the next invocation, which then fails (``Worker process
    died`` or ``[Errno 32] Broken pipe``; AWS never shows this).
``LogType=Tail``
    ``LogResult`` is the base64 of the last 4 KB of **the function's own
    stderr/print output only** (drained after the answer: 5 ms after the last
    line, or 50 ms when the function wrote nothing, rt ``_drain_stderr_bounded``,
    which is why the agent logs one line per invocation); there is no
    ``START``/``END``/``REPORT`` line in it, and no ``X-Amz-Log-Result`` header
    at all when the function wrote nothing (svc ``_invoke``). The ``REPORT``
    line goes to CloudWatch Logs only (``/aws/lambda/<name>``, a new stream per
    invocation, svc
    ``_emit_lambda_logs``): integer ``Duration`` (spawn included on a cold
    start), ``Billed Duration`` equal to it, ``Max Memory Used`` from
    ``RUSAGE_CHILDREN`` (not the environment's own), never ``Init Duration``.
    So locally, cold starts and init times come from the agent's ``meta`` event.
Function URLs
    ``CreateFunctionUrlConfig`` returns
    ``https://<32 chars>.lambda-url.<region>.on.aws/``; ministack serves it at ``http://127.0.0.1:<port>/_aws/lambda-url/<id>/<path>``
    (app ``_parse_lambda_url``; or by ``Host`` header), as a payload 2.0 event,
    ``BUFFERED`` (svc ``handle_function_url_request``; a throttle there is a
    ``429`` response); :func:`local_function_url`.
Environment and network
    The worker's environment is ministack's own environment, then the function's
    ``Environment.Variables`` (minus reserved names), then ``AWS_REGION``,
    credentials (access key = the account id), ``AWS_ENDPOINT_URL`` =
    ministack unless the function or ministack's environment sets one,
    ``AWS_LAMBDA_FUNCTION_NAME``, ``AWS_LAMBDA_LOG_STREAM_NAME`` (a new uuid per
    worker), ``_LAMBDA_TIMEOUT``. The worker is an ordinary process: it reaches
    any 127.0.0.1 service (ministack's DynamoDB, the LLM simulator) directly.
    ``MemorySize`` is not enforced. ``AUTH`` off: any ``Role`` ARN is accepted.

What a chaos action can use
    * throttle: ``PutFunctionConcurrency`` (0 = everything 429) and
      ``DeleteFunctionConcurrency`` (or back to :data:`LOCAL_RESERVED_CONCURRENCY`
      locally), exactly as on AWS;
    * recycle: ``UpdateFunctionConfiguration`` with all current variables plus a
      nonce variable; locally this also kills in-flight invocations (above);
    * kill an environment mid-turn: the ``meta`` event's ``instance_id`` is
      ``lambda-<pid>-<stream>`` and the pid is the environment's process
      (locally SIGKILL works); portable to AWS: a kill order in SSM Parameter
      Store (``/loadlab/kill-orders/<function>``; the zip carries the SSM model and
      the SAM template grants ``ssm:GetParameter`` there) read by
      :mod:`~.killhook`, passed as ``LambdaAgent(on_event=...)`` in
      :func:`~.handler.environment`, which ends its own process (``os._exit``)
      after the ``meta`` event (checkpoint written, answer not yet returned). On
      ministack that invocation answers ``Worker process died``, and the next one
      starts a new worker once the dead one's exit is visible.

Measured concurrency on this 2-core machine: 8 environments (see
:data:`LOCAL_RESERVED_CONCURRENCY`), which the embedded stack sets as the
function's reserved concurrency, so a larger load is throttled (429) rather than
left to pile up cold starts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loadlab.embedded.aws_lambda.package import HANDLER, RUNTIME
from loadlab.errors import StackError

if TYPE_CHECKING:
    from types_boto3_lambda.client import LambdaClient

DEFAULT_FUNCTION = "loadlab-agent"
PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/loadlab-agent"
"""ministack accepts any role ARN (its IAM checks are off by default)."""
LOCAL_RESERVED_CONCURRENCY = 8
"""Environments the embedded stack lets the function have at once (its reserved concurrency).

Measured on this 2-core machine with ``python -m loadlab.embedded.lambda_capacity
--levels 1,2,4,8,16`` (agent init 800 ms x time scale 0.05, 3 warm turns per
shopper; slowest cold turn / median cold init / warm p50 / warm p95, ms)::

    level  1:   979 /  280 / 323 / 324    sustained
    level  2:  1254 /  426 / 304 / 326    sustained
    level  4:  1977 /  528 / 316 / 339    sustained
    level  8:  5573 / 1491 / 324 / 357    sustained
    level 16: 19024 / 6318 / 415 / 516    not sustained (cold wave > 10 s)
    (a second run, with other work on the machine: level 8 5764 ms, level 12 13184 ms)

Warm turns scale to 16 (p95 +60 %), but a wave of cold starts does not: each
new environment unzips 14 MB (in ministack's own process, under its GIL) and
imports boto3 and aiohttp, so 16 at once take 19 s, close to the function's
30 s timeout. A flash sale's first wave is exactly that, so the limit is 8.
"""
_POLL_S = 0.1
SNAPSTART_RUNTIME = "python3.12"
"""The first Python runtime SnapStart supports (ministack checks it as AWS does)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LambdaOptions:
    """How the embedded stack deploys the agent function (all on ministack)."""

    function_name: str = DEFAULT_FUNCTION
    memory_mb: int = 512
    timeout_s: int = 30
    reserved_concurrency: int | None = LOCAL_RESERVED_CONCURRENCY
    function_url: bool = True
    package_cache: Path | None = None
    provisioned_concurrency: int = 0
    """Environments initialised right after the deploy and kept (see :mod:`.provisioned`)."""
    snapstart: bool = False
    """Start environments from one initialised snapshot (see :mod:`.snapstart`)."""
    agent_init: Literal["module", "handler"] = "module"
    """Where the agent initialises: once per environment, or in every invocation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionSpec:
    """The function to create or update (the environment holds secrets: never logged)."""

    name: str = DEFAULT_FUNCTION
    role_arn: str = PLACEHOLDER_ROLE
    handler: str = HANDLER
    runtime: str = RUNTIME
    memory_mb: int = 512
    timeout_s: int = 30
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    reserved_concurrency: int | None = None
    function_url: bool = False
    description: str = "loadlab reference shopping agent"
    snapstart: bool = False
    """``SnapStart: {ApplyOn: PublishedVersions}`` (needs a Python 3.12+ runtime on AWS)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployedFunction:
    """The deployed function, as callers address it."""

    name: str
    arn: str
    code_sha256: str
    url: str | None
    reserved_concurrency: int | None
    created: bool


def agent_environment(
    *,
    jwt_secret: str,
    llm_url: str,
    table: str,
    dynamodb_endpoint: str | None = None,
    aws_endpoint_url: str | None = None,
    time_scale: float = 1.0,
    mode: str = "correct",
    init_ms: float | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The function's ``Environment.Variables``: the pod agent's ``LOADLAB_*`` settings.

    Give ``aws_endpoint_url`` (and ``dynamodb_endpoint``) only for a local AWS;
    on AWS the SDK's own endpoints are right.
    """
    env = {
        "LOADLAB_JWT_SECRET": jwt_secret,
        "LOADLAB_AGENT_LLM_URL": llm_url,
        "LOADLAB_AGENT_TABLE": table,
        "LOADLAB_TIME_SCALE": str(time_scale),
        "LOADLAB_AGENT_MODE": mode,
    }
    if dynamodb_endpoint is not None:
        env["LOADLAB_AGENT_DYNAMODB_ENDPOINT"] = dynamodb_endpoint
    if aws_endpoint_url is not None:
        env["AWS_ENDPOINT_URL"] = aws_endpoint_url
    if init_ms is not None:
        env["LOADLAB_AGENT_INIT_MS"] = str(init_ms)
    return env | dict(extra or {})


def lambda_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    read_timeout_s: float = 60.0,
    max_pool_connections: int = 10,
) -> LambdaClient:
    """A Lambda client that never retries on its own (every throttle reaches the caller).

    Without keys it uses the default credential chain, but never the user's
    ``AWS_PROFILE`` when ``endpoint_url`` is given (a local AWS needs none).
    """
    import boto3
    import botocore.session
    from botocore.config import Config

    botocore_session = None
    if endpoint_url is not None:
        botocore_session = botocore.session.Session(
            session_vars={"profile": (None, None, None, None)}
        )
    session = boto3.session.Session(
        botocore_session=botocore_session,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    return session.client(
        "lambda",
        endpoint_url=endpoint_url,
        config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=read_timeout_s,
            max_pool_connections=max_pool_connections,
        ),
    )


def local_function_url(function_url: str, endpoint_url: str) -> str:
    """Where ministack serves a Function URL: ``<endpoint>/_aws/lambda-url/<id>``."""
    host = function_url.split("://", 1)[-1]
    url_id = host.split(".", 1)[0]
    return f"{endpoint_url.rstrip('/')}/_aws/lambda-url/{url_id}"


def wait_until_ready(client: LambdaClient, name: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll until the function is ``Active`` with its last update ``Successful``.

    Returns its configuration. Raises :class:`~loadlab.errors.StackError` if it
    fails or is not ready within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        config: dict[str, Any] = dict(client.get_function_configuration(FunctionName=name))
        state, update = config.get("State"), config.get("LastUpdateStatus")
        if state == "Failed" or update == "Failed":
            reason = config.get("StateReason") or config.get("LastUpdateStatusReason")
            raise StackError(
                f"Lambda function {name} failed to deploy: {reason}",
                hint="read the function's configuration and its CloudWatch logs",
            )
        if state == "Active" and update in (None, "Successful"):
            return config
        if time.monotonic() >= deadline:
            raise StackError(
                f"Lambda function {name} is still {state}/{update} after {timeout_s:.0f} s",
                hint="the Lambda service is slow or stuck; try again or raise the timeout",
            )
        time.sleep(_POLL_S)  # Lambda offers no change notification to wait on


def deploy_function(
    client: LambdaClient,
    spec: FunctionSpec,
    code: bytes,
    *,
    endpoint_url: str | None = None,
    timeout_s: float = 30.0,
) -> DeployedFunction:
    """Create ``spec`` with ``code`` (a zip), or update an existing function to match it.

    ``endpoint_url`` is the local AWS endpoint, if any: the Function URL is then
    returned in the form ministack serves (:func:`local_function_url`). Raises
    :class:`~loadlab.errors.StackError` if the function does not become ready.
    """
    settings: dict[str, Any] = {
        "Role": spec.role_arn,
        "Handler": spec.handler,
        "Runtime": spec.runtime,
        "MemorySize": spec.memory_mb,
        "Timeout": spec.timeout_s,
        "Description": spec.description,
        "Environment": {"Variables": dict(spec.environment)},
        "SnapStart": {"ApplyOn": "PublishedVersions" if spec.snapstart else "None"},
    }
    if spec.snapstart and spec.runtime == RUNTIME:
        settings["Runtime"] = SNAPSTART_RUNTIME  # SnapStart for Python starts at 3.12
    exceptions = client.exceptions
    created = False
    try:
        client.get_function_configuration(FunctionName=spec.name)
    except exceptions.ResourceNotFoundException:
        client.create_function(FunctionName=spec.name, Code={"ZipFile": code}, **settings)
        created = True
    else:
        client.update_function_code(FunctionName=spec.name, ZipFile=code)
        wait_until_ready(client, spec.name, timeout_s=timeout_s)
        client.update_function_configuration(FunctionName=spec.name, **settings)
    config = wait_until_ready(client, spec.name, timeout_s=timeout_s)
    if spec.reserved_concurrency is None:
        client.delete_function_concurrency(FunctionName=spec.name)
    else:
        client.put_function_concurrency(
            FunctionName=spec.name, ReservedConcurrentExecutions=spec.reserved_concurrency
        )
    url = _function_url(client, spec.name, endpoint_url) if spec.function_url else None
    return DeployedFunction(
        name=spec.name,
        arn=str(config["FunctionArn"]),
        code_sha256=str(config.get("CodeSha256", "")),
        url=url,
        reserved_concurrency=spec.reserved_concurrency,
        created=created,
    )


def _function_url(client: LambdaClient, name: str, endpoint_url: str | None) -> str:
    exceptions = client.exceptions
    try:
        url = client.get_function_url_config(FunctionName=name)["FunctionUrl"]
    except exceptions.ResourceNotFoundException:
        url = client.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]
        # AuthType NONE still needs a resource policy on AWS (both statements, since
        # October 2025); the agent checks its JWT itself.
        statements: list[dict[str, Any]] = [
            {"Action": "lambda:InvokeFunctionUrl", "FunctionUrlAuthType": "NONE"},
            {"Action": "lambda:InvokeFunction", "InvokedViaFunctionUrl": True},
        ]
        for number, statement in enumerate(statements):
            with contextlib.suppress(exceptions.ResourceConflictException):
                client.add_permission(
                    FunctionName=name,
                    StatementId=f"loadlab-function-url-{number}",
                    Principal="*",
                    **statement,
                )
    return url if endpoint_url is None else local_function_url(url, endpoint_url)
