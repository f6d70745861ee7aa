"""One question from `aigw chat/code/diff` to the gateway, with the user's working context.

The request is built as the seed's `/v1/mcp-cli` call, `{mode, message, context}`,
and answered in its shape, `{message, patch, model, tokens, cost}`. It travels
as a chat completion: the mode's instructions as the system message, the
context and the question as the user message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from .client import JSON, ChatStream, GatewayClient, Reply
from .context import WorkContext

Mode = Literal["chat", "code", "diff"]

SYSTEM_PROMPTS: dict[Mode, str] = {
    "chat": (
        "You are a concise assistant in a developer's terminal. Answer in Markdown; "
        "put code in fenced blocks with a language."
    ),
    "code": (
        "You review code in a developer's terminal. Follow the instruction about the given file(s): "
        "bugs and risks first, then concrete suggestions with short fenced code snippets. Markdown, no filler."
    ),
    "diff": (
        "You change code for a developer who will apply your answer with `git apply`. "
        "Answer with one or two sentences saying what you changed, then exactly one unified diff "
        "in a ```diff fenced block: headers `--- a/PATH` and `+++ b/PATH` with the path given, "
        "hunks with 3 lines of unchanged context copied exactly from the file, nothing after the block."
    ),
}


@dataclass
class Answer:
    """The seed's `/v1/mcp-cli` response shape."""

    message: str
    model: str
    tokens: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0, "total": 0})
    cost: float | None = None
    patch: str | None = None
    tier: str | None = None

    def to_json(self) -> JSON:
        return {"message": self.message, "patch": self.patch, "model": self.model, "tokens": self.tokens,
                "cost": self.cost}


def messages_for(mode: Mode, message: str, context: WorkContext) -> list[JSON]:
    return [
        {"role": "system", "content": SYSTEM_PROMPTS[mode]},
        {"role": "user", "content": f"{context.prompt_text()}\n\n{message}"},
    ]


def _tokens(usage: JSON | None) -> dict[str, int]:
    usage = usage or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {"input": prompt, "output": completion, "total": int(usage.get("total_tokens") or prompt + completion)}


def _cost(headers: dict[str, str]) -> float | None:
    try:
        return float(headers["x-gateway-cost"])
    except (KeyError, ValueError):
        return None


def answer_from(reply: Reply) -> Answer:
    choices = reply.body.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content") or ""
    return Answer(
        message=content,
        model=reply.headers.get("x-gateway-model") or str(reply.body.get("model") or "?"),
        tokens=_tokens(reply.body.get("usage")),
        cost=_cost(reply.headers),
        tier=reply.headers.get("x-gateway-tier"),
    )


def ask(client: GatewayClient, mode: Mode, message: str, context: WorkContext, *, model: str,
        headers: dict[str, str] | None = None) -> Answer:
    body: dict[str, Any] = {"model": model, "messages": messages_for(mode, message, context)}
    return answer_from(client.post("/v1/chat/completions", body, headers))


@contextmanager
def ask_streaming(client: GatewayClient, messages: list[JSON], *, model: str,
                  headers: dict[str, str] | None = None) -> Iterator[ChatStream]:
    with client.stream_chat({"model": model, "messages": messages}, headers) as stream:
        yield stream


def answer_from_stream(stream: ChatStream) -> Answer:
    return Answer(
        message=stream.text,
        model=stream.headers.get("x-gateway-model") or "?",
        tokens=_tokens(stream.usage),
        cost=_cost(stream.headers),
        tier=stream.headers.get("x-gateway-tier"),
    )
