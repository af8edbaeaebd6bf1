"""The OpenAI chat-completions wire format: request parsing and response bodies."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class BadRequest(ValueError):
    """A request the simulator answers with 400 ``invalid_request_error``."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """The parts of a chat-completions request the simulator acts on."""

    model: str
    prompt_tokens: int
    stream: bool
    include_usage: bool
    max_tokens: int | None


def estimate_tokens(text: str) -> int:
    """Rough token count, as providers' ~4 characters per token rule of thumb."""
    return max(1, math.ceil(len(text) / 4))


def _message_text(index: int, message: object) -> str:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise BadRequest(
            f"messages[{index}] must be an object with a string 'role'",
            code="invalid_message",
            param=f"messages[{index}]",
        )
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    raise BadRequest(
        f"messages[{index}].content must be a string, a list of parts or null",
        code="invalid_message",
        param=f"messages[{index}].content",
    )


def parse_chat_request(body: object, *, default_model: str) -> ChatRequest:
    """Validate a decoded JSON body; raises :class:`BadRequest` naming the bad field."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_body")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(
            "'messages' is required and must be a non-empty list",
            code="missing_messages",
            param="messages",
        )
    text = "\n".join(_message_text(i, m) for i, m in enumerate(messages))
    model = body.get("model", default_model)
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' must be a non-empty string", code="invalid_model", param="model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean", code="invalid_stream", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise BadRequest(
            "'stream_options' must be an object", code="invalid_stream", param="stream_options"
        )
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise BadRequest(
            f"'max_tokens' must be an integer >= 1, got {max_tokens!r}",
            code="invalid_max_tokens",
            param="max_tokens",
        )
    return ChatRequest(
        model=model,
        prompt_tokens=estimate_tokens(text),
        stream=stream,
        include_usage=options.get("include_usage") is True,
        max_tokens=max_tokens,
    )


def error_body(message: str, *, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """The ``usage`` object of a completion."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_body(
    *, id_: str, created: int, model: str, content: str, finish_reason: str, usage_: dict[str, int]
) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object."""
    return {
        "id": id_,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage_,
    }


def chunk_body(
    *,
    id_: str,
    created: int,
    model: str,
    delta: dict[str, str],
    finish_reason: str | None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` carrying a delta (or the final finish reason)."""
    return {
        "id": id_,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
