"""The CI examples users copy (deploy/ci/) stay valid.

* ``github-actions.yml`` passes actionlint, with shellcheck on its ``run:`` scripts
  (both installed from requirements/dev.lock by scripts/bootstrap);
* ``gitlab-ci.yml`` has the structure GitLab needs for the jobs to run and to keep
  their reports (stages, scripts, ``artifacts: reports: junit`` and ``when: always``);
* every ``loadlab ...`` command line in either file parses with loadlab's own
  argument parser, so renaming a flag breaks this test before it breaks a pipeline.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadlab.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
CI_DIR = ROOT / "deploy" / "ci"
GITHUB = CI_DIR / "github-actions.yml"
GITLAB = CI_DIR / "gitlab-ci.yml"
VENV_BIN = Path(sys.executable).parent

# The files of a run directory each example keeps, whatever the outcome.
REPORT_FILES = ("junit.xml", "report.html", "summary.json", "summary.md")

# `loadlab` (or `.venv/bin/loadlab`) in command position: first on a line, or after
# a shell operator or a `then`/`do`/`else`.
LOADLAB_CALL = re.compile(r"(?:^|[;&|(]|\b(?:then|do|else)\b)\s*(?:\S*/)?loadlab(?=\s)")


def _tool(name: str) -> Path:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {VENV_BIN}: run scripts/bootstrap")
    return path


def actionlint(workflow: Path) -> subprocess.CompletedProcess[str]:
    """actionlint on one file; shellcheck from the venv, so the result is the same
    on every machine whatever else is on PATH (no pyflakes: no Python ``run:``)."""
    return subprocess.run(
        [
            str(_tool("actionlint")),
            "-no-color",
            "-oneline",
            f"-shellcheck={_tool('shellcheck')}",
            "-pyflakes=",
            str(workflow),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=workflow.parent,
        check=False,
    )


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def _github_scripts(doc: dict[str, Any]) -> list[str]:
    return [
        step["run"]
        for job in doc["jobs"].values()
        for step in job.get("steps", [])
        if isinstance(step.get("run"), str)
    ]


GITLAB_RESERVED = {
    "stages",
    "default",
    "variables",
    "include",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
}


def _gitlab_jobs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: job
        for name, job in doc.items()
        if name not in GITLAB_RESERVED and not name.startswith(".") and isinstance(job, dict)
    }


def _gitlab_scripts(doc: dict[str, Any]) -> list[str]:
    scripts: list[str] = []
    sections = [doc.get("default", {}), *_gitlab_jobs(doc).values()]
    for section in sections:
        for key in ("before_script", "script", "after_script"):
            lines = section.get(key, [])
            scripts.extend([lines] if isinstance(lines, str) else lines)
    return scripts


def loadlab_commands(script: str) -> list[list[str]]:
    """The argument lists of every ``loadlab`` call in a shell script.

    Continuation lines are joined; a call ends at the first shell operator
    (``||``, ``&&``, ``;``, ``|``, a redirection). ``.venv/bin/`` is dropped, and
    ``"$VAR"`` stays a literal word, which the parser takes like any value.
    """
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        for match in LOADLAB_CALL.finditer(line):
            lexer = shlex.shlex(line[match.end() :], posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            argv = []
            for token in lexer:
                if token and all(c in lexer.punctuation_chars for c in token):
                    break
                argv.append(token)
            commands.append(argv)
    return commands


def _all_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path, scripts in (
        (GITHUB, _github_scripts(_load(GITHUB))),
        (GITLAB, _gitlab_scripts(_load(GITLAB))),
    ):
        for script in scripts:
            found.extend((path.name, argv) for argv in loadlab_commands(script))
    return found


def _flags(command: str) -> set[str]:
    """The exact option strings of ``loadlab COMMAND``."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices[command]._option_string_actions)


def parse(argv: list[str], source: str = "") -> argparse.Namespace:
    """``argv`` as loadlab parses it; a flag must be spelled in full, since argparse
    would take ``--run-dir`` as an abbreviation of a flag renamed ``--run-directory``."""
    where = f"{source}: `loadlab {shlex.join(argv)}`"
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{where} does not parse (exit {exc.code})")
    known = _flags(args.command)
    for token in argv:
        flag = token.split("=", 1)[0]
        if flag.startswith("--"):
            assert flag in known, f"{where}: {flag} is not a flag of `loadlab {args.command}`"
    return args


# --- GitHub Actions ---------------------------------------------------------------


# github-actions.yml, and the scheduled game day (its structure: tests/deploy).
GITHUB_WORKFLOWS = sorted(CI_DIR.glob("github-*.yml"))


@pytest.mark.parametrize("workflow", GITHUB_WORKFLOWS, ids=lambda p: p.name)
def test_github_workflow_passes_actionlint(workflow: Path) -> None:
    result = actionlint(workflow)
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, f"actionlint on {workflow}:\n{findings}"


BROKEN_WORKFLOW = """\
name: broken
on:
  push:
  pull_request_typo:
jobs:
  smoke:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v5
      - run: echo "${{ github.event.pull_request.title }}"
      - run: .venv/bin/loadlab run scenarios/ci_smoke.yaml --run-dir $RUN_DIR
        if: ${{ steps.nope.outputs.status == 'ok' }}
"""


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    """The lint test above can fail: a bad event, script injection, an unquoted
    variable (shellcheck) and an unknown step are each a finding."""
    workflow = tmp_path / "broken.yml"
    workflow.write_text(BROKEN_WORKFLOW, encoding="utf-8")
    result = actionlint(workflow)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "pull_request_typo" in out
    assert "github.event.pull_request.title" in out  # untrusted input in a script
    assert "SC2086" in out  # shellcheck ran: $RUN_DIR unquoted
    assert "steps.nope" in out or '"nope"' in out


def test_github_workflow_structure() -> None:
    doc = _load(GITHUB)
    # PyYAML reads the bare key `on` as the boolean True.
    triggers = doc.get("on", doc.get(True))
    assert {"push", "pull_request", "workflow_dispatch"} <= set(triggers)
    jobs = doc["jobs"]
    assert len(jobs) >= 2, "a smoke job against the target and a game day job"
    subcommands = sorted(
        argv[0] for script in _github_scripts(doc) for argv in loadlab_commands(script)
    )
    assert subcommands == ["gameday", "run"], subcommands
    for name, job in jobs.items():
        steps = job["steps"]
        uses = [s["uses"] for s in steps if "uses" in s]
        assert any(u.startswith("actions/checkout@") for u in uses), name
        setup = [s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python@")]
        assert setup and str(setup[0]["with"]["python-version"]) == "3.11", name
        assert any(s.get("run", "").strip() == "scripts/bootstrap" for s in steps), name
        for use in uses:
            assert re.search(r"@v\d+(\.\d+)*$", use), (
                f"{name}: {use} is not pinned to a version tag"
            )
        # Everything after the load runs whatever its outcome.
        load_index = next(i for i, s in enumerate(steps) if loadlab_commands(str(s.get("run", ""))))
        for step in steps[load_index + 1 :]:
            assert step.get("if") == "always()", f"{name}: {step.get('name')} needs if: always()"
        after = steps[load_index + 1 :]
        uploads = [
            s for s in after if str(s.get("uses", "")).startswith("actions/upload-artifact@")
        ]
        assert uploads, f"{name}: no artifact upload"
        uploaded = uploads[0]["with"]["path"].split()
        # The run directory the command writes is the one whose files are uploaded.
        (argv,) = [a for s in _github_scripts({"jobs": {name: job}}) for a in loadlab_commands(s)]
        written = str(parse(argv, name).run_dir)
        written = written.replace("$RUN_DIR", job.get("env", {}).get("RUN_DIR", ""))
        assert all(f"{written}/{f}" in uploaded for f in REPORT_FILES), (name, uploaded)
        assert any(
            str(s.get("uses", "")).startswith(
                ("mikepenz/action-junit-report@", "dorny/test-reporter@")
            )
            for s in after
        ), f"{name}: junit.xml is not published"
        assert any("$GITHUB_STEP_SUMMARY" in str(s.get("run", "")) for s in after), name
    gameday_uploads = [
        s["with"]["path"]
        for job in jobs.values()
        for s in job["steps"]
        if "journal.json" in str(s.get("with", {}).get("path", ""))
    ]
    assert gameday_uploads, "the game day's journal.json is not uploaded"


def test_github_secrets_reach_the_load_only_through_its_environment() -> None:
    text = GITHUB.read_text(encoding="utf-8")
    doc = _load(GITHUB)
    for secret in ("LOADLAB_TARGET_URL", "LOADLAB_JWT_SECRET", "LOADLAB_OPENAI_API_KEY"):
        assert f"${{{{ secrets.{secret} }}}}" in text, secret
    for script in _github_scripts(doc):
        assert "secrets." not in script, "a secret expanded into a script (it would be logged)"
        assert "set -x" not in script
        for line in script.splitlines():
            if line.strip().startswith("echo"):
                assert not re.search(r"\$\{?LOADLAB_(JWT_SECRET|OPENAI_API_KEY)", line), line


# --- GitLab CI -------------------------------------------------------------------


def test_gitlab_ci_structure() -> None:
    doc = _load(GITLAB)
    stages = doc["stages"]
    jobs = _gitlab_jobs(doc)
    assert len(jobs) >= 2, jobs.keys()
    assert "scripts/bootstrap" in _gitlab_scripts({"default": doc.get("default", {})}) or all(
        "scripts/bootstrap" in job.get("before_script", []) for job in jobs.values()
    )
    subcommands = []
    for name, job in jobs.items():
        assert job.get("stage") in stages, f"{name}: stage {job.get('stage')!r} not in {stages}"
        script = job["script"]
        assert isinstance(script, list) and all(isinstance(line, str) for line in script), name
        calls = [argv for line in script for argv in loadlab_commands(line)]
        assert len(calls) == 1, f"{name}: {calls}"
        subcommands.append(calls[0][0])
        artifacts = job["artifacts"]
        assert artifacts["when"] == "always", name
        junit = artifacts["reports"]["junit"]
        assert isinstance(junit, str) and junit.endswith("/junit.xml"), name
        run_dir = junit.rsplit("/", 1)[0]
        assert all(f"{run_dir}/{f}" in artifacts["paths"] for f in REPORT_FILES), name
        if calls[0][0] == "gameday":
            assert f"{run_dir}/journal.json" in artifacts["paths"], name
        # The run directory the command writes is the one whose files are kept.
        args = parse(calls[0], name)
        written = str(args.run_dir).replace("$RUN_DIR", job.get("variables", {}).get("RUN_DIR", ""))
        assert written == run_dir, f"{name}: writes {written}, keeps {run_dir}"
    assert sorted(subcommands) == ["gameday", "run"]


# --- loadlab command lines, both files --------------------------------------------


def test_examples_call_loadlab() -> None:
    found = _all_commands()
    files = {name for name, _ in found}
    assert files == {GITHUB.name, GITLAB.name}, found


@pytest.mark.parametrize(
    "source, argv", _all_commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v)
)
def test_loadlab_command_parses(source: str, argv: list[str]) -> None:
    args = parse(argv, source)
    assert args.command == argv[0]
    # the command's options object builds from them, once the shell has expanded the URL
    url = "https://agent.example.com"
    expanded = parse([a.replace("$LOADLAB_TARGET_URL", url) for a in argv], source)
    expanded.options(expanded)
    assert args.run_dir is not None, f"{source}: give --run-dir so the uploads find the files"
    if args.command == "run":
        assert args.target == "$LOADLAB_TARGET_URL", "the smoke load targets the secret URL"
        assert (ROOT / args.scenario).is_file(), args.scenario
    if args.command == "gameday":
        assert args.target is None, "the game day runs against the embedded stack"
        assert (ROOT / args.experiment).is_file(), args.experiment


def test_a_renamed_flag_does_not_parse(capsys: pytest.CaptureFixture[str]) -> None:
    """What test_loadlab_command_parses relies on: an unknown flag is an error."""
    argv = loadlab_commands(
        '.venv/bin/loadlab run scenarios/ci_smoke.yaml --target-url "$X" --run-dir runs/ci || true'
    )[0]
    assert argv == ["run", "scenarios/ci_smoke.yaml", "--target-url", "$X", "--run-dir", "runs/ci"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert "--target-url" in capsys.readouterr().err


def test_an_abbreviated_flag_is_caught() -> None:
    """argparse accepts ``--run-d`` for ``--run-dir``; the examples must not rely on it."""
    argv = ["run", "scenarios/ci_smoke.yaml", "--run-d", "runs/ci"]
    assert build_parser().parse_args(argv).run_dir is not None
    with pytest.raises(AssertionError, match="--run-d is not a flag"):
        parse(argv)


def test_command_extraction() -> None:
    script = (
        "status=0\n"
        '.venv/bin/loadlab run s.yaml --target "$U" \\\n'
        "  --run-dir runs/ci || status=$?\n"
        "echo loadlab done; loadlab report runs/ci>out.txt\n"
        "cat runs/loadlab/x\n"
    )
    assert loadlab_commands(script) == [
        ["run", "s.yaml", "--target", "$U", "--run-dir", "runs/ci"],
        ["report", "runs/ci"],
    ]
