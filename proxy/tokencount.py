"""Offline token estimates for when an upstream reports no usage.

No tokenizer is downloaded at run time. The estimate follows the ~4 characters
per token rule of BPE vocabularies for Latin text, counts CJK characters as a
token each, and adds OpenAI's per-message framing overhead.
"""

from __future__ import annotations

from typing import Any

import orjson

_PER_MESSAGE = 4
_PER_REQUEST = 3


def estimate_text_tokens(text: str) -> int:
    if not text:
        return 0
    wide = sum(1 for char in text if ord(char) > 0x2E80)
    narrow = len(text) - wide
    return wide + (narrow + 3) // 4


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if part.get("type") == "text":
                    parts.append(str(part.get("text", "")))
                elif part.get("type") in ("image_url", "input_image", "image"):
                    parts.append("x" * 340)  # a low-detail image is ~85 tokens
        return "".join(parts)
    return ""


def estimate_messages_tokens(messages: list[dict[str, Any]], tools: list[Any] | None = None) -> int:
    total = _PER_REQUEST
    for message in messages:
        total += _PER_MESSAGE + estimate_text_tokens(_content_text(message.get("content")))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            total += estimate_text_tokens(str(function.get("name", "")) + str(function.get("arguments", "")))
    if tools:
        total += estimate_text_tokens(orjson.dumps(tools).decode())
    return total
