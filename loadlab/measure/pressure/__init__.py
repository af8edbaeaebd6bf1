"""Downstream pressure on the run timeline: CloudWatch and Prometheus samples → pressure.parquet.

A :class:`PressureSampler` polls its sources in the background of a run (in the
Locust process that writes the run directory) and emits ``PressureSample`` rows:

* :class:`CloudWatchSource` — ``AWS/DynamoDB``, ``AWS/Lambda`` and ``AWS/Bedrock``
  under AWS's own names (``source="cloudwatch"``, ``metric="AWS/DynamoDB/..."``);
* :class:`PrometheusScrape` — a ``/metrics`` endpoint (``source="prometheus"``);
* :class:`PrometheusQuery` — a Prometheus server's ``/api/v1/query``, same rows.
"""

from loadlab.measure.pressure.cloudwatch import AWS_METRICS, CloudWatchSource, MetricSpec
from loadlab.measure.pressure.options import (
    add_pressure_arguments,
    pressure_sampler_from_options,
)
from loadlab.measure.pressure.prometheus import PrometheusQuery, PrometheusScrape
from loadlab.measure.pressure.sampler import PressureSampler, PressureSource

__all__ = [
    "AWS_METRICS",
    "CloudWatchSource",
    "MetricSpec",
    "PressureSampler",
    "PressureSource",
    "PrometheusQuery",
    "PrometheusScrape",
    "add_pressure_arguments",
    "pressure_sampler_from_options",
]
