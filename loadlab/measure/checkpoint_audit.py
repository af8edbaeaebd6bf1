"""The out-of-band continuity check: each session's checkpoint item, judged after a run.

:func:`audit_checkpoints` reads a run's ``sessions.parquet``, fetches every
session's checkpoint item from DynamoDB (:mod:`loadlab.measure.checkpoint_fetch`),
judges each against what the shopper expected
(:mod:`loadlab.measure.checkpoint_rules`, where the rules are spelled out), and
writes one row per session to ``checkpoints.parquet`` in the run directory::

    session_id  found  checkpoint_version  turn  cart_json  oob_verdict  reason  inband_verdict

The expected turn count is the session's ``turns_done``. The expected cart
comes, in order of preference, from:

* ``script``: the session replayed from the run's scenario (the ``scenario``
  argument, else the manifest's ``scenario_path`` if the file's SHA-256 still
  matches), checked against the row's persona and planned turn count;
* ``recorded``: an ``expected_cart_json`` column, if sessions.parquet has one;
* ``acknowledged``: the row's ``cart_json``, the cart the agent acknowledged
  after the last completed turn. The in-band check guarantees it equals the
  expected cart when the in-band verdict is ``clean``, ``resumed`` or
  ``failed``, so it is used only for those.

The audit adds ``checkpoints.parquet`` (one part, replaced atomically when run
again) and touches nothing else in the run directory. The items it reads hold
no secrets, and no credential is ever written or put in a message.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from loadlab.errors import ConfigError, RunDirectoryError, ScenarioError
from loadlab.measure.checkpoint_fetch import BatchRetry, fetch_checkpoints
from loadlab.measure.checkpoint_rules import (
    OOB_VERDICTS,
    Expectation,
    StoredCheckpoint,
    agrees,
    judge,
)
from loadlab.measure.part_file import arrow_schema
from loadlab.measure.readback import read_dataset
from loadlab.measure.rundir import RunDirectory
from loadlab.rows import SessionRecord
from loadlab.scenario.files import load_scenario
from loadlab.scenario.model import Scenario
from loadlab.scenario.script import plan_session

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

CHECKPOINTS = "checkpoints.parquet"
"""The dataset directory the audit writes in the run directory."""

DEFAULT_TABLE = "loadlab-checkpoints"
_PART = "part-000000.parquet"
_EXPECTED_CART_COLUMN = "expected_cart_json"
_ACKNOWLEDGED_IS_EXPECTED = ("clean", "resumed", "failed")


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """One row of checkpoints.parquet: a session's item and its out-of-band verdict."""

    session_id: str
    found: bool
    checkpoint_version: int | None
    turn: int | None
    cart_json: str | None
    oob_verdict: str
    reason: str
    inband_verdict: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditResult:
    """What the audit found, in numbers; the per-session rows are in ``path``.

    ``verdicts`` counts sessions per out-of-band verdict (every verdict of
    :data:`~loadlab.measure.checkpoint_rules.OOB_VERDICTS` is a key).
    ``disagreed`` lists, sorted, the sessions whose out-of-band verdict is not the
    in-band one. ``cart_unchecked`` counts sessions whose item was found but whose
    cart could not be compared (expected cart unknown); ``expectations`` counts
    sessions per source of the expected cart. ``problems`` lists what could not
    be read (bad part files, malformed items, a scenario that could not be
    replayed).
    """

    path: Path
    table: str
    sessions: int
    found: int
    verdicts: Mapping[str, int]
    agreed: int
    disagreed: tuple[str, ...]
    cart_unchecked: int
    expectations: Mapping[str, int]
    problems: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-serialisable dict (for summary.json)."""
        return {
            "path": str(self.path),
            "table": self.table,
            "sessions": self.sessions,
            "found": self.found,
            "verdicts": dict(self.verdicts),
            "agreed": self.agreed,
            "disagreed": list(self.disagreed),
            "cart_unchecked": self.cart_unchecked,
            "expectations": dict(self.expectations),
            "problems": list(self.problems),
        }


def audit_checkpoints(
    run_dir: Path,
    *,
    client: DynamoDBClient,
    table: str = DEFAULT_TABLE,
    key_attribute: str = "session_id",
    concurrency: int = 8,
    progress: Callable[[int, int], None] | None = None,
    scenario: Scenario | None = None,
    retry: BatchRetry | None = None,
) -> AuditResult:
    """Judge every session of a run by its checkpoint item; write checkpoints.parquet.

    ``client`` is a boto3 DynamoDB client pointed at the agent's endpoint (see
    :func:`~loadlab.measure.checkpoint_fetch.dynamodb_client`); ``table`` and
    ``key_attribute`` name the checkpoint table and its string partition key.
    Items are read ``concurrency`` batches at a time; ``progress(done, total)``
    is called after each batch. ``scenario`` is the run's scenario, if the caller
    has it (otherwise it is re-read from the manifest's path). ``retry`` bounds
    the retries of unprocessed keys.

    Raises :class:`~loadlab.errors.RunDirectoryError` if ``run_dir`` is not a run
    directory or cannot be written, :class:`~loadlab.errors.ConfigError` for a
    bad argument, a missing table or refused credentials, and
    :class:`~loadlab.errors.TargetUnreachable` if DynamoDB does not answer.
    """
    if concurrency < 1:
        raise ConfigError(
            f"concurrency must be >= 1, got {concurrency!r}",
            hint="pass the number of BatchGetItem calls to run at once, e.g. 8",
        )
    if not table or not key_attribute:
        raise ConfigError(
            f"table and key_attribute must not be empty (got {table!r}, {key_attribute!r})",
            hint="pass the checkpoint table (default loadlab-checkpoints) and its key (session_id)",
        )
    directory = RunDirectory(Path(run_dir))
    manifest = directory.read_manifest()
    rows, problems = _read_sessions(directory)
    script, note = _run_scenario(manifest, scenario)
    if note is not None:
        problems.append(note)
    expectations, unmatched = _expectations(rows, script)
    if unmatched:
        problems.append(
            f"{unmatched} session(s) did not match the scenario's script (persona or planned "
            "turn count): their expected carts come from the run's own rows"
        )
    fetched = fetch_checkpoints(
        client,
        table=table,
        key_attribute=key_attribute,
        session_ids=[e.session_id for e in expectations],
        concurrency=concurrency,
        retry=retry or BatchRetry(),
        progress=progress,
    )
    problems.extend(fetched.problems)
    out: list[CheckpointRow] = []
    verdicts: Counter[str] = Counter(dict.fromkeys(OOB_VERDICTS, 0))
    disagreed: list[str] = []
    cart_unchecked = 0
    for expected in expectations:
        stored = fetched.items.get(expected.session_id)
        judgement = judge(expected, stored)
        verdicts[judgement.verdict] += 1
        if not agrees(judgement.verdict, expected.inband_verdict):
            disagreed.append(expected.session_id)
        if stored is not None and not judgement.cart_checked:
            cart_unchecked += 1
        out.append(_row(expected, stored, judgement.verdict, judgement.reason))
    path = directory.path / CHECKPOINTS
    _write(path, out)
    return AuditResult(
        path=path,
        table=table,
        sessions=len(out),
        found=sum(1 for r in out if r.found),
        verdicts=dict(verdicts),
        agreed=len(out) - len(disagreed),
        disagreed=tuple(sorted(disagreed)),
        cart_unchecked=cart_unchecked,
        expectations=dict(Counter(e.source for e in expectations)),
        problems=tuple(problems),
    )


def _read_sessions(directory: RunDirectory) -> tuple[list[dict[str, Any]], list[str]]:
    schema = arrow_schema(SessionRecord)
    if _EXPECTED_CART_COLUMN not in schema.names:
        schema = schema.append(pa.field(_EXPECTED_CART_COLUMN, pa.string(), nullable=True))
    read = read_dataset(directory.table("sessions"), schema, label="sessions")
    problems = list(read.problems)
    by_id: dict[str, dict[str, Any]] = {}
    incomplete = repeated = 0
    for row in read.table.to_pylist():
        if row["session_id"] is None or row["turns_done"] is None or row["verdict"] is None:
            incomplete += 1
            continue
        repeated += row["session_id"] in by_id
        by_id[row["session_id"]] = row  # the last row of a session is its final word
    if incomplete:
        problems.append(f"sessions: skipped {incomplete} row(s) without id, turns or verdict")
    if repeated:
        problems.append(f"sessions: {repeated} repeated row(s); the last of each was audited")
    return list(by_id.values()), problems


def _run_scenario(
    manifest: Mapping[str, Any], given: Scenario | None
) -> tuple[Scenario | None, str | None]:
    """The scenario to replay sessions from, or None and why not."""
    if given is not None:
        return given, None
    path, digest = manifest.get("scenario_path"), manifest.get("scenario_sha256")
    fallback = "expected carts come from the run's own rows"
    if not isinstance(path, str) or not isinstance(digest, str):
        return None, f"the manifest names no scenario file with its SHA-256: {fallback}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return None, f"scenario file {path} is not readable ({exc.strerror}): {fallback}"
    if hashlib.sha256(data).hexdigest() != digest:
        return None, f"scenario file {path} changed since the run: {fallback}"
    try:
        return load_scenario(path), None
    except ScenarioError as exc:
        return None, f"scenario file {path} no longer loads ({exc.message}): {fallback}"


def _expectations(
    rows: list[dict[str, Any]], scenario: Scenario | None
) -> tuple[list[Expectation], int]:
    out: list[Expectation] = []
    unmatched = 0
    for row in rows:
        expectation = None if scenario is None else _from_script(row, scenario)
        if scenario is not None and expectation is None:
            unmatched += 1
        out.append(expectation or _from_row(row))
    return out, unmatched


def _common(row: Mapping[str, Any]) -> dict[str, Any]:
    done = int(row["turns_done"])
    planned = row.get("turns_planned")
    return {
        "session_id": str(row["session_id"]),
        "inband_verdict": str(row["verdict"]),
        "turns_done": done,
        "interrupted_turns": int(row.get("interrupted_turns") or 0),
        "ended_early": planned is not None and done < int(planned),
        "acknowledged_version": row.get("checkpoint_version"),
    }


def _from_script(row: Mapping[str, Any], scenario: Scenario) -> Expectation | None:
    seed = row.get("seed")
    if seed is None:
        return None
    spec = plan_session(scenario, int(seed), session_id=str(row["session_id"]))
    if spec.persona != row.get("persona") or len(spec.turns) != row.get("turns_planned"):
        return None
    common = _common(row)
    done = common["turns_done"]
    if done > len(spec.turns):
        return None
    removed = frozenset(t.sku for t in spec.turns[:done] if t.sku is not None and t.cart_delta < 0)
    return Expectation(
        **common,
        cart=spec.expected_cart(done),
        removed=removed,
        next_cart=spec.expected_cart(done + 1) if common["ended_early"] else None,
        source="script",
    )


def _from_row(row: Mapping[str, Any]) -> Expectation:
    common = _common(row)
    recorded = _cart(row.get(_EXPECTED_CART_COLUMN))
    if common["turns_done"] == 0:
        return Expectation(**common, cart={}, source="empty")
    if recorded is not None:
        return Expectation(**common, cart=recorded, source="recorded")
    acknowledged = _cart(row.get("cart_json"))
    if (
        acknowledged is not None
        and common["inband_verdict"] in _ACKNOWLEDGED_IS_EXPECTED
        and common["acknowledged_version"] is not None
    ):
        return Expectation(**common, cart=acknowledged, source="acknowledged")
    return Expectation(**common, cart=None, source="none")


def _cart(text: Any) -> dict[str, int] | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        return None
    return {str(k): int(v) for k, v in value.items()}


def _row(
    expected: Expectation, stored: StoredCheckpoint | None, verdict: str, reason: str
) -> CheckpointRow:
    return CheckpointRow(
        session_id=expected.session_id,
        found=stored is not None,
        checkpoint_version=None if stored is None else stored.version,
        turn=None if stored is None else stored.turn,
        cart_json=None if stored is None else json.dumps(dict(stored.cart), sort_keys=True),
        oob_verdict=verdict,
        reason=reason,
        inband_verdict=expected.inband_verdict,
    )


def _write(path: Path, rows: list[CheckpointRow]) -> None:
    """Write ``rows`` as the dataset's only part, replacing any earlier audit atomically."""
    final, tmp = path / _PART, path / f".{_PART}.tmp"
    table = pa.Table.from_pylist(
        [dataclasses.asdict(r) for r in rows], schema=arrow_schema(CheckpointRow)
    )
    try:
        path.mkdir(exist_ok=True)
        pq.write_table(table, tmp)
        os.replace(tmp, final)
        # A dataset holds one audit: parts of any other writer would double its rows.
        for stray in path.glob("part-*.parquet"):
            if stray.name != _PART:
                stray.unlink()
    except OSError as exc:
        raise RunDirectoryError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="check that the run directory is writable and the disk is not full",
        ) from exc
