"""The sampler: a broken source never stops the others nor raises; options; rows on disk."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import pytest
from pressure_support import ListSink, ServedSimulator, cloudwatch_client, free_port

from loadlab.errors import ConfigError
from loadlab.measure.pressure import (
    CloudWatchSource,
    PressureSampler,
    PrometheusScrape,
    add_pressure_arguments,
    pressure_sampler_from_options,
)
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory
from loadlab.rows import PressureSample, TimelineEvent


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_pressure_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.integration
def test_a_dead_source_is_counted_logged_once_and_the_others_go_on(
    llm_simulator: ServedSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/metrics"
    dead = PrometheusScrape(url=dead_url, timeout_s=1.0)
    alive = PrometheusScrape(url=f"{llm_simulator.url}/metrics")
    sink = ListSink()
    sampler = PressureSampler(sources=[dead, alive], interval_s=60, sink=sink)

    with caplog.at_level(logging.WARNING, logger="loadlab.pressure"):
        first = sampler.poll_once()
        second = sampler.poll_once()
        sampler.stop()  # never started: stop makes the final poll itself

    assert first > 0 and second == first
    assert sampler.errors == {dead.label: 3, alive.label: 0}
    warnings = [r for r in caplog.records if dead.label in r.getMessage()]
    assert len(warnings) == 1
    assert "fix: check that" in warnings[0].getMessage()
    samples = [r for r in sink.rows if isinstance(r, PressureSample)]
    assert len(samples) == 3 * first
    notes = [r for r in sink.rows if isinstance(r, TimelineEvent)]
    assert [(n.kind, n.name, n.attrs) for n in notes] == [
        ("note", "pressure_errors", {"errors": {dead.label: 3}})
    ]


class _RaisingSink:
    def emit(self, row: object) -> None:
        raise OSError("disk full")


@pytest.mark.integration
def test_a_failing_sink_does_not_raise_into_the_caller(llm_simulator: ServedSimulator) -> None:
    sampler = PressureSampler(
        sources=[PrometheusScrape(url=f"{llm_simulator.url}/metrics")],
        interval_s=1,
        sink=_RaisingSink(),
    )
    assert sampler.poll_once() == 0
    assert sampler.sink_errors > 1


@pytest.mark.integration
def test_running_in_the_background_writes_pressure_parquet(
    llm_simulator: ServedSimulator, tmp_path: Path
) -> None:
    llm_simulator.chat()
    run_dir = RunDirectory(tmp_path / "run")
    recorder = RunRecorder(run_dir).start()
    sampler = PressureSampler(
        sources=[
            PrometheusScrape(url=f"{llm_simulator.url}/metrics", metrics=["loadlab_llm_requests"])
        ],
        interval_s=30,
        sink=recorder,
    ).start()
    sampler.stop()  # the first poll runs at start, the final one at stop
    recorder.close()

    table = pd.read_parquet(run_dir.table("pressure"))
    assert list(table.columns) == ["t", "source", "metric", "value", "dimensions_json"]
    assert set(table["metric"]) == {"loadlab_llm_requests_total"}
    assert len(table) == 2 and set(table["value"]) == {1.0}


def test_options_default_to_five_seconds_and_zero_disables() -> None:
    assert pressure_sampler_from_options(parse(), sink=ListSink(), environ={}) is None
    sampler = pressure_sampler_from_options(
        parse("--pressure-prometheus", "http://127.0.0.1:9/metrics"), sink=ListSink(), environ={}
    )
    assert sampler is not None and sampler.interval_s == 5.0
    off = parse("--pressure-interval", "0", "--pressure-prometheus", "http://127.0.0.1:9/m")
    assert pressure_sampler_from_options(off, sink=ListSink(), environ={}) is None


def test_environment_variables_stand_in_for_options_and_flags_win() -> None:
    environ = {
        "LOADLAB_PRESSURE_INTERVAL": "2",
        "LOADLAB_PRESSURE_PROMETHEUS": "http://127.0.0.1:9/a http://127.0.0.1:9/b#x_*",
        "LOADLAB_PRESSURE_CLOUDWATCH": "1",
        "LOADLAB_PRESSURE_CLOUDWATCH_PERIOD": "1",
        "LOADLAB_PRESSURE_DYNAMODB_TABLE": "checkpoints",
    }
    client = cloudwatch_client("http://127.0.0.1:9")
    sampler = pressure_sampler_from_options(
        parse(), sink=ListSink(), environ=environ, cloudwatch_client=client
    )
    assert sampler is not None and sampler.interval_s == 2.0
    scrapes = [s for s in sampler.sources if isinstance(s, PrometheusScrape)]
    assert [(s.url, s.metrics) for s in scrapes] == [
        ("http://127.0.0.1:9/a", ("loadlab_llm_*", "loadlab_agent_*")),
        ("http://127.0.0.1:9/b", ("x_*",)),
    ]
    (cloudwatch,) = [s for s in sampler.sources if isinstance(s, CloudWatchSource)]
    assert cloudwatch.period_s == 1
    assert {s.namespace for s in cloudwatch.specs} == {"AWS/DynamoDB"}

    flags = parse("--pressure-prometheus", "http://127.0.0.1:9/c", "--pressure-interval", "3")
    sampler = pressure_sampler_from_options(
        flags, sink=ListSink(), environ=environ, cloudwatch_client=client
    )
    assert sampler is not None and sampler.interval_s == 3.0
    assert [s.url for s in sampler.sources if isinstance(s, PrometheusScrape)] == [
        "http://127.0.0.1:9/c"
    ]


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--pressure-interval", "-1"], {}, "--pressure-interval"),
        ([], {"LOADLAB_PRESSURE_INTERVAL": "soon"}, "LOADLAB_PRESSURE_INTERVAL"),
        (["--pressure-cloudwatch", "--pressure-cloudwatch-period", "7"], {}, "period"),
        (["--pressure-prometheus", "localhost:9090"], {}, "not an http"),
    ],
)
def test_bad_values_are_config_errors_naming_them(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        pressure_sampler_from_options(
            parse(*argv),
            sink=ListSink(),
            environ=environ,
            cloudwatch_client=cloudwatch_client("http://127.0.0.1:9"),
        )


def test_cloudwatch_without_a_region_says_how_to_set_one() -> None:
    with pytest.raises(ConfigError, match="AWS_REGION"):
        pressure_sampler_from_options(parse("--pressure-cloudwatch"), sink=ListSink(), environ={})
