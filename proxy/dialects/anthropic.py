"""Anthropic Messages (what Claude Code and the `anthropic` SDKs send) <-> chat completions.

    request_to_chat      Messages request   -> OpenAI chat body for `run_chat`
    message_from_chat    chat completion    -> Messages response
    MessageEvents        chat chunks        -> Messages stream events

The upstream side (`providers/anthropic_format.py`) maps the other way for an
Anthropic upstream; its tables are reused here so the two stay one mapping.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from ..errors import GatewayError, InvalidRequest, anthropic_sse_error_event
from ..providers.anthropic_format import NATIVE_KEY, STOP_REASONS
from ..tokencount import estimate_text_tokens
from ..types import JSON

# chat finish_reason -> Anthropic stop_reason: the first Anthropic reason of each.
FINISH_REASONS: dict[str, str] = {v: k for k, v in reversed(STOP_REASONS.items())} | {"function_call": "tool_use"}

# Concrete Claude names a client may send that the config does not know: the
# family picks the tier (config `routing.aliases` win over this).
CLAUDE_FAMILY_TIERS: tuple[tuple[str, str], ...] = (("opus", "L3"), ("sonnet", "L2"), ("haiku", "L1"))


def claude_fallback(model: str) -> str | None:
    """The virtual model an unknown `claude-*` name stands for, or None if it is not one."""
    if not model.startswith("claude"):
        return None
    for family, tier in CLAUDE_FAMILY_TIERS:
        if family in model:
            return tier
    return "auto"


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_request")


def _text_of(blocks: Any, param: str) -> str:
    if isinstance(blocks, str):
        return blocks
    if not isinstance(blocks, list):
        raise _bad(f"{param} must be a string or an array of text blocks", param)
    parts = []
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise _bad(f"{param}[{index}] must be a text block", f"{param}[{index}]")
        parts.append(block["text"])
    return "\n\n".join(parts)


def _image_part(block: JSON, param: str) -> JSON:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad(f"{param}.source is required", f"{param}.source")
    if source.get("type") == "base64":
        return {
            "type": "image_url",
            "image_url": {"url": f"data:{source.get('media_type')};base64,{source.get('data')}"},
        }
    if source.get("type") == "url":
        return {"type": "image_url", "image_url": {"url": source.get("url")}}
    raise _bad(f"{param}.source.type {source.get('type')!r} is not supported; send base64 or url", f"{param}.source")


def _user_parts(block: JSON, param: str) -> list[JSON]:
    kind = block.get("type")
    if kind == "text":
        return [{"type": "text", "text": str(block.get("text", ""))}]
    if kind == "image":
        return [_image_part(block, param)]
    if kind == "document":
        source = block.get("source") or {}
        if source.get("type") == "text":
            return [{"type": "text", "text": str(source.get("data", ""))}]
        raise _bad(f"{param}: only text documents are supported by this gateway", param)
    raise _bad(f"{param}: content block type {kind!r} is not supported here", param)


def _tool_result(block: JSON, param: str) -> tuple[JSON, list[JSON]]:
    """A tool message, plus image parts that chat tool messages cannot carry."""
    content = block.get("content")
    texts: list[str] = []
    images: list[JSON] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for index, part in enumerate(content):
            if not isinstance(part, dict):
                raise _bad(f"{param}.content[{index}] must be an object", f"{param}.content")
            if part.get("type") == "image":
                images.append(_image_part(part, f"{param}.content[{index}]"))
            else:
                texts.extend(p["text"] for p in _user_parts(part, f"{param}.content[{index}]") if p["type"] == "text")
    text = "\n".join(texts)
    if block.get("is_error"):
        text = "[tool error] " + text
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str):
        raise _bad(f"{param}.tool_use_id is required", f"{param}.tool_use_id")
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _user_messages(content: Any, param: str) -> list[JSON]:
    """Tool results first (chat wants them right after the tool calls), then the rest."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools: list[JSON] = []
    parts: list[JSON] = []
    for index, block in enumerate(content):
        where = f"{param}[{index}]"
        if block.get("type") == "tool_result":
            message, images = _tool_result(block, where)
            tools.append(message)
            parts.extend(images)
        else:
            parts.extend(_user_parts(block, where))
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        user: JSON = {"role": "user", "content": "\n\n".join(p["text"] for p in parts) if only_text else parts}
        return [*tools, user]
    return tools


def _assistant_message(content: Any, param: str) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSON] = []
    for index, block in enumerate(content):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": arguments},
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue  # a chat upstream has nowhere to take them back
        else:
            raise _bad(f"{param}[{index}]: content block type {kind!r} is not supported here", f"{param}[{index}]")
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(tools: Any) -> list[JSON]:
    if not isinstance(tools, list):
        raise _bad("tools must be an array", "tools")
    result = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _bad(f"tools[{index}] must be an object with a name", f"tools[{index}]")
        if tool.get("type") not in (None, "custom"):
            raise _bad(
                f"tools[{index}]: server tool {tool.get('type')!r} is not supported by this gateway; send custom tools",
                f"tools[{index}]",
            )
        function: JSON = {
            "name": tool["name"],
            "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        result.append({"type": "function", "function": function})
    return result


def _tool_choice(choice: Any) -> Any:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _bad("tool_choice must be {'type': 'auto' | 'any' | 'none' | 'tool'}", "tool_choice")


def request_to_chat(body: JSON) -> JSON:
    """Messages request -> chat body. Raises `InvalidRequest` naming the bad field."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required", param="model", code="missing_required_parameter")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest(
            "'max_tokens' is required and must be a positive integer", param="max_tokens", code="invalid_request"
        )
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise _bad("'messages' must be a non-empty array", "messages")

    messages: list[JSON] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text_of(body["system"], "system")})
    for index, message in enumerate(raw_messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
            raise _bad(f"{param}.role must be 'user', 'assistant' or 'system'", f"{param}.role")
        content = message.get("content")
        if not isinstance(content, (str, list)) or (
            isinstance(content, list) and not all(isinstance(b, dict) for b in content)
        ):
            raise _bad(f"{param}.content must be a string or an array of content blocks", f"{param}.content")
        if message["role"] == "system":
            # Claude Code sends system messages mid-conversation (a beta); chat has them too.
            messages.append({"role": "system", "content": _text_of(content, f"{param}.content")})
        elif message["role"] == "user":
            messages.extend(_user_messages(content, f"{param}.content"))
        else:
            messages.append(_assistant_message(content, f"{param}.content"))

    chat: JSON = {"model": model, "messages": messages, "max_tokens": max_tokens}
    for key in ("temperature", "top_p"):
        if isinstance(body.get(key), (int, float)):
            chat[key] = body[key]
    stops = body.get("stop_sequences")
    if stops:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _bad("stop_sequences must be an array of strings", "stop_sequences")
        chat["stop"] = stops
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
        choice = body.get("tool_choice")
        if choice is not None:
            chat["tool_choice"] = _tool_choice(choice)
            if isinstance(choice, dict) and choice.get("disable_parallel_tool_use"):
                chat["parallel_tool_calls"] = False
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    chat[NATIVE_KEY] = native_fields(body)
    return chat


def native_fields(body: JSON) -> JSON:
    """The request's own Messages fields, for when the route ends at an Anthropic upstream.

    They keep what the chat form drops: `cache_control` marks and thinking
    blocks with their signatures. System messages between turns (a
    beta the gateway does not forward) are folded into `system`. Thinking is
    passed on in its GA form (`enabled` with a budget); other forms need beta
    headers, so they are left out along with earlier thinking blocks.
    """
    system = body.get("system") or []
    blocks: list[JSON] = [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
    thinking = body.get("thinking")
    keep_thinking = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    messages: list[JSON] = []
    for message in body["messages"]:
        if message["role"] == "system":
            text = _text_of(message["content"], "messages")
            blocks.append({"type": "text", "text": text})
            continue
        content = message["content"]
        if not keep_thinking and isinstance(content, list):
            content = [b for b in content if b.get("type") not in ("thinking", "redacted_thinking")]
            if not content:
                continue
        messages.append({**message, "content": content})
    native: JSON = {"messages": messages}
    if blocks:
        native["system"] = blocks
    if body.get("tools"):
        native["tools"] = body["tools"]
    if keep_thinking:
        native["thinking"] = thinking
    if isinstance(body.get("top_k"), int):
        native["top_k"] = body["top_k"]
    return native


def usage_from_chat(usage: JSON | None) -> JSON:
    """OpenAI usage -> Anthropic's, where `input_tokens` excludes cache reads."""
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    result: JSON = {"input_tokens": max(0, prompt - cached), "output_tokens": int(usage.get("completion_tokens") or 0)}
    result["cache_read_input_tokens"] = cached
    result["cache_creation_input_tokens"] = 0
    return result


def _tool_input(arguments: str | None) -> JSON:
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


def tool_use_id(call_id: Any) -> str:
    return call_id if isinstance(call_id, str) and call_id else "toolu_" + uuid.uuid4().hex[:24]


def message_from_chat(response: JSON, *, message_id: str) -> JSON:
    """Chat completion -> Messages response; `model` is the model that answered."""
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[JSON] = []
    if message.get("thinking_blocks"):
        content.extend(message["thinking_blocks"])  # an Anthropic upstream's own, signatures included
    elif message.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": tool_use_id(call.get("id")),
                "name": function.get("name"),
                "input": _tool_input(function.get("arguments")),
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": response.get("model", ""),
        "content": content,
        "stop_reason": FINISH_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage_from_chat(response.get("usage")),
    }


def _event(kind: str, data: JSON) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


class MessageEvents:
    """Chat chunks -> Anthropic stream events, one chunk at a time.

    Blocks open as their kind of delta first arrives (text, or one tool call per
    chat tool index) and close when another begins or the stream ends.
    """

    def __init__(self, *, message_id: str, model: str, input_tokens: int) -> None:
        self.message_id = message_id
        self.model = model
        self.input_tokens = input_tokens
        self.block = -1
        self.open_kind: str | None = None
        self.tool_blocks: dict[int, int] = {}
        self.finish_reason: str | None = None
        self.usage: JSON | None = None
        self.output_chars: list[str] = []

    def start(self) -> bytes:
        message: JSON = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        return _event("message_start", {"message": message}) + _event("ping", {})

    def _open(self, kind: str, block: JSON) -> bytes:
        out = self._close()
        self.block += 1
        self.open_kind = kind
        return out + _event("content_block_start", {"index": self.block, "content_block": block})

    def _close(self) -> bytes:
        if self.open_kind is None:
            return b""
        self.open_kind = None
        return _event("content_block_stop", {"index": self.block})

    def feed(self, chunk: JSON) -> bytes:
        out = b""
        if chunk.get("model"):
            self.model = chunk["model"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            thinking = delta.get("reasoning_content")
            if thinking:
                if self.open_kind != "thinking":
                    out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                out += _event(
                    "content_block_delta",
                    {"index": self.block, "delta": {"type": "thinking_delta", "thinking": thinking}},
                )
            if delta.get("thinking_signature") and self.open_kind == "thinking":
                signature = {"type": "signature_delta", "signature": delta["thinking_signature"]}
                out += _event("content_block_delta", {"index": self.block, "delta": signature})
            if delta.get("redacted_thinking"):
                out += self._open(
                    "redacted_thinking", {"type": "redacted_thinking", "data": delta["redacted_thinking"]}
                )
            text = delta.get("content")
            if text:
                self.output_chars.append(text)
                if self.open_kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out += _event(
                    "content_block_delta", {"index": self.block, "delta": {"type": "text_delta", "text": text}}
                )
            for call in delta.get("tool_calls") or []:
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _tool_delta(self, call: JSON) -> bytes:
        out = b""
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if index not in self.tool_blocks:
            block: JSON = {
                "type": "tool_use",
                "id": tool_use_id(call.get("id")),
                "name": function.get("name") or "",
                "input": {},
            }
            out += self._open("tool_use", block)
            self.tool_blocks[index] = self.block
        arguments = function.get("arguments")
        if arguments:
            self.output_chars.append(arguments)
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out += _event("content_block_delta", {"index": self.tool_blocks[index], "delta": delta})
        return out

    def finish(self) -> bytes:
        usage = (
            usage_from_chat(self.usage)
            if self.usage
            else {
                "input_tokens": self.input_tokens,
                "output_tokens": estimate_text_tokens("".join(self.output_chars)),
            }
        )
        stop_reason = FINISH_REASONS.get(self.finish_reason or "stop", "end_turn")
        return (
            self._close()
            + _event("message_delta", {"delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": usage})
            + _event("message_stop", {})
        )

    def fail(self, error: GatewayError) -> bytes:
        return anthropic_sse_error_event(error)
