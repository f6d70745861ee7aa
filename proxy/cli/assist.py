"""One question from `aigw chat/code/diff` to the gateway's `/v1/mcp-cli`, with the user's context.

The request is the seed's `{mode, message, context: {cwd, files, gitStatus}}`
(files travel as `{path, content}` so a remote gateway sees them too), plus
`model` when the user chose one, `conversationId` for the interactive chat and
`stream` for answers shown as they are written. The answer is the seed's
`{message, patch, model, tokens, cost}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from .client import JSON, ChatStream, GatewayClient
from .context import WorkContext

Mode = Literal["chat", "code", "diff"]
ENDPOINT = "/v1/mcp-cli"

# Appended to the message in diff mode: the path the patch must name, so `git apply` finds the file.
DIFF_RULES = (
    "Answer with exactly one unified diff in a ```diff block with headers `--- a/{path}` and `+++ b/{path}`, "
    "hunks with 3 lines of unchanged context copied exactly from the file."
)


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
        return {
            "message": self.message,
            "patch": self.patch,
            "model": self.model,
            "tokens": self.tokens,
            "cost": self.cost,
        }


def request_body(
    mode: Mode,
    message: str,
    context: WorkContext | None,
    *,
    model: str | None = None,
    conversation_id: str | None = None,
) -> JSON:
    body: dict[str, Any] = {"mode": mode, "message": message}
    if context is not None:
        body["context"] = context.seed_json()
    if model:
        body["model"] = model
    if conversation_id:
        body["conversationId"] = conversation_id
    return body


def _tokens(usage: JSON | None) -> dict[str, int]:
    usage = usage or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {"input": prompt, "output": completion, "total": int(usage.get("total_tokens") or prompt + completion)}


def ask(client: GatewayClient, body: JSON) -> Answer:
    reply = client.post(ENDPOINT, body)
    tokens = reply.body.get("tokens") or {}
    cost = reply.body.get("cost")
    return Answer(
        message=str(reply.body.get("message") or ""),
        model=str(reply.body.get("model") or "?"),
        tokens={
            "input": int(tokens.get("input") or 0),
            "output": int(tokens.get("output") or 0),
            "total": int(tokens.get("total") or 0),
        },
        cost=float(cost) if cost is not None else None,
        patch=reply.body.get("patch"),
        tier=reply.headers.get("x-gateway-tier"),
    )


@contextmanager
def ask_streaming(client: GatewayClient, body: JSON) -> Iterator[ChatStream]:
    with client.stream(ENDPOINT, {**body, "stream": True}) as stream:
        yield stream


def answer_from_stream(stream: ChatStream) -> Answer:
    cost = stream.headers.get("x-gateway-cost")
    return Answer(
        message=stream.text,
        model=stream.headers.get("x-gateway-model") or "?",
        tokens=_tokens(stream.usage),
        cost=float(cost) if cost else None,
        tier=stream.headers.get("x-gateway-tier"),
    )
