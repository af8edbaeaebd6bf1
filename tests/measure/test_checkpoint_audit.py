"""The out-of-band continuity check against a real ministack (DynamoDB).

Items are written the way the reference agent writes them (``state_to_item``);
sessions.parquet is written by the recorder from ``SessionRecord`` rows whose
expectations each test controls.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from loadlab.embedded.agent.checkpoint import ensure_table, state_to_item
from loadlab.embedded.agent.state import SessionState
from loadlab.errors import ConfigError, RunDirectoryError, TargetUnreachable
from loadlab.measure.checkpoint_audit import CHECKPOINTS, AuditResult, audit_checkpoints
from loadlab.measure.checkpoint_fetch import BatchRetry, dynamodb_client
from loadlab.measure.checkpoint_rules import Expectation, StoredCheckpoint, judge
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.rows import SessionRecord
from loadlab.scenario.files import load_scenario
from loadlab.scenario.model import Scenario
from loadlab.scenario.script import plan_session

REPO = Path(__file__).resolve().parents[2]
MINISTACK = REPO / ".venv-ministack" / "bin" / "ministack"
STARTUP_TIMEOUT_S = 30.0
REGION = "us-east-1"
KEY_ID = "loadlab-audit-test"
SECRET = "audit-secret-never-written-7f3a9c"
FAST_RETRY = BatchRetry(rounds=2, base_s=0.001, max_s=0.002)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def client(ministack: str) -> Iterator[Any]:
    """A DynamoDB client on ministack, built the way the CLI builds it."""
    ddb = dynamodb_client(
        endpoint_url=ministack, region=REGION, access_key_id=KEY_ID, secret_access_key=SECRET
    )
    try:
        yield ddb
    finally:
        ddb.close()


@pytest.fixture(scope="module")
def table(ministack: str) -> str:
    """The module's checkpoint table, created as the embedded stack creates it."""
    name = "loadlab-checkpoints-audit"
    ddb = dynamodb_client(
        endpoint_url=ministack, region=REGION, access_key_id=KEY_ID, secret_access_key=SECRET
    )
    try:
        ensure_table(ddb, name)
    finally:
        ddb.close()
    return name


# -- building a run and its items ----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Stored:
    """A checkpoint item as the agent would have written it."""

    turn: int
    version: int
    cart: dict[str, int]


def record(
    sid: str,
    *,
    verdict: str = "clean",
    done: int = 3,
    planned: int | None = None,
    cart: dict[str, int] | None = None,
    version: int | None = -1,
    interrupted: int = 0,
    persona: str = "shopper",
    seed: int = 1,
) -> SessionRecord:
    """A session row; ``version`` -1 means 'the version equals the turns done'."""
    return SessionRecord(
        session_id=sid,
        persona=persona,
        seed=seed,
        t_start=1_700_000_000.0,
        t_end=1_700_000_060.0,
        turns_planned=done if planned is None else planned,
        turns_done=done,
        interrupted_turns=interrupted,
        verdict=verdict,
        verdict_reason="",
        checkpoint_version=done if version == -1 else version,
        cart_json=json.dumps(cart or {}, sort_keys=True),
    )


def build_run(
    path: Path,
    sessions: list[SessionRecord],
    *,
    scenario_path: str | None = None,
    scenario_sha256: str | None = None,
) -> Path:
    """A run directory with a manifest, a sessions.parquet and an events log."""
    path.mkdir(parents=True)
    run_dir = RunDirectory(path)
    run_dir.write_manifest(
        RunManifest(
            run_id="audit",
            name="audit",
            started_at=1_700_000_000.0,
            scenario_path=scenario_path,
            scenario_sha256=scenario_sha256,
            scenario={},
            target={"url": "http://127.0.0.1:9"},
            versions={},
            seed=1,
        )
    )
    with RunRecorder(run_dir) as recorder:
        for row in sessions:
            recorder.emit(row)
    return path


def put_items(client: Any, table: str, items: dict[str, Stored]) -> None:
    """Write items with the agent's own item layout, 25 per BatchWriteItem."""
    states = [
        SessionState(
            session_id=sid,
            turn=s.turn,
            version=s.version,
            cart=s.cart,
            applied_keys={f"{sid}-t{t}": t for t in range(max(1, s.turn - 3), s.turn + 1)},
            history=("add_to_cart: Add P-0001 to my cart",),
        )
        for sid, s in items.items()
    ]
    for i in range(0, len(states), 25):
        chunk = states[i : i + 25]
        response = client.batch_write_item(
            RequestItems={
                table: [{"PutRequest": {"Item": state_to_item(st, now=1.0)}} for st in chunk]
            }
        )
        assert not response.get("UnprocessedItems")


def rows_of(result: AuditResult) -> dict[str, dict[str, Any]]:
    """checkpoints.parquet as {session_id: row}."""
    rows = pq.read_table(result.path).to_pylist()
    return {r["session_id"]: r for r in rows}


def new_prefix() -> str:
    """A session id prefix no other test uses (the table is shared by the module)."""
    return f"r{uuid.uuid4().hex[:8]}"


# -- the verdicts --------------------------------------------------------------------


@pytest.mark.integration
def test_each_out_of_band_verdict_and_the_agreement_counts(
    client: Any, table: str, tmp_path: Path
) -> None:
    p = new_prefix()
    one, two = {"P-0001": 1}, {"P-0001": 1, "P-0002": 1}
    cases: list[tuple[SessionRecord, Stored | None, str]] = [
        (record(f"{p}-clean", cart=one), Stored(turn=3, version=3, cart=one), "clean"),
        (
            record(f"{p}-resumed", verdict="resumed", interrupted=1, cart=one),
            Stored(turn=3, version=3, cart=one),
            "resumed",
        ),
        (record(f"{p}-missing", done=2, cart=one), None, "missing"),
        # The checkpoint-before-side-effect bug: turn recorded, last add not.
        (
            record(f"{p}-cart-lost", done=2, cart=two),
            Stored(turn=2, version=2, cart=one),
            "restarted",
        ),
        (
            record(f"{p}-turns-lost", verdict="resumed", interrupted=1, done=4),
            Stored(turn=1, version=1, cart={}),
            "restarted",
        ),
        (
            record(f"{p}-units-doubled", cart={"P-0003": 1}),
            Stored(turn=3, version=3, cart={"P-0003": 2}),
            "duplicated",
        ),
        (
            record(f"{p}-turn-doubled", verdict="resumed", interrupted=1),
            Stored(turn=4, version=4, cart={}),
            "duplicated",
        ),
        # Failed at turn 3 of 5 after the agent had checkpointed turn 3.
        (
            record(f"{p}-failed-ahead", verdict="failed", done=2, planned=5, cart=one),
            Stored(turn=3, version=3, cart={"P-0001": 1, "P-0004": 1}),
            "failed",
        ),
        (
            record(f"{p}-failed-lost", verdict="failed", done=2, planned=5, cart=one),
            Stored(turn=1, version=1, cart={}),
            "restarted",
        ),
        (
            record(f"{p}-no-turn", verdict="failed", done=0, planned=4, version=None),
            None,
            "failed",
        ),
        (record(f"{p}-restarted-gone", verdict="restarted", done=3), None, "missing"),
        (
            record(f"{p}-version-back", cart=one, version=5),
            Stored(turn=3, version=4, cart=one),
            "restarted",
        ),
        # Stopped mid-session: the in-flight turn 3 was applied, unheard.
        (
            record(f"{p}-stopped-ahead", done=2, planned=6, cart=one),
            Stored(turn=3, version=3, cart={}),
            "clean",
        ),
    ]
    put_items(client, table, {r.session_id: s for r, s, _ in cases if s is not None})
    run = build_run(tmp_path / "run", [r for r, _, _ in cases])

    result = audit_checkpoints(run, client=client, table=table)

    rows = rows_of(result)
    assert {sid: row["oob_verdict"] for sid, row in rows.items()} == {
        r.session_id: want for r, _, want in cases
    }
    assert result.sessions == len(cases) and result.found == 10
    assert result.verdicts == {
        "clean": 2,
        "resumed": 1,
        "restarted": 4,
        "duplicated": 2,
        "failed": 2,
        "missing": 2,
    }
    assert set(result.disagreed) == {
        f"{p}-missing",
        f"{p}-cart-lost",
        f"{p}-turns-lost",
        f"{p}-units-doubled",
        f"{p}-turn-doubled",
        f"{p}-failed-lost",
        f"{p}-version-back",
        f"{p}-restarted-gone",
    }
    assert result.agreed == len(cases) - 8
    assert list(result.disagreed) == sorted(result.disagreed)
    ahead = rows[f"{p}-failed-ahead"]
    assert ahead["found"] and ahead["turn"] == 3 and ahead["checkpoint_version"] == 3
    assert ahead["cart_json"] == '{"P-0001": 1, "P-0004": 1}'
    assert ahead["inband_verdict"] == "failed" and "one turn ahead" in ahead["reason"]
    assert "P-0002: 0 in the item, expected 1" in rows[f"{p}-cart-lost"]["reason"]
    gone = rows[f"{p}-missing"]
    assert not gone["found"] and gone["turn"] is None and gone["cart_json"] is None
    assert result.to_json()["verdicts"]["missing"] == 2


@pytest.mark.integration
def test_more_than_100_sessions_are_batched_and_a_lost_item_is_caught(
    client: Any, table: str, tmp_path: Path
) -> None:
    p = new_prefix()
    sessions = [record(f"{p}-{i:04d}", cart={f"P-{i % 200 + 1:04d}": 1}) for i in range(250)]
    put_items(
        client,
        table,
        {r.session_id: Stored(turn=3, version=3, cart=json.loads(r.cart_json)) for r in sessions},
    )
    run = build_run(tmp_path / "run", sessions)
    seen: list[tuple[int, int]] = []

    before = audit_checkpoints(
        run, client=client, table=table, concurrency=2, progress=lambda d, t: seen.append((d, t))
    )
    assert before.verdicts["clean"] == 250 and before.found == 250 and before.disagreed == ()
    assert len(seen) == 3 and seen[-1] == (250, 250)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    lost = f"{p}-0137"
    client.delete_item(TableName=table, Key={"session_id": {"S": lost}})
    after = audit_checkpoints(run, client=client, table=table)

    assert after.disagreed == (lost,)
    assert after.verdicts["missing"] == 1 and after.verdicts["clean"] == 249
    assert rows_of(after)[lost]["reason"] == "no checkpoint item although 3 turn(s) completed"


@pytest.mark.integration
def test_running_again_replaces_the_audit_and_leaves_the_run_alone(
    client: Any, table: str, tmp_path: Path
) -> None:
    p = new_prefix()
    put_items(client, table, {f"{p}-a": Stored(turn=3, version=3, cart={})})
    run = build_run(tmp_path / "run", [record(f"{p}-a"), record(f"{p}-b")])

    def snapshot() -> dict[str, str]:
        return {
            str(f.relative_to(run)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(run.rglob("*"))
            if f.is_file() and CHECKPOINTS not in f.parts
        }

    untouched = snapshot()
    first = audit_checkpoints(run, client=client, table=table)
    assert first.verdicts["missing"] == 1
    put_items(client, table, {f"{p}-b": Stored(turn=3, version=3, cart={})})
    second = audit_checkpoints(run, client=client, table=table)

    assert second.verdicts["clean"] == 2 and second.path == first.path == run / CHECKPOINTS
    assert sorted(p.name for p in (run / CHECKPOINTS).iterdir()) == ["part-000000.parquet"]
    assert pq.read_table(run / CHECKPOINTS).num_rows == 2
    assert snapshot() == untouched
    everything = b"".join(f.read_bytes() for f in run.rglob("*") if f.is_file())
    assert SECRET.encode() not in everything and KEY_ID.encode() not in everything


@pytest.mark.integration
def test_unreadable_parts_are_skipped_and_reported(client: Any, table: str, tmp_path: Path) -> None:
    p = new_prefix()
    put_items(client, table, {f"{p}-a": Stored(turn=3, version=3, cart={})})
    run = build_run(tmp_path / "run", [record(f"{p}-a")])
    (run / "sessions.parquet" / "part-000099.parquet").write_bytes(b"PAR1 cut short by SIGKILL")

    result = audit_checkpoints(run, client=client, table=table)

    assert result.verdicts["clean"] == 1 and result.sessions == 1
    assert any("part-000099.parquet" in problem for problem in result.problems)


# -- the expected cart from the scenario's script -------------------------------------

SCENARIO_YAML = """\
name: audit
session:
  turns: {min: 6, max: 6}
  personas:
    - name: cart_shuffler
      intents: {add_to_cart: 2, remove_from_cart: 1}
"""


def shuffling_session(scenario: Scenario, sid: str) -> tuple[int, str, dict[str, int]]:
    """A seed whose script removes a SKU it added: (seed, that SKU, the expected cart)."""
    for seed in range(500):
        spec = plan_session(scenario, seed, session_id=sid)
        cart = spec.expected_cart(len(spec.turns))
        removed = [t.sku for t in spec.turns if t.cart_delta < 0 and t.sku not in cart]
        if removed and removed[0] is not None:
            return seed, removed[0], cart
    raise AssertionError("no seed in 0..499 plans a removal")


@pytest.mark.integration
def test_the_script_gives_the_expected_cart_and_the_removed_skus(
    client: Any, table: str, tmp_path: Path
) -> None:
    scenario_file = tmp_path / "audit.yaml"
    scenario_file.write_text(SCENARIO_YAML)
    scenario = load_scenario(scenario_file)
    p = new_prefix()
    sid = f"{p}-back"
    seed, removed, cart = shuffling_session(scenario, sid)
    # The item brings back a SKU the shopper removed; the in-band check saw nothing.
    put_items(client, table, {sid: Stored(turn=6, version=6, cart={**cart, removed: 1})})
    row = record(sid, done=6, cart=cart, persona="cart_shuffler", seed=seed)
    digest = hashlib.sha256(scenario_file.read_bytes()).hexdigest()
    run = build_run(
        tmp_path / "run", [row], scenario_path=str(scenario_file), scenario_sha256=digest
    )

    from_manifest = audit_checkpoints(run, client=client, table=table)
    given = audit_checkpoints(run, client=client, table=table, scenario=scenario)

    for result in (from_manifest, given):
        assert result.expectations == {"script": 1} and result.problems == ()
        assert result.verdicts["restarted"] == 1
        assert f"{removed}: back in the item after it was removed" in rows_of(result)[sid]["reason"]

    # Without the script only the acknowledged cart is known: one unit too many.
    scenario_file.write_text(SCENARIO_YAML + "# edited after the run\n")
    edited = audit_checkpoints(run, client=client, table=table)
    assert edited.expectations == {"acknowledged": 1}
    assert edited.verdicts["duplicated"] == 1
    assert any("changed since the run" in problem for problem in edited.problems)


@pytest.mark.integration
def test_without_an_expected_cart_only_turns_and_version_are_compared(
    client: Any, table: str, tmp_path: Path
) -> None:
    p = new_prefix()
    put_items(
        client,
        table,
        {
            f"{p}-dup": Stored(turn=3, version=3, cart={"P-0001": 2}),
            f"{p}-dup-ahead": Stored(turn=4, version=4, cart={"P-0001": 2}),
        },
    )
    run = build_run(
        tmp_path / "run",
        [
            record(f"{p}-dup", verdict="duplicated", cart={"P-0001": 2}),
            record(f"{p}-dup-ahead", verdict="duplicated", cart={"P-0001": 2}),
        ],
    )

    result = audit_checkpoints(run, client=client, table=table)

    rows = rows_of(result)
    assert result.expectations == {"none": 2} and result.cart_unchecked == 2
    assert rows[f"{p}-dup"]["oob_verdict"] == "duplicated"
    assert "the expected cart is not known" in rows[f"{p}-dup"]["reason"]
    assert rows[f"{p}-dup-ahead"]["oob_verdict"] == "duplicated"
    assert "item holds 4 turn(s), the shopper completed 3" in rows[f"{p}-dup-ahead"]["reason"]


# -- errors --------------------------------------------------------------------------


@pytest.mark.integration
def test_an_unknown_table_is_a_clear_error(client: Any, tmp_path: Path) -> None:
    run = build_run(tmp_path / "run", [record("s-1")])

    with pytest.raises(ConfigError) as caught:
        audit_checkpoints(run, client=client, table="no-such-checkpoints")

    message = str(caught.value)
    assert "'no-such-checkpoints' does not exist" in message
    assert "endpoints.table" in message and SECRET not in message
    assert not (run / CHECKPOINTS).exists()


@pytest.mark.integration
def test_an_unreachable_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run", [record("s-1")])
    endpoint = f"http://127.0.0.1:{free_port()}"
    ddb = dynamodb_client(
        endpoint_url=endpoint,
        region=REGION,
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
        connect_timeout_s=1,
        max_attempts=1,
    )
    try:
        with pytest.raises(TargetUnreachable) as caught:
            audit_checkpoints(run, client=ddb, table="loadlab-checkpoints")
    finally:
        ddb.close()

    message = str(caught.value)
    assert f"cannot reach DynamoDB at {endpoint}" in message and "loadlab up" in message
    assert SECRET not in message and KEY_ID not in message


def test_a_directory_that_is_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    ddb = dynamodb_client(
        endpoint_url="http://127.0.0.1:9",
        region=REGION,
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
    )
    try:
        with pytest.raises(RunDirectoryError, match="not a loadlab run directory"):
            audit_checkpoints(tmp_path, client=ddb)
        with pytest.raises(ConfigError, match="concurrency must be >= 1"):
            audit_checkpoints(tmp_path, client=ddb, concurrency=0)
    finally:
        ddb.close()


# -- a canned DynamoDB transport for what ministack will not do on demand --------------


class CannedDynamo:
    """A loopback HTTP server that answers DynamoDB JSON calls from a script."""

    def __init__(self, answer: Callable[[dict[str, Any], int], tuple[int, dict[str, Any]]]) -> None:
        self.requests: list[dict[str, Any]] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                canned.requests.append(body)
                status, reply = answer(body, len(canned.requests))
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", "canned")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Any:
        self.thread.start()
        self.client = dynamodb_client(
            endpoint_url=f"http://127.0.0.1:{self.server.server_address[1]}",
            region=REGION,
            access_key_id=KEY_ID,
            secret_access_key=SECRET,
            max_attempts=1,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def item(sid: str) -> dict[str, Any]:
    return {"session_id": {"S": sid}, "version": {"N": "3"}, "turn": {"N": "3"}, "cart": {"M": {}}}


@pytest.mark.integration
def test_unprocessed_keys_are_asked_for_again(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run", [record(f"s-{i}") for i in range(4)])

    def answer(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
        request = body["RequestItems"]["t-checkpoints"]
        keys = request["Keys"]
        served, left = (keys[:1], keys[1:]) if n == 1 else (keys, [])
        unprocessed = {"t-checkpoints": {**request, "Keys": left}} if left else {}
        responses = [item(k["session_id"]["S"]) for k in served]
        return 200, {"Responses": {"t-checkpoints": responses}, "UnprocessedKeys": unprocessed}

    with CannedDynamo(answer) as canned:
        result = audit_checkpoints(
            run, client=canned.client, table="t-checkpoints", retry=FAST_RETRY
        )

    assert result.verdicts["clean"] == 4 and result.found == 4
    assert [len(r["RequestItems"]["t-checkpoints"]["Keys"]) for r in canned.requests] == [4, 3]
    assert all(r["RequestItems"]["t-checkpoints"]["ConsistentRead"] for r in canned.requests)


@pytest.mark.integration
def test_keys_left_unprocessed_after_every_retry_are_an_error(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run", [record("s-1")])

    def answer(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
        return 200, {"Responses": {}, "UnprocessedKeys": body["RequestItems"]}

    with CannedDynamo(answer) as canned, pytest.raises(TargetUnreachable) as caught:
        audit_checkpoints(run, client=canned.client, table="t-checkpoints", retry=FAST_RETRY)

    assert len(canned.requests) == FAST_RETRY.rounds + 1
    assert "1 key(s) of table 't-checkpoints'" in str(caught.value)
    assert not (run / CHECKPOINTS).exists()


@pytest.mark.integration
def test_access_denied_is_a_clear_error(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run", [record("s-1")])

    def answer(body: dict[str, Any], n: int) -> tuple[int, dict[str, Any]]:
        return 400, {
            "__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
            "message": "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
            "dynamodb:BatchGetItem on resource: table/t-checkpoints",
        }

    with CannedDynamo(answer) as canned, pytest.raises(ConfigError) as caught:
        audit_checkpoints(run, client=canned.client, table="t-checkpoints")

    message = str(caught.value)
    assert "not allowed to read DynamoDB table 't-checkpoints'" in message
    assert "AccessDeniedException" in message and "dynamodb:BatchGetItem" in message
    assert SECRET not in message


# -- the rules, value against value ----------------------------------------------------


def expectation(**overrides: Any) -> Expectation:
    values: dict[str, Any] = {
        "session_id": "s",
        "inband_verdict": "failed",
        "turns_done": 2,
        "interrupted_turns": 1,
        "ended_early": True,
        "acknowledged_version": 2,
        "cart": {"P-0001": 1, "P-0002": 1},
        "source": "acknowledged",
    }
    return Expectation(**(values | overrides))


def test_one_turn_ahead_allows_one_unit_either_way_and_no_more() -> None:
    removed = StoredCheckpoint(version=3, turn=3, cart={"P-0001": 1})
    added_two = StoredCheckpoint(version=3, turn=3, cart={"P-0001": 2, "P-0002": 2})
    two_ahead = StoredCheckpoint(version=4, turn=4, cart={"P-0001": 1, "P-0002": 1})

    assert judge(expectation(), removed).verdict == "failed"
    assert judge(expectation(ended_early=False), removed).verdict == "restarted"
    assert judge(expectation(), added_two).verdict == "duplicated"
    assert judge(expectation(), two_ahead).verdict == "duplicated"
    # With the script, the next turn's cart is known exactly.
    assert judge(
        expectation(next_cart={"P-0001": 1, "P-0002": 1, "P-0003": 1}), removed
    ).verdict == ("restarted")


def test_an_intact_item_overrules_an_in_band_loss() -> None:
    intact = StoredCheckpoint(version=2, turn=2, cart={"P-0001": 1, "P-0002": 1})

    assert judge(expectation(inband_verdict="restarted"), intact).verdict == "resumed"
    assert judge(expectation(inband_verdict="restarted", interrupted_turns=0), intact).verdict == (
        "clean"
    )
    assert judge(expectation(inband_verdict="restarted", cart=None), intact).verdict == "restarted"
