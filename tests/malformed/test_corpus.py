"""Every malformed input of the corpus is a clear error: exit 2, 3 or 5, never a traceback.

The corpus (``tests/malformed/``): scenario files and experiment files written
by ``make_corpus.py`` (``expected.json`` says what each error must name), the
command lines of ``flags.txt``, and run directories built here (git keeps no
empty directory). Each item runs through the in-process CLI with a short
timeout, and must leave nothing behind: its temporary directory holds the
same files after as before, and the corpus itself is unchanged.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadlab.cli import main

HERE = Path(__file__).resolve().parent
EXPECTED: dict[str, str] = json.loads((HERE / "expected.json").read_text())
REFUSED = {2, 3, 5}  # bad input, target unreachable, bad run directory
Capture = pytest.CaptureFixture[str]


@dataclass(frozen=True)
class Item:
    """One corpus item: how to build its command line in a fresh directory, and what it names."""

    id: str
    argv: Callable[[Path], list[str]]
    names: str


def _file_item(relative: str) -> Item:
    path = HERE / relative
    if relative.startswith("scenarios/"):
        return Item(
            relative,
            lambda tmp: ["run", str(path), "--target", "http://127.0.0.1:9",
                         "--state-dir", str(tmp / "state"), "--runs-root", str(tmp / "runs")],
            EXPECTED[relative],
        )  # fmt: skip
    return Item(
        relative,
        lambda tmp: ["gameday", str(path), "--state-dir", str(tmp / "state"),
                     "--runs-root", str(tmp / "runs")],
        EXPECTED[relative],
    )  # fmt: skip


def _flag_items() -> Iterator[Item]:
    for lineno, line in enumerate((HERE / "flags.txt").read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        names, _, command = line.partition("\t")
        words = shlex.split(command)

        def argv(tmp: Path, words: list[str] = words) -> list[str]:
            (tmp / "notes.txt").write_text("not a run directory\n")
            run = _finished_run(tmp / "finished")
            places = {"{tmp}": str(tmp), "{file}": str(tmp / "notes.txt"), "{run}": str(run)}
            out = []
            for word in words:
                filled = word
                for key, value in places.items():
                    filled = filled.replace(key, value)
                out.append(filled)
            return out

        yield Item(f"flags.txt:{lineno}", argv, names)


def _finished_run(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    manifest = {"run_id": "r", "name": "finished", "started_at": 1.0, "ended_at": 2.0,
                "scenario": {}, "target": {}, "versions": {}, "seed": 1}  # fmt: skip
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def _run_dir_with_manifest(content: bytes | None) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        run = tmp / "run"
        run.mkdir()
        if content is None:
            (run / "manifest.json").mkdir()
        else:
            (run / "manifest.json").write_bytes(content)
        return run

    return build


MANIFESTS: dict[str, tuple[bytes | None, str]] = {
    "binary": (bytes(range(256)), "is not valid JSON"),
    "utf16": (json.dumps({"name": "x"}).encode("utf-16"), "is not valid JSON"),
    "directory": (None, "cannot be read"),
    "list": (b"[1, 2]", "does not hold a JSON object"),
    "deep": (b"[" * 20_000 + b"]" * 20_000, "is not valid JSON"),
    "truncated": (b'{"name": "x", "started_', "is not valid JSON"),
    "nul": (b"\x00" * 64, "is not valid JSON"),
    "empty": (b"", "is not valid JSON"),
}


def _run_dir_items() -> Iterator[Item]:
    for name, (content, names) in MANIFESTS.items():
        build = _run_dir_with_manifest(content)
        yield Item(f"rundir:report:{name}", lambda tmp, b=build: ["report", str(b(tmp))], names)
    binary = _run_dir_with_manifest(bytes(range(256)))
    yield Item("rundir:cost:binary", lambda tmp: ["cost", str(binary(tmp))], "is not valid JSON")
    yield Item(
        "rundir:compare:binary",
        lambda tmp: ["compare", str(_finished_run(tmp / "a")), str(binary(tmp))],
        "is not valid JSON",
    )
    yield Item(
        "rundir:report:no-manifest",
        lambda tmp: ["report", str(tmp)],
        "is not a loadlab run directory",
    )


ITEMS: list[Item] = [
    *(_file_item(relative) for relative in sorted(EXPECTED)),
    *_flag_items(),
    *_run_dir_items(),
]


def test_the_corpus_holds_at_least_100_malformed_inputs() -> None:
    sse = list((HERE / "sse").glob("*.bin"))
    assert len(ITEMS) + len(sse) >= 100
    assert len(ITEMS) >= 100


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("item", ITEMS, ids=[item.id for item in ITEMS])
def test_a_malformed_input_is_refused_clearly(
    item: Item, tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a default runs/ or .loadlab/ would appear here
    corpus_before = _listing(HERE)
    argv = item.argv(tmp_path)
    before = _listing(tmp_path)
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse refuses a flag by exiting 2
        code = stop.code if isinstance(stop.code, int) else 1
    out = capsys.readouterr()
    assert code in REFUSED, f"exit {code}: {out.err}"
    assert "Traceback" not in out.err and "Traceback" not in out.out
    assert item.names in out.err, out.err
    assert _listing(tmp_path) == before, "the refused command left files behind"
    assert _listing(HERE) == corpus_before
