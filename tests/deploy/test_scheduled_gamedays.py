"""Scheduled game days outside Kubernetes: the GitHub Actions schedule and the AWS
one (EventBridge Scheduler → CodeBuild) say what their comments promise.

actionlint runs on the workflow in tests/test_ci_examples.py (every
deploy/ci/github-*.yml); here: its schedule, its command line and its upload.
The CloudFormation templates under deploy/ pass cfn-lint (in the dev lock), and
the build's ``loadlab`` command parses with loadlab's own argument parser for
every experiment the template offers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_ci_examples import loadlab_commands, parse  # tests/test_ci_examples.py

from loadlab.app.scenarios import resolve_experiment_path

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "deploy" / "ci" / "github-scheduled-gameday.yml"
AWS_TEMPLATE = REPO / "deploy" / "aws" / "gameday-schedule.yaml"
TEMPLATES = (AWS_TEMPLATE, REPO / "deploy" / "lambda" / "template.yaml")
VENV_BIN = Path(sys.executable).parent


def _shipped(experiment: str) -> bool:
    path = resolve_experiment_path(Path(experiment))
    return path.is_file() and path.suffix == ".json"


# --- GitHub Actions -------------------------------------------------------------


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_the_workflow_runs_on_a_schedule_and_on_demand(workflow: dict[str, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # PyYAML reads `on` as True
    assert set(triggers) == {"schedule", "workflow_dispatch"}, "no push or pull_request"
    (cron,) = [entry["cron"] for entry in triggers["schedule"]]
    assert len(cron.split()) == 5, cron
    default = triggers["workflow_dispatch"]["inputs"]["experiment"]["default"]
    assert _shipped(default), default
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["permissions"] == {"contents": "read"}


def test_the_game_day_step_and_the_upload(workflow: dict[str, Any]) -> None:
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    calls = [(i, argv) for i, s in enumerate(steps) for argv in loadlab_commands(s.get("run", ""))]
    ((index, argv),) = calls
    step = steps[index]
    args = parse(argv, WORKFLOW.name)
    assert args.command == "gameday"
    assert args.target == "$LOADLAB_TARGET_URL", "against the staging target"
    # The experiment comes from the input, else the scheduled default: both shipped.
    fallback = re.fullmatch(
        r"\$\{\{ inputs\.experiment \|\| '([\w.-]+)' \}\}", step["env"]["EXPERIMENT"]
    )
    assert fallback and _shipped(fallback.group(1)), step["env"]["EXPERIMENT"]
    assert args.experiment == Path("$EXPERIMENT")
    for later in steps[index + 1 :]:
        assert later.get("if") == "always()", f"{later.get('name')} needs if: always()"
    (upload,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    run_dir = str(args.run_dir).replace("$RUN_DIR", job["env"]["RUN_DIR"])
    assert upload["with"]["path"].rstrip("/") == run_dir, "the whole run directory is uploaded"


def test_secrets_stay_in_the_environment(workflow: dict[str, Any]) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    for secret in ("LOADLAB_TARGET_URL", "LOADLAB_JWT_SECRET", "LOADLAB_KUBECONFIG"):
        assert f"${{{{ secrets.{secret} }}}}" in text, secret
    (job,) = workflow["jobs"].values()
    scripts = [s["run"] for s in job["steps"] if "run" in s]
    for script in scripts:
        assert "secrets." not in script and "set -x" not in script
        for line in script.splitlines():
            if line.strip().startswith("echo"):
                assert not re.search(r"\$\{?LOADLAB_(JWT_SECRET|KUBECONFIG)\b", line), line
    assert any('rm -f "$RUNNER_TEMP/kubeconfig"' in s for s in scripts), "kubeconfig left behind"


# --- AWS: EventBridge Scheduler → CodeBuild ---------------------------------------


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, ...) read as plain values."""


_CloudFormationLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: {
        f"Fn::{suffix}": (
            loader.construct_scalar(node)
            if isinstance(node, yaml.ScalarNode)
            else loader.construct_sequence(node)
            if isinstance(node, yaml.SequenceNode)
            else loader.construct_mapping(node)
        )
    },
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(AWS_TEMPLATE.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)


def cfn_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    binary = VENV_BIN / "cfn-lint"
    if not binary.exists():
        pytest.fail(f"cfn-lint is not installed in {VENV_BIN}: run scripts/bootstrap")
    return subprocess.run(
        [str(binary), "--format", "parseable", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_cloudformation_templates_pass_cfn_lint() -> None:
    result = cfn_lint(*TEMPLATES)
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, f"cfn-lint:\n{findings}"


BROKEN_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Schedule:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: rate(1 day)
      FlexibleTimeWindow:
        Mode: SOMETIMES
      Target:
        Arn: !GetAtt Nowhere.Arn
"""


def test_cfn_lint_reports_a_broken_template(tmp_path: Path) -> None:
    """The lint test can fail: a bad enum value, a missing property, a dangling GetAtt."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_TEMPLATE, encoding="utf-8")
    result = cfn_lint(broken)
    assert result.returncode != 0, result.stdout
    assert "SOMETIMES" in result.stdout
    assert "RoleArn" in result.stdout
    assert "Nowhere" in result.stdout


def _resource(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]
    return found


def test_the_schedule_starts_one_build_and_never_retries(template: dict[str, Any]) -> None:
    schedule = _resource(template, "AWS::Scheduler::Schedule")
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert schedule["Target"]["Arn"]["Fn::Sub"].endswith(":aws-sdk:codebuild:startBuild")
    project = _resource(template, "AWS::CodeBuild::Project")
    assert project["ConcurrentBuildLimit"] == 1, "one game day at a time"
    assert 0 < project["TimeoutInMinutes"] <= 60
    variables = {v["Name"]: v for v in project["Environment"]["EnvironmentVariables"]}
    assert variables["LOADLAB_JWT_SECRET"]["Type"] == "SECRETS_MANAGER"


def test_the_build_runs_a_loadlab_game_day_and_keeps_its_run_directory(
    template: dict[str, Any],
) -> None:
    project = _resource(template, "AWS::CodeBuild::Project")
    buildspec = yaml.safe_load(project["Source"]["BuildSpec"])
    user = buildspec["run-as"]
    assert f"--create-home --home-dir /home/{user} {user}" in (REPO / "Dockerfile").read_text()
    script = "\n".join(buildspec["phases"]["build"]["commands"])
    (argv,) = loadlab_commands(script)
    experiments = template["Parameters"]["Experiment"]["AllowedValues"]
    assert template["Parameters"]["Experiment"]["Default"] in experiments
    for experiment in experiments:
        args = parse([a.replace("$EXPERIMENT", experiment) for a in argv], AWS_TEMPLATE.name)
        assert args.command == "gameday"
        assert _shipped(str(args.experiment)), experiment
        assert args.target == "$LOADLAB_TARGET_URL"
        assert str(args.run_dir) == buildspec["artifacts"]["base-directory"]
    assert buildspec["artifacts"]["files"] == ["**/*"]


def test_the_build_may_fault_the_one_function_only(template: dict[str, Any]) -> None:
    roles = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
        and r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"]
        == "codebuild.amazonaws.com"
    ]
    (build_role,) = roles
    statements = [s for p in build_role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in a for a in actions), statement
        if any(a.startswith("lambda:") for a in actions):
            assert statement["Resource"]["Fn::Sub"].endswith(":function:${FunctionName}")
        if statement["Resource"] == "*":
            assert all(
                a.startswith(("ecr:GetAuthorizationToken", "cloudwatch:")) for a in actions
            ), statement
