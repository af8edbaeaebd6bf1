"""AgentConfig from environment variables: defaults, parsing, and errors that name the fix."""

from __future__ import annotations

import pytest

from loadlab.embedded.agent.config import AgentConfig
from loadlab.errors import ConfigError

SECRET = "s" * 40
BASE = {"LOADLAB_JWT_SECRET": SECRET, "LOADLAB_AGENT_LLM_URL": "http://127.0.0.1:8001/"}


def test_defaults() -> None:
    config = AgentConfig.from_env(BASE)
    assert config.llm_url == "http://127.0.0.1:8001"
    assert config.table == "loadlab-checkpoints" and config.dynamodb_endpoint is None
    assert config.mode == "correct" and config.time_scale == 1.0
    assert config.init_delay_s == pytest.approx(0.8)
    assert config.instance_id.startswith("agent-")


def test_every_variable_is_read() -> None:
    config = AgentConfig.from_env(
        BASE
        | {
            "LOADLAB_AGENT_DYNAMODB_ENDPOINT": "http://127.0.0.1:4566",
            "LOADLAB_AGENT_TABLE": "my-table",
            "LOADLAB_AGENT_LLM_MODEL": "gpt-sim",
            "LOADLAB_AGENT_LLM_MAX_ATTEMPTS": "5",
            "LOADLAB_AGENT_LLM_TIMEOUT_S": "2.5",
            "LOADLAB_AGENT_LLM_MAX_RETRY_WAIT_S": "0",
            "LOADLAB_AGENT_LLM_MAX_TOKENS": "40",
            "LOADLAB_TIME_SCALE": "0.01",
            "LOADLAB_AGENT_INIT_MS": "1500",
            "LOADLAB_AGENT_INSTANCE_ID": "pod-3f2a",
            "LOADLAB_AGENT_MODE": "no_idempotency",
            "LOADLAB_AGENT_SHUTDOWN_GRACE_S": "3",
            "LOADLAB_AGENT_CACHE_SIZE": "7",
        }
    )
    assert config == AgentConfig(
        jwt_secret=SECRET,
        llm_url="http://127.0.0.1:8001",
        dynamodb_endpoint="http://127.0.0.1:4566",
        table="my-table",
        llm_model="gpt-sim",
        llm_max_attempts=5,
        llm_timeout_s=2.5,
        llm_max_retry_wait_s=0.0,
        llm_max_tokens=40,
        time_scale=0.01,
        init_ms=1500.0,
        instance_id="pod-3f2a",
        mode="no_idempotency",
        shutdown_grace_s=3.0,
        cache_size=7,
    )
    assert config.init_delay_s == pytest.approx(0.015)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOADLAB_JWT_SECRET", ""),
        ("LOADLAB_JWT_SECRET", "short"),
        ("LOADLAB_AGENT_LLM_URL", ""),
        ("LOADLAB_AGENT_LLM_URL", "127.0.0.1:8001"),
        ("LOADLAB_AGENT_LLM_MAX_ATTEMPTS", "0"),
        ("LOADLAB_AGENT_LLM_MAX_ATTEMPTS", "three"),
        ("LOADLAB_AGENT_LLM_TIMEOUT_S", "-1"),
        ("LOADLAB_TIME_SCALE", "0"),
        ("LOADLAB_TIME_SCALE", "nan"),
        ("LOADLAB_AGENT_INIT_MS", "-5"),
        ("LOADLAB_AGENT_TABLE", "ab"),
        ("LOADLAB_AGENT_TABLE", "bad/name"),
        ("LOADLAB_AGENT_DYNAMODB_ENDPOINT", "localhost:4566"),
        ("LOADLAB_AGENT_MODE", "chaotic"),
        ("LOADLAB_AGENT_CACHE_SIZE", "0"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_fix(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AgentConfig.from_env(BASE | {variable: value})
    assert variable in str(caught.value)
    assert caught.value.hint
    assert caught.value.exit_code == 2


def test_the_secret_is_never_shown() -> None:
    config = AgentConfig.from_env(BASE)
    assert SECRET not in repr(config) and SECRET not in str(config)
    with pytest.raises(ConfigError) as caught:
        AgentConfig(jwt_secret="tiny-secret", llm_url="http://127.0.0.1:1")
    assert "tiny-secret" not in str(caught.value)
