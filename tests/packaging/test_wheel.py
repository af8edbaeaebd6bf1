"""The built wheel works outside the checkout: scenarios and experiments ship inside it.

One module-scoped fixture builds the sdist and the wheel (the wheel from the
sdist, as ``uv build`` does, so MANIFEST.in is tested too), installs the wheel
into a fresh virtual environment with the locked versions (requirements/dev.lock
as constraints: the dev tools are not installed), and every test runs that
environment's ``loadlab`` from an empty directory that is not the checkout.

Wall time on a 2-core machine: about 40 s, most of it the embedded flash sale;
building and installing take a few seconds with uv's cache warm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "dev.lock"
MINISTACK = REPO / ".venv-ministack" / "bin" / "ministack"
SCENARIOS = sorted(p.name for p in (REPO / "scenarios").glob("*.yaml"))
EXPERIMENTS = sorted(p.name for p in (REPO / "chaos").glob("*.json"))
PLANS = sorted(p.name for p in (REPO / "chaos" / "plans").glob("*.yaml"))


def _uv() -> list[str]:
    """uv as scripts/bootstrap installed it (a module of the base interpreter), else on PATH."""
    base = getattr(sys, "_base_executable", sys.executable)
    probe = subprocess.run([base, "-m", "uv", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [base, "-m", "uv"]
    on_path = shutil.which("uv")
    if on_path is None:
        pytest.fail("uv not found (neither `python -m uv` nor on PATH): run scripts/bootstrap")
    return [on_path]


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180):
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited {result.returncode}\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}"
    )
    return result


class Installed:
    """A wheel installed into a fresh venv, and an empty working directory."""

    def __init__(self, wheel: Path, venv: Path, workdir: Path) -> None:
        self.wheel = wheel
        self.venv = venv
        self.workdir = workdir
        self.site_packages = next(venv.glob("lib/python3.*/site-packages"))

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        # Outside the checkout ministack is found by this variable (or on PATH), as in the image.
        env["LOADLAB_MINISTACK_BIN"] = str(MINISTACK)
        return env

    def loadlab(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return _run(
            [str(self.venv / "bin" / "loadlab"), *args],
            cwd=self.workdir,
            env=self.env(),
            timeout=timeout,
        )

    def python(self, code: str) -> str:
        argv = [str(self.venv / "bin" / "python"), "-c", code]
        return _run(argv, cwd=self.workdir, env=self.env()).stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    uv = _uv()
    dist = root / "dist"
    _run([*uv, "build", "--quiet", "--out-dir", str(dist), str(REPO)], cwd=root)
    (wheel,) = dist.glob("loadlab-*.whl")
    venv = root / "venv"
    _run([*uv, "venv", "--quiet", "-p", sys.executable, str(venv)], cwd=root)
    _run(
        [
            *uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
            "--constraint", str(LOCK), str(wheel),
        ],
        cwd=root,
    )  # fmt: skip
    workdir = root / "elsewhere"
    workdir.mkdir()
    return Installed(wheel, venv, workdir)


def test_the_wheel_carries_every_scenario_and_experiment(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for name in SCENARIOS:
        assert f"loadlab/_data/scenarios/{name}" in names, name
    for name in EXPERIMENTS:
        assert f"loadlab/_data/chaos/{name}" in names, name
    for name in PLANS:
        assert f"loadlab/_data/chaos/plans/{name}" in names, name
    assert not any(n.startswith(("scenarios/", "chaos/")) for n in names), "top-level data"


def test_the_installed_command_runs_from_elsewhere(installed: Installed) -> None:
    assert installed.loadlab("--version").stdout.startswith("loadlab ")
    assert "--embedded" in installed.loadlab("run", "--help").stdout
    assert not (installed.workdir / "scenarios").exists()


def test_names_resolve_to_the_installed_package_data(installed: Installed) -> None:
    """Every shipped scenario loads and every shipped experiment reads, by name and
    by its checkout-relative path, from inside site-packages."""
    out = installed.python(
        "import json\n"
        "from pathlib import Path\n"
        "from loadlab.app.gameday import load_experiment\n"
        "from loadlab.app.scenarios import resolve_experiment_path, resolve_scenario_path\n"
        "from loadlab.scenario import load_scenario\n"
        f"scenarios = {[n.removesuffix('.yaml') for n in SCENARIOS]!r}\n"
        f"experiments = {[n.removesuffix('.json') for n in EXPERIMENTS]!r}\n"
        "found = {}\n"
        "for name in scenarios:\n"
        "    path = resolve_scenario_path(name)\n"
        "    assert path == resolve_scenario_path(f'scenarios/{name}.yaml')\n"
        "    load_scenario(path)\n"
        "    found[name] = str(path.resolve())\n"
        "for name in experiments:\n"
        "    path = resolve_experiment_path(Path(name))\n"
        "    assert path == resolve_experiment_path(Path(f'chaos/{name}.json'))\n"
        "    load_experiment(path)\n"
        "    found[name] = str(path.resolve())\n"
        "print(json.dumps(found))\n"
    )
    found = json.loads(out)
    assert len(found) == len(SCENARIOS) + len(EXPERIMENTS)
    data = installed.site_packages.resolve() / "loadlab" / "_data"
    for name, path in found.items():
        assert Path(path).is_relative_to(data), (name, path)


def test_shipped_plans_find_their_experiments_inside_the_wheel(installed: Installed) -> None:
    """A plan names its experiments relative to itself (../pod-kill-mid-session.json)."""
    assert PLANS
    out = installed.python(
        "import json\n"
        "from pathlib import Path\n"
        "from loadlab.app.scenarios import resolve_experiment_path\n"
        f"plans = {PLANS!r}\n"
        "print(json.dumps([str(resolve_experiment_path(Path('chaos/plans', p)).resolve())"
        " for p in plans]))\n"
    )
    data = installed.site_packages.resolve() / "loadlab" / "_data"
    for path in map(Path, json.loads(out)):
        assert path.is_relative_to(data / "chaos" / "plans"), path
        plan = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in plan["experiments"]:
            relative = entry if isinstance(entry, str) else entry["path"]
            assert (path.parent / relative).resolve().is_file(), (path.name, relative)


def test_an_unknown_scenario_names_the_shipped_ones(installed: Installed) -> None:
    result = subprocess.run(
        [str(installed.venv / "bin" / "loadlab"), "run", "no-such-sale", "--embedded"],
        cwd=installed.workdir,
        env=installed.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "'no-such-sale' not found" in result.stderr
    assert "demo, flash_sale" in result.stderr


@pytest.mark.skipif(not MINISTACK.exists(), reason="needs .venv-ministack (scripts/bootstrap)")
def test_loadlab_run_demo_embedded_from_the_wheel(installed: Installed) -> None:
    """The real thing: the demo scenario, squeezed to a few seconds, against the stack."""
    result = installed.loadlab(
        "run", "demo", "--embedded", "--users", "6", "--time-scale", "0.1",
        "--replicas", "2", "--run-dir", "runs/demo", "--state-dir", "state",
        timeout=150,
    )  # fmt: skip
    run_dir = installed.workdir / "runs" / "demo"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    scenario_path = Path(manifest["scenario_path"]).resolve()
    assert scenario_path.is_relative_to(installed.site_packages.resolve()), scenario_path
    assert scenario_path.name == "demo.yaml"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary, result.stdout
    assert (run_dir / "report.html").is_file()
