"""Session credentials, the load context, and which modules stay free of gevent."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt
import pytest

from loadlab.errors import ConfigError
from loadlab.load.auth import SessionCredentials, jwt_secret_from_env, mint_session_token
from loadlab.load.context import ListSink, LoadContext, derive_seed
from loadlab.rows import TimelineEvent
from loadlab.scenario import parse_scenario

SECRET = "s3cret-value-for-tests-only-0123456789"


def test_minted_token_carries_the_session() -> None:
    now = time.time()
    token = mint_session_token(secret=SECRET, session_id="sess-1", ttl_s=600, now=now)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "sess-1"
    assert claims["exp"] - claims["iat"] == 600
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-of-the-same-length-000000", algorithms=["HS256"])


@pytest.mark.parametrize("session_id", ["sess-1", "flash-\u00e9-\u2603", "x" * 300])
@pytest.mark.parametrize("now", [0.0, 1_765_000_000.75])
def test_a_token_is_the_one_jwt_encode_makes_byte_for_byte(session_id: str, now: float) -> None:
    # loadlab prepares the key once and signs with PyJWT's own HS256; the token must not change.
    claims = {"sub": session_id, "iat": int(now), "exp": int(now) + 600}
    expected = jwt.encode(claims, SECRET, algorithm="HS256")
    assert mint_session_token(secret=SECRET, session_id=session_id, ttl_s=600, now=now) == expected


def test_a_key_pyjwt_refuses_is_refused_the_same_way() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"
    with pytest.raises(jwt.InvalidKeyError):
        mint_session_token(secret=pem, session_id="s")


def test_credentials_reuse_then_renew_and_never_show_secrets() -> None:
    creds = SessionCredentials(secret=SECRET, session_id="sess-1", ttl_s=600)
    now = time.time()
    first = creds.token(now)
    assert creds.token(now + 100) == first
    assert creds.token(now + 590) != first  # within a minute of expiry: renewed
    assert SECRET not in repr(creds) and (first or "") not in repr(creds)
    assert SessionCredentials(secret=None, session_id="s").token() is None


def test_secret_from_env() -> None:
    assert jwt_secret_from_env({"LOADLAB_JWT_SECRET": SECRET}) == SECRET
    assert jwt_secret_from_env({}) is None
    with pytest.raises(ConfigError, match="LOADLAB_JWT_SECRET"):
        jwt_secret_from_env({"LOADLAB_JWT_SECRET": " "})


def _context(**kwargs: object) -> LoadContext:
    scenario = parse_scenario({"name": "ctx", "seed": 3})
    return LoadContext(
        scenario=scenario, target_url="http://127.0.0.1:1", sink=ListSink(), **kwargs
    )  # type: ignore[arg-type]


def test_sessions_are_run_unique_and_seeds_reproducible() -> None:
    a = _context(run_id="runA", worker_id="w1", jwt_secret=SECRET)
    b = _context(run_id="runB", worker_id="w1")
    first = [a.next_session() for _ in range(3)]
    again = [b.next_session() for _ in range(3)]
    assert [sid for sid, _ in first] == ["runA-w1-000000", "runA-w1-000001", "runA-w1-000002"]
    assert [seed for _, seed in first] == [seed for _, seed in again]
    assert len({seed for _, seed in first}) == 3
    assert derive_seed(3, "w1", 0) != derive_seed(3, "w2", 0)
    assert SECRET not in repr(a)


def test_context_checks_the_url_and_explains_a_missing_context() -> None:
    with pytest.raises(ConfigError, match="http"):
        LoadContext(
            scenario=parse_scenario({"name": "x"}), target_url="127.0.0.1:1", sink=ListSink()
        )

    class Environment:
        pass

    with pytest.raises(ConfigError, match=r"environment\.loadlab"):
        LoadContext.of(Environment())
    env = Environment()
    env.loadlab = _context()  # type: ignore[attr-defined]
    assert LoadContext.of(env) is env.loadlab  # type: ignore[attr-defined]


def test_list_sink_sorts_rows_by_kind() -> None:
    sink = ListSink()
    event = TimelineEvent(t=1.0, kind="note", name="x")
    sink.emit(event)
    assert sink.events == [event]
    assert sink.requests == [] and sink.sessions == [] and sink.turns == []


def test_scenario_and_client_modules_do_not_import_gevent_or_locust() -> None:
    code = (
        "import sys\n"
        "import loadlab.scenario, loadlab.load, loadlab.load.client, loadlab.load.ledger\n"
        "import loadlab.load.sse, loadlab.load.player, loadlab.load.curves\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('gevent', 'locust'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""


def test_the_transport_is_chosen_once_by_the_context() -> None:
    assert _context().transport == "http" and _context().lambda_function is None
    # --lambda-function: the same sessions against a function, so runs compare
    forced = _context(lambda_function="agent-fn")
    assert forced.transport == "lambda" and forced.lambda_function == "agent-fn"
    # a scenario whose target is a Lambda function chooses it without being told
    on_lambda = LoadContext(
        scenario=parse_scenario(
            {"name": "l", "target": {"protocol": "lambda", "function": "from-scenario"}}
        ),
        target_url="http://127.0.0.1:1",
        sink=ListSink(),
    )
    assert on_lambda.transport == "lambda" and on_lambda.lambda_function == "from-scenario"
