"""The cost model against synthetic runs whose bill is computed by hand below.

*Lambda run* (100 s, 512 MB recorded in the manifest, 10 sessions): 4
environments e0..e3, each cold on its first invocation (2,500 ms, of which
2,000 ms INIT) at ``1 + 0.1 i`` s, so 4 are in flight at once; then 9 warm
invocations of 400 ms each at ``10 + 10 n + i`` s. One more invocation was
throttled (not billed). Every turn read 1 RCU, wrote 0.5 WCU, sent 1,000 tokens
and received 200.

    duration  4 x 0.5 s + 36 x 0.4 s = 16.4 s  x 0.5 GB = 8.2 GB-s
    INIT      4 x 2 s                  = 8 s   x 0.5 GB = 4 GB-s
    requests  40
    Lambda    40 x 0.0000002 + (8.2 + 4) x 0.0000166667            = $0.000211334
    shared    40 x 0.000000125 + 20 x 0.000000625 + 40,000 x 0.0000008 + 8,000 x 0.000004
              = 0.000005 + 0.0000125 + 0.032 + 0.032                = $0.0640175

*Pods run* (100 s, pods a and b alive throughout, 20 requests of 1 s): 1 node
of m5.large (2 pods per node): (0.096 + 0.10) x 100 / 3600 = $0.00544444.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from loadlab.analysis.cost import cost_estimate, measured_usage
from loadlab.analysis.prices import load_prices
from loadlab.analysis.rundata import load_run
from loadlab.cli import main
from loadlab.errors import ConfigError, RunDirectoryError
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.report.cost import cost_section
from loadlab.report.render import render_run
from loadlab.rows import RequestSample, SessionRecord, TurnRecord

T0 = 1_700_000_000.0
GB_S = 0.0000166667


def _run(
    path: Path,
    target: dict[str, object],
    requests: list[tuple[float, float, str, bool, float | None, str | None]],
    sessions: int,
) -> Path:
    run_dir = RunDirectory(path)
    path.mkdir(parents=True)
    run_dir.write_manifest(
        RunManifest(
            run_id=path.name,
            name=path.name,
            started_at=T0,
            scenario_path=None,
            scenario_sha256=None,
            scenario={},
            target=target,
            versions={},
            seed=1,
            ended_at=T0 + 100.0,
        )
    )
    with RunRecorder(run_dir) as rec:
        for k, (start, latency_ms, instance, cold, init_ms, error) in enumerate(requests):
            session = f"s{k % sessions}"
            rec.emit(
                RequestSample(
                    t_start=T0 + start,
                    name="turn:search",
                    session_id=session,
                    turn_index=k,
                    attempt=1,
                    latency_ms=latency_ms,
                    ttft_ms=None,
                    bytes=10,
                    status=429 if error else 200,
                    error_kind=error,
                    instance_id=None if error else instance,
                    cold_start=None if error else cold,
                    init_ms=init_ms,
                )
            )
            if error:
                continue
            rec.emit(
                TurnRecord(
                    t_start=T0 + start,
                    t_end=T0 + start + latency_ms / 1000,
                    session_id=session,
                    turn_index=k,
                    intent="search",
                    ok=True,
                    attempts=1,
                    latency_ms=latency_ms,
                    ttft_ms=None,
                    interrupted=False,
                    instance_id=instance,
                    cold_start=cold,
                    ddb_rcu=1.0,
                    ddb_wcu=0.5,
                    tokens_in=1000,
                    tokens_out=200,
                )
            )
        for s in range(sessions):
            rec.emit(
                SessionRecord(
                    session_id=f"s{s}",
                    persona="p",
                    seed=s,
                    t_start=T0,
                    t_end=T0 + 100,
                    turns_planned=4,
                    turns_done=4,
                    interrupted_turns=0,
                    verdict="clean",
                    verdict_reason="",
                )
            )
    return path


def lambda_run(path: Path, *, memory: bool = True) -> Path:
    reqs: list[tuple[float, float, str, bool, float | None, str | None]] = []
    for i in range(4):
        reqs.append((1 + 0.1 * i, 2500.0, f"e{i}", True, 2000.0, None))
    for n in range(9):
        for i in range(4):
            reqs.append((10 + 10 * n + i, 400.0, f"e{i}", False, None, None))
    reqs.append((50.5, 3.0, "", False, None, "throttled"))
    target: dict[str, object] = {
        "url": "http://127.0.0.1:9",
        "transport": "lambda",
        "function": "agent",
    }
    if memory:
        target["memory_mb"] = 512
    return _run(path, target, reqs, sessions=10)


def pods_run(path: Path) -> Path:
    reqs = [
        (2 + 4.5 * k, 1000.0, "ab"[k % 2], k < 2, 1500.0 if k < 2 else None, None)
        for k in range(20)
    ]
    return _run(path, {"url": "http://127.0.0.1:9", "transport": "http"}, reqs, sessions=10)


def test_lambda_run_priced_as_computed_by_hand(tmp_path: Path) -> None:
    run = load_run(lambda_run(tmp_path / "lam"))
    estimate = cost_estimate(run, load_prices())
    usage = estimate.usage
    assert (usage.platform, usage.invocations, usage.cold_starts) == ("lambda", 40, 4)
    assert usage.compute_s == pytest.approx(16.4)
    assert usage.init_s == pytest.approx(8.0)
    assert usage.memory_mb == 512
    lam = estimate.model("lambda")
    assert lam.basis == "measured"
    assert lam.compute_usd == pytest.approx(40 * 0.0000002 + (8.2 + 4.0) * GB_S, rel=1e-9)
    shared = 40 * 0.000000125 + 20 * 0.000000625 + 40_000 * 0.0000008 + 8_000 * 0.000004
    assert lam.total_usd == pytest.approx(lam.compute_usd + shared, rel=1e-9)
    assert lam.per_1000_sessions_usd == pytest.approx(lam.total_usd / 10 * 1000)
    # A Lambda run does not tell how many pods the load needs: said, not $0.
    assert estimate.model("eks").missing and "pods=N" in estimate.model("eks").missing
    assert estimate.model("eks").total_usd is None


def test_provisioned_concurrency_charged_and_cold_starts_beyond_n(tmp_path: Path) -> None:
    run = load_run(lambda_run(tmp_path / "lam"))
    prices = load_prices().with_overrides({"provisioned_concurrency": "2"})
    pc = cost_estimate(run, prices).model("lambda_pc")
    assert pc.cold_starts == 2  # 4 environments, 2 provisioned
    expected = (
        40 * 0.0000002
        + 2 * 0.5 * 100 * 0.0000041667  # provisioned for the run's 100 s
        + 8.2 * 0.5 * 0.0000097222  # half the duration on provisioned environments
        + 8.2 * 0.5 * GB_S
        + 2 * 2.0 * 0.5 * GB_S  # INIT of the 2 beyond N
    )
    assert pc.compute_usd == pytest.approx(expected, rel=1e-9)


def test_pods_run_and_break_even(tmp_path: Path) -> None:
    lam = cost_estimate(load_run(lambda_run(tmp_path / "lam")), load_prices())
    pods = cost_estimate(load_run(pods_run(tmp_path / "pods")), load_prices())
    eks = pods.model("eks")
    assert pods.usage.pods == 2 and eks.basis == "measured"
    assert eks.compute_usd == pytest.approx((0.096 + 0.10) * 100 / 3600, rel=1e-9)
    from loadlab.analysis.cost import break_even_between

    value, _ = break_even_between(lam, pods)
    per_request = (40 * 0.0000002 + 12.2 * GB_S) / 40
    assert value == pytest.approx(0.196 * 24 / per_request, rel=1e-9)


def test_cli_prints_both_totals_and_break_even(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lam, pods = lambda_run(tmp_path / "lam"), pods_run(tmp_path / "pods")
    assert main(["cost", str(lam), str(pods)]) == 0
    out = capsys.readouterr().out
    assert "Lambda run: $0.06" in out and "pods run:" in out
    assert "break-even:" in out and "requests/day" in out
    assert main(["cost", str(lam), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["usage"]["invocations"] == 40


def test_report_has_the_cost_section(tmp_path: Path) -> None:
    out = render_run(lambda_run(tmp_path / "lam"))
    text = out.html_path.read_text()
    assert '<h2 id="cost">Cost</h2>' in text and "Lambda on-demand" in text


# -- bad input: a clear error naming what is missing, never $0 ------------------


def _write_prices(tmp_path: Path, edit: str) -> Path:
    from importlib import resources

    text = resources.files("loadlab.analysis").joinpath("prices", "aws-us-east-1.yaml").read_text()
    path = tmp_path / "prices.yaml"
    if edit == "missing":
        lines = text.splitlines()
        i = lines.index("  lambda_gb_second:")
        del lines[i : i + 4]
        text = "\n".join(lines)
    elif edit == "negative":
        text = text.replace("value: 0.0000002\n", "value: -0.0000002\n")
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("edit", "needle"), [("missing", "lambda_gb_second"), ("negative", "lambda_request")]
)
def test_bad_price_file_names_the_price(tmp_path: Path, edit: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_prices(_write_prices(tmp_path, edit))


def test_a_price_given_twice_is_refused_naming_it(tmp_path: Path) -> None:
    # yaml.safe_load kept the last of two values silently; which one was meant?
    path = _write_prices(tmp_path, "none")
    path.write_text(path.read_text() + "prices:\n  lambda_request: {value: 0}\n")
    with pytest.raises(ConfigError, match=r"(?s)not valid YAML.*duplicate key 'prices'"):
        load_prices(path)


def test_unknown_override_and_negative_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no price or assumption"):
        load_prices().with_overrides({"lambda_gbs": "1"})
    with pytest.raises(ConfigError, match="negative"):
        load_prices().with_overrides({"lambda_request": "-1"})


def test_unknown_platform(tmp_path: Path) -> None:
    path = _run(
        tmp_path / "x",
        {"url": "grpc://x", "transport": "grpc"},
        [(1, 100.0, "a", True, 1.0, None)],
        1,
    )
    with pytest.raises(ConfigError, match="unknown platform 'grpc'"):
        measured_usage(load_run(path))
    assert main(["cost", str(path)]) == 2


def test_run_without_served_requests(tmp_path: Path) -> None:
    path = _run(
        tmp_path / "x", {"transport": "lambda"}, [(1, 3.0, "", False, None, "throttled")], 1
    )
    with pytest.raises(RunDirectoryError, match="no served request"):
        measured_usage(load_run(path))


def test_lambda_run_without_memory_names_it(tmp_path: Path) -> None:
    run = load_run(lambda_run(tmp_path / "lam", memory=False))
    with pytest.raises(RunDirectoryError, match="memory size"):
        cost_estimate(run, load_prices())
    priced = cost_estimate(run, load_prices().with_overrides({"lambda_memory_mb": "512"}))
    assert priced.model("lambda").compute_usd and priced.model("lambda").compute_usd > 0
    section = cost_section(run)
    assert section.estimate is None and "lambda_memory_mb" in (section.error or "")


def test_every_shipped_price_has_a_source() -> None:
    table = load_prices()
    assert table.region == "us-east-1"
    for price in table.prices.values():
        assert price.source.startswith("https://aws.amazon.com/"), price.key
        assert math.isfinite(price.value) and price.value > 0


def test_active_cpu_model_matches_the_published_example(tmp_path: Path) -> None:
    """9.5 s invocations, 1.5 s of CPU each: the model's lines equal the hand figures
    of tests/analysis/test_cost_published.py ($49.76 and $79.37 per million)."""
    reqs: list[tuple[float, float, str, bool, float | None, str | None]] = [
        (1.0 + 10 * k, 9500.0, "e0", False, None, None) for k in range(10)
    ]
    run = load_run(_run(tmp_path / "r", {"transport": "lambda", "memory_mb": 512}, reqs, 10))
    estimate = cost_estimate(run, load_prices())
    active = estimate.model("active_cpu").compute_usd
    assert active is not None and round(active / 10 * 1e6, 2) == 49.76
    lam = estimate.model("lambda").compute_usd
    assert lam is not None and round(lam / 10 * 1e6, 2) == 79.37
