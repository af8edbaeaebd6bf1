"""``python -m loadlab.embedded.aws_lambda`` (package) and ``lambda_capacity`` (verdicts)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from loadlab.embedded.aws_lambda.__main__ import main
from loadlab.embedded.aws_lambda.package import MANIFEST, Package
from loadlab.embedded.lambda_capacity import LevelResult
from loadlab.embedded.lambda_capacity import main as capacity_main


def test_package_prints_the_zip_and_copies_it(
    package: Package, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "build" / "agent.zip"
    code = main(["package", "--cache-dir", str(package.path.parent), "--output", str(output)])
    assert code == 0
    line = capsys.readouterr().out
    assert line.startswith(str(package.path)) and "(cached)" in line and package.key[:16] in line
    assert output.read_bytes() == package.read()
    assert MANIFEST in zipfile.ZipFile(output).namelist()


def test_measure_refuses_bad_levels(capsys: pytest.CaptureFixture[str]) -> None:
    assert capacity_main(["--levels", "4,0"]) == 2
    assert "--levels '4,0' is invalid" in capsys.readouterr().err


def level(**overrides: float) -> LevelResult:
    values: dict[str, float] = {
        "concurrency": 8,
        "cold_wall_ms": 5600,
        "cold_max_ms": 5500,
        "cold_init_ms_median": 1500,
        "warm_p50_ms": 320,
        "warm_p95_ms": 360,
        "warm_turns_per_s": 22,
        "environments": 8,
        "errors": 0,
    }
    values |= overrides
    return LevelResult(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("result", "sustained"),
    [
        (level(), True),
        (level(errors=1), False),
        (level(environments=7), False),
        (level(cold_max_ms=10_001), False),
        (level(warm_p95_ms=649), True),
        (level(warm_p95_ms=651), False),
    ],
)
def test_a_level_is_sustained_within_its_bounds(result: LevelResult, sustained: bool) -> None:
    assert result.sustained(325.0, max_slowdown=2.0, max_cold_ms=10_000) is sustained
