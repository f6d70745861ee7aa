"""Pure translation between OpenAI chat completions and Anthropic Messages.

Kept apart from the HTTP adapter so the inbound `/v1/messages` dialect can use
the same mapping tables in the other direction.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..types import JSON

DEFAULT_MAX_TOKENS = 4096

# A chat body may carry the client's own Messages fields under this key (the
# inbound /v1/messages dialect sets it); only an Anthropic upstream reads them,
# every other adapter is sent the body without it.
NATIVE_KEY = "anthropic_native"
NATIVE_FIELDS = ("system", "messages", "tools", "thinking", "top_k")

STOP_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _image_block(part: JSON) -> JSON:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        header, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": header, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSON] = []
    for part in content or []:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(_image_block(part))
    return blocks


def _tool_choice(choice: Any) -> JSON | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": choice["function"]["name"]}
    return None


def request_to_anthropic(body: JSON) -> JSON:
    """OpenAI chat request -> Anthropic Messages request."""
    system_parts: list[str] = []
    messages: list[JSON] = []

    def append(role: str, blocks: list[JSON]) -> None:
        # Anthropic wants strictly alternating roles; merge neighbours.
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})

    for message in body.get("messages", []):
        role = message.get("role")
        if role in ("system", "developer"):
            system_parts.append(_text_of(message.get("content")))
        elif role == "user":
            append("user", _content_blocks(message.get("content")))
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                try:
                    arguments = orjson.loads(function.get("arguments") or "{}")
                except orjson.JSONDecodeError:
                    arguments = {"_raw": function.get("arguments")}
                blocks.append(
                    {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments}
                )
            append("assistant", blocks)
        elif role == "tool":
            append(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": message.get("tool_call_id"),
                        "content": _text_of(message.get("content")),
                    }
                ],
            )

    request: JSON = {
        "model": body["model"],
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system_parts:
        request["system"] = "\n\n".join(part for part in system_parts if part)
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            request[key] = body[key]
    stop = body.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        request["tools"] = [
            {
                "name": tool["function"]["name"],
                "description": tool["function"].get("description", ""),
                "input_schema": tool["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for tool in body["tools"]
            if tool.get("type") == "function"
        ]
        choice = _tool_choice(body.get("tool_choice"))
        if choice:
            request["tool_choice"] = choice
    if body.get("user"):
        request["metadata"] = {"user_id": str(body["user"])}
    if body.get("stream"):
        request["stream"] = True
    native = body.get(NATIVE_KEY)
    if isinstance(native, dict):
        # The client spoke Messages itself: its own blocks keep thinking signatures
        # and cache_control marks that the chat form has no place for.
        request.update({key: value for key, value in native.items() if key in NATIVE_FIELDS})
    return request


def usage_to_openai(usage: JSON) -> JSON:
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cached + int(usage.get("cache_creation_input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    result: JSON = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if cached:
        result["prompt_tokens_details"] = {"cached_tokens": cached}
    return result


def response_to_openai(response: JSON) -> JSON:
    """Anthropic Messages response -> OpenAI chat completion."""
    text_parts: list[str] = []
    tool_calls: list[JSON] = []
    thinking: list[JSON] = []
    for block in response.get("content", []):
        if block.get("type") in ("thinking", "redacted_thinking"):
            thinking.append(block)
        elif block.get("type") == "text":
            text_parts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input", {})).decode()},
                }
            )
    message: JSON = {"role": "assistant", "content": "".join(text_parts) if text_parts or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking:
        # `reasoning_content` as DeepSeek and vLLM name it; the blocks themselves
        # (with signatures) so an Anthropic-speaking client can send them back.
        message["reasoning_content"] = "".join(b.get("thinking", "") for b in thinking)
        message["thinking_blocks"] = thinking
    return {
        "id": response.get("id", "msg"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": response.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": STOP_REASONS.get(response.get("stop_reason") or "end_turn", "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage_to_openai(response.get("usage") or {}),
    }


class StreamTranslator:
    """Anthropic stream events -> OpenAI chunk payloads, one event at a time."""

    def __init__(self) -> None:
        self.id = "chatcmpl-anthropic"
        self.model = ""
        self.created = int(time.time())
        self.usage: JSON = {}
        self.tool_index: dict[int, int] = {}

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }
        )

    def feed(self, event: JSON) -> list[bytes]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message", {})
            self.id = message.get("id", self.id)
            self.model = message.get("model", "")
            self.usage.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block", {})
            if block.get("type") == "redacted_thinking":
                return [self._chunk({"redacted_thinking": block.get("data", "")})]
            if block.get("type") == "tool_use":
                index = len(self.tool_index)
                self.tool_index[event.get("index", 0)] = index
                call = {
                    "index": index,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta", {})
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "thinking_delta":
                return [self._chunk({"reasoning_content": delta.get("thinking", "")})]
            if delta.get("type") == "signature_delta":
                return [self._chunk({"thinking_signature": delta.get("signature", "")})]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(event.get("index", 0), 0)
                call = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            self.usage.update(event.get("usage") or {})
            reason = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, STOP_REASONS.get(reason or "end_turn", "stop"))]
        if kind == "message_stop":
            usage_chunk = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_to_openai(self.usage),
            }
            return [orjson.dumps(usage_chunk)]
        return []
