"""Scenario and experiment names resolve on disk first, then in the shipped copies.

The wheel test (test_wheel.py) checks the installed package data; these check the
lookup order with folders of the test's own, and that a checkout still finds its
top-level scenarios/ and chaos/ from any working directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loadlab.app.scenarios import (
    EXPERIMENT_FOLDERS,
    SCENARIO_FOLDERS,
    resolve_experiment_path,
    resolve_scenario_path,
)
from loadlab.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)  # not the checkout, whose chaos/ would be found as a path
    checkout, packaged = tmp_path / "checkout" / "chaos", tmp_path / "_data" / "chaos"
    for folder in (checkout, packaged, packaged / "plans"):
        folder.mkdir(parents=True)
    (checkout / "local.json").write_text("{}")
    (packaged / "local.json").write_text("{}")
    (packaged / "shipped.json").write_text("{}")
    (packaged / "plans" / "nightly.yaml").write_text("name: nightly\n")
    return checkout, packaged


def test_the_checkout_comes_first_then_the_shipped_copy(folders: tuple[Path, Path]) -> None:
    checkout, packaged = folders
    assert resolve_experiment_path(Path("local"), folders=folders) == checkout / "local.json"
    assert resolve_experiment_path(Path("shipped"), folders=folders) == packaged / "shipped.json"
    assert (
        resolve_experiment_path(Path("chaos/shipped.json"), folders=folders)
        == packaged / "shipped.json"
    )


def test_a_path_under_the_folder_keeps_its_subfolder(folders: tuple[Path, Path]) -> None:
    _, packaged = folders
    found = resolve_experiment_path(Path("chaos/plans/nightly.yaml"), folders=folders)
    assert found == packaged / "plans" / "nightly.yaml"


def test_an_existing_path_wins(folders: tuple[Path, Path], tmp_path: Path) -> None:
    mine = tmp_path / "shipped.json"
    mine.write_text("{}")
    assert resolve_experiment_path(mine, folders=folders) == mine


def test_an_unknown_experiment_comes_back_as_given(folders: tuple[Path, Path]) -> None:
    """Reading it then reports the missing file (gameday.load_experiment)."""
    assert resolve_experiment_path(Path("nope.json"), folders=folders) == Path("nope.json")


def test_an_unknown_scenario_lists_the_names_of_every_folder(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "demo.yaml").write_text("")
    (second / "flash_sale.yaml").write_text("")
    assert (
        resolve_scenario_path("flash_sale", folders=(first, second)) == second / "flash_sale.yaml"
    )
    with pytest.raises(ConfigError, match="'sale' not found") as caught:
        resolve_scenario_path("sale", folders=(first, second))
    assert caught.value.hint is not None and "demo, flash_sale" in caught.value.hint


def test_a_checkout_finds_its_own_folders_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SCENARIO_FOLDERS[0] == REPO / "scenarios"
    assert EXPERIMENT_FOLDERS[0] == REPO / "chaos"
    monkeypatch.chdir(tmp_path)
    assert resolve_scenario_path("scenarios/demo.yaml") == REPO / "scenarios" / "demo.yaml"
    assert (
        resolve_experiment_path(Path("pod-kill-mid-session"))
        == REPO / "chaos" / "pod-kill-mid-session.json"
    )
