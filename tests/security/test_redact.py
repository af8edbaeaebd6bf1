"""Credentials never reach a row, a report or the terminal: the redactor and its writers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from loadlab.cli import main
from loadlab.load.adapters import ReferenceAdapter, TurnRequest
from loadlab.load.client import AgentClient
from loadlab.load.transport import StreamingResponse
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory
from loadlab.redact import REDACTED, RedactingFilter, Redactor, redact
from loadlab.rows import RequestSample, SessionRecord, TimelineEvent, event_line

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzZXNzaW9uLTEifQ.c2lnbmF0dXJlLWNhbmFyeQ"
SK = "sk-proj-canaryKEY0123456789abcdef"
AWS_ID = "AKIACANARY0123456789"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYcanaryKEY1"
CONFIGURED = "configured-canary-secret-42"


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        (f"HTTP 401: bad header 'Authorization: Bearer {JWT}'", JWT),
        (f"HTTP 401: token {JWT} expired", JWT),
        ("HTTP 401: Authorization: Bearer opaque-canary-token-xyz", "opaque-canary-token-xyz"),
        ("Authorization: Basic dXNlcjpjYW5hcnlwdw==", "dXNlcjpjYW5hcnlwdw=="),
        (f'{{"error": "invalid api key {SK}"}}', SK),
        (f"the key id {AWS_ID} is not valid", AWS_ID),
        (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
        (f'{{"SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET),
        ("cannot reach http://user:canarypw@127.0.0.1:1/x", "canarypw"),
        ("cannot reach https://only-a-token-canary@example.invalid", "only-a-token-canary"),
        ("x-api-key: hunter2canary", "hunter2canary"),
        ("GET /?password=hunter2canary&x=1", "hunter2canary"),
    ],
)
def test_shaped_credentials_are_redacted(text: str, gone: str) -> None:
    out = Redactor()(text)
    assert gone not in out and REDACTED in out


def test_configured_secrets_are_redacted_in_every_spelling() -> None:
    redactor = Redactor.from_env({"LOADLAB_JWT_SECRET": "s3cret/with space+&"})
    for text in ("s3cret/with space+&", "s3cret%2Fwith%20space%2B%26", '"s3cret/with space+&"'):
        assert "s3cret" not in redactor(f"the body says {text}!")
    assert redact("k=" + CONFIGURED, {"LOADLAB_OPENAI_API_KEY": CONFIGURED}) == f"k={REDACTED}"


def test_ordinary_text_is_left_alone() -> None:
    text = (
        "HTTP 503: llm_unavailable: the model is overloaded (retry after 2 s); "
        "bearer tokens are checked per session; commit 3f2a9c1e0b; https://example.invalid/a@b"
    )
    assert Redactor.from_env({"LOADLAB_JWT_SECRET": "abc"})(text) == text


def test_trees_keep_their_shape() -> None:
    tree = {"a": [f"Bearer {JWT}", 3, None], "b": {"c": SK}}
    assert Redactor().tree(tree) == {"a": [f"Bearer {REDACTED}", 3, None], "b": {"c": REDACTED}}


@pytest.mark.parametrize(
    "column",
    [
        ["turn:browse", None, "s-local-000001", "", "turn:browse"],
        ["ok", f"HTTP 401: token {JWT} expired", None, "ok"],
        ["ok", f"the key id {AWS_ID}", f"k={CONFIGURED}"],
        [f"x={CONFIGURED}", "plain"],
        ["pod-1", 7, None, f"Bearer {JWT}"],  # a worker sent a number for a text column
        [None, None],
        [],
    ],
)
def test_a_column_is_redacted_as_each_of_its_values(column: list[object]) -> None:
    redactor = Redactor([CONFIGURED])
    assert list(redactor.column(column)) == [redactor.optional(v) for v in column]


def test_a_column_without_credentials_is_looked_at_once_and_kept() -> None:
    redactor = Redactor([CONFIGURED])
    column = ("turn:browse", None, "pod-7", "s-local-000001") * 1000
    assert redactor.column(column) is column
    # the join's separator never makes a credential: "sk-" split over two values stays
    split = ("task sk", "-0123456789abcdefgh")
    assert redactor.column(split) is split
    assert redactor.column((*column, f"Bearer {JWT}"))[-1] == f"Bearer {REDACTED}"


def test_a_configured_secret_split_across_values_is_not_a_match() -> None:
    redactor = Redactor([CONFIGURED])
    head, tail = CONFIGURED[:10], CONFIGURED[10:]
    assert list(redactor.column([head, tail])) == [head, tail]
    assert list(redactor.column([head + tail])) == [REDACTED]


def test_repr_shows_no_secret() -> None:
    assert CONFIGURED not in repr(Redactor([CONFIGURED]))


def test_the_recorder_redacts_every_string_column_and_event(tmp_path: Path) -> None:
    run_dir = RunDirectory(tmp_path / "run")
    run_dir.path.mkdir()
    with RunRecorder(run_dir, redactor=Redactor([CONFIGURED])) as rec:
        rec.emit(
            RequestSample(
                t_start=1.0, name="turn:search", session_id="s1", turn_index=1, attempt=1,
                latency_ms=1.0, ttft_ms=None, bytes=10, status=401,
                error=f"HTTP 401: echo Bearer {JWT} and {CONFIGURED}",
            )
        )  # fmt: skip
        rec.emit(
            SessionRecord(
                session_id="s1", persona="p", seed=1, t_start=1.0, t_end=2.0,
                turns_planned=1, turns_done=0, interrupted_turns=0, verdict="failed",
                verdict_reason=f"turn 1 failed: auth: {SK}",
            )
        )  # fmt: skip
        rec.emit(TimelineEvent(t=1.0, kind="fault", name="x", attrs={"why": f"key {AWS_ID}"}))
    raw = b"".join(p.read_bytes() for p in sorted(run_dir.path.rglob("*")) if p.is_file())
    for canary in (JWT, CONFIGURED, SK, AWS_ID):
        assert canary.encode() not in raw
    errors = pq.read_table(run_dir.table("requests")).column("error").to_pylist()
    assert errors == [f"HTTP 401: echo Bearer {REDACTED} and {REDACTED}"]
    event = json.loads(run_dir.events.read_text().splitlines()[0])
    assert event["attrs"] == {"why": f"key {REDACTED}"}


class _EchoTransport:
    """A transport whose agent answers 401 with the request's Authorization header."""

    def open(
        self, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float
    ) -> StreamingResponse:
        echo = json.dumps({"error": {"kind": "auth", "message": headers["Authorization"]}})
        return StreamingResponse(status=401, headers={}, chunks=iter([echo.encode()]))


def test_the_client_redacts_an_echoed_credential_where_the_error_is_made() -> None:
    client = AgentClient(
        transport=_EchoTransport(),  # type: ignore[arg-type]
        adapter=ReferenceAdapter(),
        base_url="http://127.0.0.1:1",
        redactor=Redactor(),
    )
    result = client.send_turn(
        TurnRequest(session_id="s1", turn_index=1, message="hi", idempotency_key="k", token=JWT)
    )
    assert result.error_kind == "auth"
    assert result.error is not None and JWT not in result.error and REDACTED in result.error


def test_a_password_in_the_target_url_is_never_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "ci_smoke.yaml"
    code = main(
        ["run", str(scenario), "--target", "http://user:canarypw@127.0.0.1:1/",
         "--run-dir", str(tmp_path / "run")]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code != 0
    assert "127.0.0.1:1" in out.err and "canarypw" not in out.out + out.err


def test_log_records_are_redacted() -> None:
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "body: %s", (f"Bearer {JWT}",), None
    )
    assert RedactingFilter(Redactor()).filter(record)
    assert record.getMessage() == f"body: Bearer {REDACTED}"


def test_timeline_events_written_by_the_chaos_control_are_redacted() -> None:
    line = event_line(
        TimelineEvent(t=1.0, kind="fault", name="x", attrs={"output": f"http://u:{SK}@h/"})
    )
    assert SK not in line and json.loads(line)["attrs"]["output"] == f"http://{REDACTED}@h/"
