"""Endpoint adapters: the requests they build and how they read events."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from load_testkit import ManualClock

from loadlab.load.adapters import (
    AgentFailure,
    ChatMessage,
    Malformed,
    OpenAIChatAdapter,
    ReferenceAdapter,
    TokenText,
    TurnRequest,
    adapter_for,
)
from loadlab.load.client import AgentClient
from loadlab.load.payloads import AgentDone, AgentMeta
from loadlab.load.sse import SSEEvent
from loadlab.load.transport import MockResponse, MockTransport

REQUEST = TurnRequest(
    session_id="a/b c",
    turn_index=2,
    message="Compare P-0001 and P-0002",
    idempotency_key="k-2",
    token="secret-token",
    history=(ChatMessage("user", "Show me shoes"), ChatMessage("assistant", "Here are shoes.")),
)


def _data(content: str | None = None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _chunk(content: str | None = None, finish: str | None = None) -> bytes:
    return f"data: {_data(content, finish)}\n\n".encode()


def test_reference_request_quotes_the_session_id() -> None:
    prepared = ReferenceAdapter().prepare("http://h:1", REQUEST)
    assert prepared.url == "http://h:1/v1/sessions/a%2Fb%20c/turns"
    assert json.loads(prepared.body) == {"turn": 2, "message": "Compare P-0001 and P-0002"}
    assert "secret-token" not in repr(prepared)


@given(
    st.text(alphabet=st.sampled_from("aZ09_.~-/ %+?#é\x00"), max_size=8)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
)
def test_reference_path_is_the_quoted_session_id(session_id: str) -> None:
    request = TurnRequest(session_id=session_id, turn_index=1, message="m", idempotency_key="k")
    url = ReferenceAdapter().prepare("http://h:1", request).url
    assert url == f"http://h:1/v1/sessions/{quote(session_id, safe='')}/turns"


@pytest.mark.parametrize(
    "message", ['He said "add P-0042"', "back\\slash", "café ☕ 🛒", "tab\there\nnewline\x00", ""]
)
def test_reference_body_is_exactly_the_json_encoding(message: str) -> None:
    request = TurnRequest(session_id="s", turn_index=12, message=message, idempotency_key="k")
    body = ReferenceAdapter().prepare("http://h:1", request).body
    assert body == json.dumps({"turn": 12, "message": message}).encode()


def test_reference_without_token_sends_no_authorization() -> None:
    request = TurnRequest(session_id="s", turn_index=1, message="hi", idempotency_key="k")
    assert "Authorization" not in ReferenceAdapter().prepare("http://h:1", request).headers


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (SSEEvent("token", '{"text": "hi"}'), TokenText("hi")),
        (
            SSEEvent("meta", '{"instance_id": "i-1", "cold": true, "init_ms": 5}'),
            AgentMeta(instance_id="i-1", cold=True, init_ms=5.0),
        ),
        (
            SSEEvent("error", '{"kind": "llm_unavailable", "message": "down"}'),
            AgentFailure("llm_unavailable", "down"),
        ),
        (SSEEvent("ping", "{}"), None),
        (SSEEvent("message", "anything"), None),
    ],
)
def test_reference_decode(event: SSEEvent, expected: object) -> None:
    assert ReferenceAdapter().decode(event) == expected


def test_reference_decode_done_and_malformed() -> None:
    adapter = ReferenceAdapter()
    decoded = adapter.decode(
        SSEEvent(
            "done",
            '{"state": {"turn": 2, "cart": {"P-0002": 1, "P-0001": 2}, '
            '"version": 4}, "replayed": true}',
        )
    )
    assert isinstance(decoded, AgentDone)
    assert decoded.replayed
    assert decoded.state is not None
    assert decoded.state.cart == (("P-0001", 2), ("P-0002", 1))
    assert isinstance(adapter.decode(SSEEvent("done", "[1, 2]")), Malformed)
    assert isinstance(adapter.decode(SSEEvent("meta", "{")), Malformed)
    bad_cart = SSEEvent("done", '{"state": {"turn": 1, "cart": {"P-0001": "x"}}}')
    assert isinstance(adapter.decode(bad_cart), Malformed)


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://llm:9", "http://llm:9/v1/chat/completions"),
        ("http://llm:9/v1/", "http://llm:9/v1/chat/completions"),
    ],
)
def test_openai_request_carries_the_conversation(base: str, url: str) -> None:
    adapter = OpenAIChatAdapter(model="sim-1", api_key="sk-test")
    prepared = adapter.prepare(base, REQUEST)
    assert prepared.url == url
    body = json.loads(prepared.body)
    assert body["model"] == "sim-1" and body["stream"] is True
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][-1]["content"] == REQUEST.message
    assert prepared.headers["Authorization"] == "Bearer sk-test"
    assert "sk-test" not in repr(adapter) + repr(prepared)


def test_openai_decode() -> None:
    adapter = OpenAIChatAdapter()
    assert adapter.decode(SSEEvent("message", _data("Hel"))) == TokenText("Hel")
    assert adapter.decode(SSEEvent("message", _data(None))) is None
    assert adapter.decode(SSEEvent("message", _data(None, "stop"))) == AgentDone()
    assert adapter.decode(SSEEvent("message", "[DONE]")) == AgentDone()
    assert adapter.decode(SSEEvent("message", '{"choices": []}')) is None
    assert isinstance(adapter.decode(SSEEvent("message", "nope")), Malformed)
    assert isinstance(adapter.decode(SSEEvent("message", '{"id": 1}')), Malformed)
    failure = adapter.decode(
        SSEEvent("message", '{"error": {"type": "rate_limit", "message": "x"}}')
    )
    assert failure == AgentFailure("rate_limit", "x")


def test_openai_stream_through_the_client(clock: ManualClock) -> None:
    chunks = [
        b'data: {"choices": [{"delta": {"role": "assistant"}}]}\n\n',
        _chunk("Hi"),
        _chunk(" there"),
        _chunk(None, "stop"),
        b"data: [DONE]\n\n",
    ]
    transport = MockTransport(lambda r: MockResponse(chunks=chunks))
    client = AgentClient(
        transport=transport,
        adapter=OpenAIChatAdapter(),
        base_url="http://x:1",
        clock=clock,
        wall=clock,
    )
    result = client.send_turn(REQUEST)
    assert result.ok
    assert result.text == "Hi there"
    assert result.tokens == 2
    assert result.meta is None
    assert result.done == AgentDone()


def test_openai_stream_cut_before_done_is_a_reset(clock: ManualClock) -> None:
    transport = MockTransport(lambda r: MockResponse(chunks=[_chunk("Hi")]))
    client = AgentClient(
        transport=transport,
        adapter=OpenAIChatAdapter(),
        base_url="http://x:1",
        clock=clock,
        wall=clock,
    )
    assert client.send_turn(REQUEST).error_kind == "reset"


def test_adapter_for_protocols() -> None:
    assert isinstance(adapter_for("reference"), ReferenceAdapter)
    openai = adapter_for("openai", model="m")
    assert isinstance(openai, OpenAIChatAdapter)
    assert not openai.tracks_state and ReferenceAdapter().tracks_state


@pytest.mark.parametrize(
    "data",
    [
        '{"text":"Here "}',
        '{"text":"café ☕ 🛒"}',
        '{"text":""}',
        '{"text":"a\\nb"}',  # an escape: the JSON string is not its text
        '{"text":"say \\"hi\\""}',
        '{"text":"back\\\\slash"}',
        '{"text":"\\u00e9t\\u00e9"}',
        '{"text":"tab\there"}',  # a raw control character: not JSON at all
        '{"text":"a","text":"b"}',  # the last duplicate key wins
        '{"text":"x","extra":1}',
        '{"text":"x"} ',
        '{"text":"\u00a0nbsp\u2028"}',
        '{"text": "spaced"}',
        '{"text":1}',
    ],
)
def test_reference_token_reads_as_its_json(data: str) -> None:
    """Tokens of the usual shape skip the JSON parser; every token reads as JSON says."""
    decoded = ReferenceAdapter().decode(SSEEvent("token", data))
    try:
        text = json.loads(data)["text"]
    except ValueError:
        assert isinstance(decoded, Malformed)
        return
    if isinstance(text, str):
        assert decoded == TokenText(text)
    else:
        assert isinstance(decoded, Malformed)
