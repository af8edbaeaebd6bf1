"""Find a scenario or experiment file: a path as given, else a name among the shipped ones.

Names are looked up in the checkout's top-level ``scenarios/`` and ``chaos/``
folders, then in the copies a built wheel carries as ``loadlab/_data/scenarios``
and ``loadlab/_data/chaos`` (setup.py puts them there), so ``loadlab run demo``
works from a git checkout and from an installed wheel alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from loadlab.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parents[1]
_CHECKOUT = _PACKAGE.parent
PACKAGED_DATA = _PACKAGE / "_data"


def _folders(name: str) -> tuple[Path, ...]:
    # An installed wheel sits in site-packages, whose own `scenarios/` (if any) is not ours.
    in_checkout = (_CHECKOUT / "pyproject.toml").is_file()
    return (*((_CHECKOUT / name,) if in_checkout else ()), PACKAGED_DATA / name)


SCENARIO_FOLDERS = _folders("scenarios")
EXPERIMENT_FOLDERS = _folders("chaos")


def _find(name: str, folders: Sequence[Path], suffix: str) -> Path | None:
    path = Path(name)
    if path.is_file():
        return path
    for folder in folders:
        candidates = [folder / name, folder / f"{name}{suffix}", folder / path.name]
        if len(path.parts) > 1 and path.parts[0] == folder.name:
            # chaos/plans/nightly.yaml: the same place under the folder, wherever it is
            candidates.append(folder.joinpath(*path.parts[1:]))
        for candidate in candidates:
            if candidate.is_file():
                return candidate
    return None


def _known(folders: Sequence[Path], suffix: str) -> str:
    names = {p.stem for folder in folders for p in folder.glob(f"*{suffix}")}
    return ", ".join(sorted(names)) or "(none installed)"


def resolve_scenario_path(name: str, *, folders: Sequence[Path] = SCENARIO_FOLDERS) -> Path:
    """The scenario file ``name`` names: a path, else ``NAME`` or ``NAME.yaml`` in ``folders``.

    A relative path that does not exist here (``scenarios/demo.yaml`` from
    another working directory) is looked up in ``folders`` by its file name.
    """
    found = _find(name, folders, ".yaml")
    if found is None:
        raise ConfigError(
            f"scenario file {name!r} not found",
            hint=f"pass a path to a scenario YAML file, or one of: {_known(folders, '.yaml')}",
        )
    return found


def resolve_experiment_path(
    experiment: Path, *, folders: Sequence[Path] = EXPERIMENT_FOLDERS
) -> Path:
    """The experiment file ``experiment`` names: a path, else ``NAME[.json]`` in ``folders``.

    ``chaos/pod-kill-mid-session.json`` from another working directory, or
    ``pod-kill-mid-session``, finds the shipped experiment (and
    ``chaos/plans/nightly.yaml`` the shipped game-day plan). A name found nowhere
    is returned as given, so reading it reports the missing file.
    """
    return _find(str(experiment), folders, ".json") or experiment
