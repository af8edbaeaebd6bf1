"""The pressure sampler's command-line options and how a sampler is built from them.

Each option has an environment variable alternative, read when the option is
not given (so ``loadlab run`` and ``loadlab gameday`` can pass them through
Locust's environment). Lists in environment variables are space-separated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from loadlab.errors import ConfigError
from loadlab.measure.pressure.cloudwatch import CloudWatchSource, valid_period
from loadlab.measure.pressure.prometheus import (
    DEFAULT_METRICS,
    QUERY_PATH,
    PrometheusQuery,
    PrometheusScrape,
)
from loadlab.measure.pressure.sampler import PressureSampler, PressureSink, PressureSource

ENV_INTERVAL = "LOADLAB_PRESSURE_INTERVAL"
ENV_PROMETHEUS = "LOADLAB_PRESSURE_PROMETHEUS"
ENV_CLOUDWATCH = "LOADLAB_PRESSURE_CLOUDWATCH"
ENV_PERIOD = "LOADLAB_PRESSURE_CLOUDWATCH_PERIOD"
ENV_TABLES = "LOADLAB_PRESSURE_DYNAMODB_TABLE"
ENV_FUNCTIONS = "LOADLAB_PRESSURE_LAMBDA_FUNCTION"
ENV_MODELS = "LOADLAB_PRESSURE_BEDROCK_MODEL"


def add_pressure_arguments(parser: Any) -> None:
    """Add the ``--pressure-*`` options to an argparse (or Locust) parser."""
    group = parser.add_argument_group("loadlab downstream pressure")
    group.add_argument(
        "--pressure-interval",
        type=float,
        default=None,
        help="seconds between downstream samples into pressure.parquet (default 5; 0 = none). "
        f"Env: {ENV_INTERVAL}",
    )
    group.add_argument(
        "--pressure-prometheus",
        action="append",
        default=None,
        metavar="URL[#PATTERNS]",
        help="scrape this Prometheus endpoint (repeatable). Keeps the metrics matching the "
        "comma-separated shell patterns after '#' (default "
        f"{','.join(DEFAULT_METRICS)}). A URL ending in {QUERY_PATH} asks a Prometheus "
        f"server for those series instead. Env: {ENV_PROMETHEUS} (space-separated)",
    )
    group.add_argument(
        "--pressure-cloudwatch",
        action="store_true",
        default=None,
        help="sample AWS/DynamoDB, AWS/Lambda and AWS/Bedrock metrics from CloudWatch "
        f"(boto3 settings: AWS_REGION, AWS_ENDPOINT_URL, credentials). Env: {ENV_CLOUDWATCH}=1",
    )
    group.add_argument(
        "--pressure-cloudwatch-period",
        type=int,
        default=None,
        help="CloudWatch period in seconds (default 60, AWS's resolution; 1 for the embedded "
        f"stack). Env: {ENV_PERIOD}",
    )
    for flag, env, what in (
        ("--pressure-dynamodb-table", ENV_TABLES, "DynamoDB table"),
        ("--pressure-lambda-function", ENV_FUNCTIONS, "Lambda function"),
        ("--pressure-bedrock-model", ENV_MODELS, "Bedrock model id"),
    ):
        group.add_argument(
            flag,
            action="append",
            default=None,
            metavar="NAME",
            help=f"sample this {what} (repeatable; '*' = all; implies --pressure-cloudwatch). "
            "With none of these, every resource CloudWatch lists is sampled; with some, only "
            f"the namespaces named. Env: {env} (space-separated)",
        )


def pressure_sampler_from_options(
    options: Any,
    *,
    sink: PressureSink,
    environ: Mapping[str, str] | None = None,
    cloudwatch_client: Any = None,
) -> PressureSampler | None:
    """Build the sampler the options ask for (not started), or ``None`` if there is nothing to do.

    ``cloudwatch_client`` defaults to a boto3 client from the environment.
    Raises :class:`~loadlab.errors.ConfigError` for a bad value.
    """
    env = os.environ if environ is None else environ
    interval = _interval(getattr(options, "pressure_interval", None), env)
    if interval == 0:
        return None
    sources: list[PressureSource] = [
        prometheus_source(spec)
        for spec in _listed(getattr(options, "pressure_prometheus", None), env, ENV_PROMETHEUS)
    ]
    resources = {
        "TableName": _listed(getattr(options, "pressure_dynamodb_table", None), env, ENV_TABLES),
        "FunctionName": _listed(
            getattr(options, "pressure_lambda_function", None), env, ENV_FUNCTIONS
        ),
        "ModelId": _listed(getattr(options, "pressure_bedrock_model", None), env, ENV_MODELS),
    }
    flag = getattr(options, "pressure_cloudwatch", None)
    wanted = bool(flag) if flag is not None else _truthy(env.get(ENV_CLOUDWATCH, ""))
    if wanted or any(resources.values()):
        period = _period(getattr(options, "pressure_cloudwatch_period", None), env)
        client = cloudwatch_client if cloudwatch_client is not None else default_cloudwatch_client()
        sources.append(CloudWatchSource(client=client, resources=resources, period_s=period))
    if not sources:
        return None
    return PressureSampler(sources=sources, interval_s=interval, sink=sink)


def prometheus_source(spec: str) -> PressureSource:
    """A scrape or query source for ``URL[#PATTERNS]`` (see ``--pressure-prometheus``)."""
    url, _, fragment = spec.partition("#")
    patterns = tuple(p.strip() for p in fragment.split(",") if p.strip()) or DEFAULT_METRICS
    if url.rstrip("/").endswith(QUERY_PATH):
        return PrometheusQuery(url=url, metrics=patterns)
    return PrometheusScrape(url=url, metrics=patterns)


def default_cloudwatch_client() -> Any:
    """A CloudWatch client from boto3's usual settings, with short timeouts.

    boto3 reads the region, the credentials and ``AWS_ENDPOINT_URL`` (the
    embedded stack's ministack) from the environment and profile.
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    if not session.region_name:
        raise ConfigError(
            "CloudWatch pressure sampling needs an AWS region and none is configured",
            hint="set AWS_REGION (e.g. us-east-1) or a region in your AWS profile",
        )
    return session.client(
        "cloudwatch",
        config=Config(
            connect_timeout=2, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}
        ),
    )


def _interval(value: float | None, env: Mapping[str, str]) -> float:
    if value is None:
        raw = env.get(ENV_INTERVAL, "").strip()
        try:
            value = float(raw) if raw else 5.0
        except ValueError:
            raise ConfigError(
                f"{ENV_INTERVAL}={raw!r} is not a number", hint="give seconds, e.g. 5 (0 = off)"
            ) from None
    if not (value >= 0 and value < 86_400):
        raise ConfigError(
            f"--pressure-interval {value!r} is invalid", hint="give seconds >= 0, e.g. 5 (0 = off)"
        )
    return value


def _period(value: int | None, env: Mapping[str, str]) -> int:
    if value is None:
        raw = env.get(ENV_PERIOD, "").strip()
        try:
            value = int(raw) if raw else 60
        except ValueError:
            raise ConfigError(
                f"{ENV_PERIOD}={raw!r} is not a whole number of seconds",
                hint="use 60 on AWS, 1 for the embedded stack",
            ) from None
    if not valid_period(value):
        raise ConfigError(
            f"--pressure-cloudwatch-period {value!r} is not a period CloudWatch accepts",
            hint="use 1, 5, 10, 30 or a multiple of 60 (60 on AWS)",
        )
    return value


def _listed(values: list[str] | None, env: Mapping[str, str], name: str) -> list[str]:
    if values is not None:
        return [v for v in values if v]
    return env.get(name, "").split()


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")
