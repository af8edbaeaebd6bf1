"""Find a scenario file: a path as given, else a name in the project's scenarios/ folder."""

from __future__ import annotations

from pathlib import Path

from loadlab.errors import ConfigError

REPO_SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def resolve_scenario_path(name: str, *, folder: Path = REPO_SCENARIOS) -> Path:
    """The scenario file ``name`` names: a path, else ``folder/NAME`` or ``folder/NAME.yaml``.

    A relative path that does not exist here (``scenarios/demo.yaml`` from
    another working directory) is looked up in ``folder`` by its file name.
    """
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (folder / name, folder / f"{name}.yaml", folder / path.name):
        if candidate.is_file():
            return candidate
    known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
    raise ConfigError(
        f"scenario file {name!r} not found",
        hint=f"pass a path to a scenario YAML file, or one of: {known}",
    )
