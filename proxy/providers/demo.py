"""The built-in `demo` provider: a deterministic local model priced at $0.

It lets a keyless, Redis-less first start answer real requests (streaming
included) so a newcomer sees the whole path work before adding a key. Its
answers say plainly that they come from the demo model.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import orjson

from ..config import ProviderConfig
from ..tokencount import estimate_messages_tokens, estimate_text_tokens
from ..types import JSON
from .base import Provider

_SENTENCES = (
    "Start with the smallest change that could work, then measure it.",
    "A clear name often removes the need for a comment.",
    "Tests that talk to real services catch what mocks hide.",
    "Cheap models answer most everyday questions well.",
    "Escalate to a larger model only when the answer falls short.",
    "Caching identical requests turns repeated spend into zero.",
    "Keep the hot path free of blocking calls.",
    "Logs you can query with SQL answer questions dashboards never planned for.",
)


def _last_user_text(body: JSON) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def demo_answer(body: JSON) -> str:
    question = " ".join(_last_user_text(body).split())
    digest = hashlib.sha256(question.encode()).digest()
    picks = [_SENTENCES[digest[i] % len(_SENTENCES)] for i in range(3)]
    shown = question if len(question) <= 80 else question[:77] + "..."
    return (
        f'[demo model] You asked: "{shown}". {" ".join(picks)} '
        "Set OPENAI_API_KEY, ANTHROPIC_API_KEY or OPENROUTER_API_KEY, or run Ollama, for real answers."
    )


class DemoProvider(Provider):
    def __init__(self, name: str, config: ProviderConfig, chunk_delay: float = 0.0) -> None:
        super().__init__(name, config)
        self.chunk_delay = chunk_delay

    def _usage(self, body: JSON, text: str) -> JSON:
        prompt = estimate_messages_tokens(body.get("messages") or [], body.get("tools"))
        completion = estimate_text_tokens(text)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def complete(self, body: JSON) -> JSON:
        text = demo_answer(body)
        return {
            "id": "chatcmpl-demo-" + hashlib.sha1(text.encode()).hexdigest()[:12],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": self._usage(body, text),
        }

    async def stream(self, body: JSON) -> AsyncIterator[bytes]:
        text = demo_answer(body)
        base = {
            "id": "chatcmpl-demo-" + hashlib.sha1(text.encode()).hexdigest()[:12],
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
        }
        yield orjson.dumps(
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        )
        words = text.split(" ")
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            yield orjson.dumps({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        yield orjson.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        yield orjson.dumps({**base, "choices": [], "usage": self._usage(body, text)})
