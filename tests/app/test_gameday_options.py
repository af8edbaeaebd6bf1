"""``loadlab gameday``: what it passes on to ``chaos run``, which scenario it picks, warnings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from stack_states import state

from loadlab.app.gameday import capacity_warning, experiment_scenario
from loadlab.app.options import ChaosRunOptions
from loadlab.cli import build_parser, main
from loadlab.embedded.state import LambdaFunctionState, StackState
from loadlab.scenario import parse_scenario

REPO = Path(__file__).resolve().parents[2]


def test_chaos_toolkit_flags_are_passed_on_in_order() -> None:
    args = build_parser().parse_args(
        [
            "gameday", "x.json", "--var", "strike_at_stake:int=4", "--var", "scenario=a.yaml",
            "--var-file", "vars.env", "--dry", "actions", "--hypothesis-strategy",
            "continuously", "--hypothesis-frequency", "2", "--fail-fast",
            "--rollback-strategy", "deviated",
        ]
    )  # fmt: skip
    options = args.options(args)
    assert options.chaos.argv() == [
        "--rollback-strategy", "deviated", "--var", "strike_at_stake:int=4",
        "--var", "scenario=a.yaml", "--var-file", "vars.env", "--dry", "actions",
        "--hypothesis-strategy", "continuously", "--hypothesis-frequency", "2", "--fail-fast",
    ]  # fmt: skip
    assert options.chaos.variable("scenario") == "a.yaml"
    assert options.chaos.variable("strike_at_stake") == "4"
    # by default rollbacks always run: a fault is never left behind
    assert ChaosRunOptions().argv() == ["--rollback-strategy", "always"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--var", "no-equals-sign"], "--var 'no-equals-sign' is not KEY=VALUE"),
        (["--var", "n:list=1"], "--var 'n:list=1' is not KEY=VALUE"),
        (["--var-file", "missing.env"], "--var-file 'missing.env' is not a file"),
    ],
)
def test_bad_chaos_flags_exit_2_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    experiment = REPO / "chaos" / "pod-kill-mid-session.json"
    argv = ["gameday", str(experiment), *flags, "--state-dir", str(tmp_path / "state")]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "state").exists(), "no stack may start for bad flags"


def test_each_experiment_names_its_default_scenario_and_lambda_ones_fit_the_function() -> None:
    for path in sorted((REPO / "chaos").glob("*.json")):
        experiment = json.loads(path.read_text())
        name = experiment_scenario(experiment)
        assert name is not None, path.name
        assert (REPO / name).is_file(), f"{path.name}: {name} does not exist"
        if path.name.startswith("lambda-"):
            assert name == "scenarios/lambda_sale.yaml", path.name


def lambda_stack(reserved: int | None) -> StackState:
    function = LambdaFunctionState(
        function_name="agent", function_arn="arn", url=None, reserved_concurrency=reserved
    )
    return replace(state(), lambda_function=function)


def test_a_peak_above_the_functions_concurrency_is_warned_about() -> None:
    demo = parse_scenario({"name": "big", "shape": {"kind": "flash_sale", "peak_users": 150}})
    small = parse_scenario(
        {"name": "small", "shape": {"kind": "flash_sale", "baseline_users": 4, "peak_users": 8}}
    )
    warning = capacity_warning(demo, lambda_stack(8))
    assert warning is not None and "peaks at 150" in warning and "8 concurrent" in warning
    assert capacity_warning(small, lambda_stack(8)) is None
    assert capacity_warning(demo, lambda_stack(None)) is None
    assert capacity_warning(demo, None) is None
