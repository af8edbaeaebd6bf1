"""Packs the scenarios (`scenarios/*.yaml`), experiments and plans (`chaos/`) into the wheel.

Everything else about the package lives in pyproject.toml. The folders stay
at the top of the repository (where users and docs point), and a built wheel
carries a copy of them as ``loadlab/_data/scenarios`` and ``loadlab/_data/chaos``,
which :mod:`loadlab.app.scenarios` falls back to when a name is not found on disk.
MANIFEST.in puts the same files in the sdist, so a wheel built from it has them too.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# (top-level folder, file pattern): what ships as loadlab/_data/<folder>/.
SHIPPED = (("scenarios", "*.yaml"), ("chaos", "*.json"), ("chaos/plans", "*.yaml"))


class BuildPyWithData(build_py):
    """build_py, then a copy of the shipped scenarios and experiments into the build."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads the top-level folders themselves
        for folder, pattern in SHIPPED:
            sources = sorted((ROOT / folder).glob(pattern))
            if not sources:
                raise SystemExit(f"setup.py: no {folder}/{pattern} to ship in the wheel")
            target = Path(self.build_lib) / "loadlab" / "_data" / folder
            self.mkpath(str(target))
            for source in sources:
                self.copy_file(str(source), str(target / source.name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        if self.editable_mode:
            return super().get_outputs(include_bytecode)
        shipped = [
            str(Path(self.build_lib) / "loadlab" / "_data" / folder / source.name)
            for folder, pattern in SHIPPED
            for source in sorted((ROOT / folder).glob(pattern))
        ]
        return [*super().get_outputs(include_bytecode), *shipped]


setup(cmdclass={"build_py": BuildPyWithData})
