"""AWS clients for the Lambda activities, and AWS errors told as what to fix.

The activities build their clients with chaostoolkit-aws's ``aws_client`` from
the experiment's ``configuration`` and ``secrets`` (``aws_region``,
``aws_profile_name``, ``aws_assume_role_arn``, ``aws_access_key_id`` ...), so a
loadlab action and a chaostoolkit-aws action of the same experiment act as the
same identity, in the same account, at the same endpoint: ``AWS_ENDPOINT_URL``
(or ``AWS_ENDPOINT_URL_LAMBDA`` / ``_SSM``) when set, which is how they reach
ministack. loadlab's own commands use :func:`aws_client_factory`, which keeps
boto3's default session untouched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from chaoslib.exceptions import ActivityFailed

if TYPE_CHECKING:
    from types_boto3_lambda.client import LambdaClient
    from types_boto3_ssm.client import SSMClient

ClientFactory = Callable[[str], Any]
"""``factory("lambda")`` / ``factory("ssm")`` -> a boto3 client."""

FUNCTION_ENV = "LOADLAB_LAMBDA_FUNCTION"
ACCESS_DENIED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "UnrecognizedClientException",
    }
)
_PERMISSIONS = {
    "GetFunctionConfiguration": "lambda:GetFunctionConfiguration",
    "UpdateFunctionConfiguration": "lambda:UpdateFunctionConfiguration",
    "GetFunctionConcurrency": "lambda:GetFunctionConcurrency",
    "PutFunctionConcurrency": "lambda:PutFunctionConcurrency",
    "DeleteFunctionConcurrency": "lambda:DeleteFunctionConcurrency",
    "GetParameter": "ssm:GetParameter on /loadlab/*",
    "GetParametersByPath": "ssm:GetParametersByPath on /loadlab/*",
    "PutParameter": "ssm:PutParameter on /loadlab/*",
    "DeleteParameter": "ssm:DeleteParameter on /loadlab/*",
}
_POLL_S = 0.2


class Clients:
    """The Lambda and SSM clients of one activity, built on first use from a factory."""

    def __init__(self, factory: ClientFactory) -> None:
        self._factory = factory

    @functools.cached_property
    def lambda_(self) -> LambdaClient:
        """The Lambda client."""
        client: LambdaClient = self._factory("lambda")
        return client

    @functools.cached_property
    def ssm(self) -> SSMClient:
        """The SSM client (leases and kill orders live in Parameter Store)."""
        client: SSMClient = self._factory("ssm")
        return client

    def close(self) -> None:
        """Close the clients built so far (their connection pools)."""
        for name in ("lambda_", "ssm"):
            client = self.__dict__.pop(name, None)
            if client is not None:
                client.close()

    def where(self) -> str:
        """``region, endpoint`` of the Lambda client, for messages."""
        try:
            meta = self.lambda_.meta
        except Exception:
            return "unknown region"
        return f"{meta.region_name}, {meta.endpoint_url}"


def chaos_clients(
    configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None
) -> Clients:
    """Clients as chaostoolkit-aws builds them from an experiment's configuration and secrets."""
    config = dict(configuration or {})
    region = config.get("aws_region") or os.environ.get("AWS_REGION")
    if not (region or os.environ.get("AWS_DEFAULT_REGION")):
        raise ActivityFailed(
            "no AWS region: set AWS_REGION (or aws_region in the experiment's configuration); "
            "loadlab gameday sets it for the embedded stack"
        )
    from chaosaws import aws_client

    return Clients(lambda service: aws_client(service, config, dict(secrets or {})))


def aws_client_factory(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> ClientFactory:
    """A factory of boto3 clients on a private session (loadlab's commands; no global state).

    Unset arguments come from boto3's usual settings (``AWS_ENDPOINT_URL``,
    ``AWS_REGION``, the credential chain).
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region,
    )
    config = Config(
        connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3}
    )

    def factory(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url, config=config)  # type: ignore[call-overload]

    return factory


def function_name_of(function_name: str | None) -> str:
    """The function to act on: the argument, else ``$LOADLAB_LAMBDA_FUNCTION``.

    An ARN (``arn:aws:lambda:<region>:<account>:function:<name>``) becomes its
    name, so that leases and kill orders are keyed alike however it was given.
    """
    name = (function_name or os.environ.get(FUNCTION_ENV, "")).strip()
    if not name:
        raise ActivityFailed(
            f"no Lambda function: pass function_name or set {FUNCTION_ENV} "
            "(loadlab gameday --lambda sets it)"
        )
    parts = name.split(":")
    if name.startswith("arn:") and len(parts) >= 7 and parts[5] == "function":
        return parts[6]
    return name


def explain(exc: Exception, doing: str, *, function_name: str | None, where: str) -> str:
    """One sentence: what failed while ``doing``, and how to fix it."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "?")), str(error.get("Message", ""))
        operation = exc.operation_name
        if code == "ResourceNotFoundException" and function_name is not None:
            return (
                f"Lambda function {function_name!r} not found ({where}) while {doing}: {message}; "
                f"fix: check the function name ({FUNCTION_ENV}) and the account, region and "
                "endpoint (AWS_REGION, AWS_ENDPOINT_URL)"
            )
        if code in ACCESS_DENIED:
            permission = _PERMISSIONS.get(operation, operation)
            return (
                f"AWS refused {operation} ({code}) while {doing}: {message}; fix: allow "
                f"{permission} for the identity running the experiment"
            )
        return f"{operation} failed ({code}) while {doing}: {message}"
    if isinstance(exc, EndpointConnectionError):
        return (
            f"cannot reach AWS ({where}) while {doing}: {exc}; fix: check AWS_ENDPOINT_URL "
            "(`loadlab up` prints the embedded stack's) or the network"
        )
    if isinstance(exc, NoCredentialsError | NoRegionError):
        return f"{exc} while {doing}; fix: set AWS credentials and AWS_REGION"
    return f"{type(exc).__name__} while {doing}: {exc}"


@contextlib.contextmanager
def aws_errors(clients: Clients, doing: str, *, function_name: str | None = None) -> Iterator[None]:
    """Turn AWS failures inside the block into an ActivityFailed that says what to fix."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        message = explain(exc, doing, function_name=function_name, where=clients.where())
        raise ActivityFailed(message) from None


def error_code(exc: Exception) -> str | None:
    """The AWS error code of a ClientError, else None."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or None
    return None


def reserved_concurrency(client: LambdaClient, function_name: str) -> int | None:
    """The function's reserved concurrency, or None when it has none."""
    answer = client.get_function_concurrency(FunctionName=function_name)
    value = answer.get("ReservedConcurrentExecutions")
    return None if value is None else int(value)


def set_reserved_concurrency(client: LambdaClient, function_name: str, value: int | None) -> None:
    """Set (or with None, remove) the function's reserved concurrency."""
    if value is None:
        client.delete_function_concurrency(FunctionName=function_name)
    else:
        client.put_function_concurrency(
            FunctionName=function_name, ReservedConcurrentExecutions=value
        )


def wait_until_updated(client: LambdaClient, function_name: str, *, wait_s: float) -> float:
    """Poll until the function is Active with its last update Successful; the seconds it took.

    Raises ActivityFailed if the update failed or is not done within ``wait_s``.
    """
    began = time.monotonic()
    deadline = began + wait_s
    while True:
        config = client.get_function_configuration(FunctionName=function_name)
        state, update = config.get("State"), config.get("LastUpdateStatus")
        if state == "Failed" or update == "Failed":
            reason = config.get("LastUpdateStatusReason") or config.get("StateReason")
            raise ActivityFailed(
                f"the update of Lambda function {function_name!r} failed: {reason}"
            )
        if state == "Active" and update in (None, "Successful"):
            return time.monotonic() - began
        if time.monotonic() >= deadline:
            raise ActivityFailed(
                f"Lambda function {function_name!r} is still {state}/{update} after {wait_s:g} s; "
                "fix: raise wait_s, or look at the function's last update in the console"
            )
        time.sleep(_POLL_S)  # Lambda has no change notification to wait on
