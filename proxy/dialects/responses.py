"""OpenAI Responses (`POST /v1/responses`, what newer OpenAI agents send) <-> chat completions.

    request_to_chat      Responses request (+ stored history) -> chat body, conversation so far
    response_from_chat   chat completion -> Response object
    output_messages      Response output items -> chat messages (what the store keeps)
    ResponseEvents       chat chunks -> Responses stream events

The common cases only: text, images, function tools and their calls, JSON
output formats. Hosted tools (web search, file search, computer use) need
OpenAI's servers; they are left out of the chat request (see `dropped_tools`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from ..errors import GatewayError, InvalidRequest
from ..tokencount import estimate_text_tokens
from ..types import JSON

INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _bad(message: str, param: str, code: str = "invalid_request") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


# -- request --------------------------------------------------------------------


def _part(part: Any, param: str) -> JSON:
    if not isinstance(part, dict):
        raise _bad(f"{param} must be an object", param)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise _bad(f"{param}: only images given by image_url (a URL or data URL) are supported here", param)
        image: JSON = {"url": url}
        if part.get("detail") in ("low", "high"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise _bad(f"{param}: content type {kind!r} is not supported by this gateway", param)


def _content(content: Any, role: str, param: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"{param} must be a string or an array of content parts", param)
    parts = [_part(part, f"{param}[{index}]") for index, part in enumerate(content)]
    if role != "user" or all(p["type"] == "text" for p in parts):
        if any(p["type"] != "text" for p in parts):
            raise _bad(f"{param}: only user messages may carry images", param)
        return "".join(p["text"] for p in parts) if role == "assistant" else "\n\n".join(p["text"] for p in parts)
    return parts


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    return orjson.dumps(output).decode()


def input_messages(items: Any) -> list[JSON]:
    """The `input` field as chat messages (system/developer become system)."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise _bad("'input' must be a string or an array of items", "input")
    messages: list[JSON] = []
    for index, item in enumerate(items):
        param = f"input[{index}]"
        if not isinstance(item, dict):
            raise _bad(f"{param} must be an object", param)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise _bad(f"{param}.role must be user, assistant, system or developer", f"{param}.role")
            chat_role = "system" if role == "developer" else role
            messages.append(
                {"role": chat_role, "content": _content(item.get("content"), chat_role, f"{param}.content")}
            )
        elif kind == "function_call":
            call = {
                "id": item.get("call_id") or _new_id("call_"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or "{}"},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise _bad(f"{param}.call_id is required", f"{param}.call_id")
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": _output_text(item.get("output"))}
            )
        elif kind == "reasoning":
            continue  # reasoning summaries are not replayed to a chat upstream
        else:
            raise _bad(f"{param}: item type {kind!r} is not supported by this gateway", f"{param}.type")
    return messages


def _function(tool: JSON, param: str) -> JSON:
    if not isinstance(tool.get("name"), str):
        raise _bad(f"{param}.name is required", f"{param}.name")
    function: JSON = {
        "name": tool["name"],
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tools(tools: Any) -> list[JSON]:
    """Function tools (a `namespace` group is flattened); hosted tools are left out, see `dropped_tools`."""
    if not isinstance(tools, list):
        raise _bad("'tools' must be an array", "tools")
    result = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"tools[{index}] must be an object", f"tools[{index}]")
        if tool.get("type") == "function":
            result.append(_function(tool, f"tools[{index}]"))
        elif tool.get("type") == "namespace":
            for inner, member in enumerate(tool.get("tools") or []):
                if isinstance(member, dict) and member.get("type") == "function":
                    result.append(_function(member, f"tools[{index}].tools[{inner}]"))
    return result


def dropped_tools(body: JSON) -> list[str]:
    """Hosted tools (web search, file search, ...) need OpenAI's servers; a chat upstream cannot run them.

    Agents such as Codex send them with every request, so they are left out
    (and named in a response header) rather than failing the whole request.
    """
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [str(t.get("type")) for t in tools if isinstance(t, dict) and t.get("type") not in ("function", "namespace")]


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _bad("tool_choice must be 'auto', 'none', 'required' or {'type': 'function', 'name': ...}", "tool_choice")


def _response_format(text: Any) -> JSON | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {key: fmt[key] for key in ("name", "schema", "strict", "description") if key in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise _bad(f"text.format type {fmt.get('type')!r} is not supported", "text.format")


def check_request(body: JSON) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required", param="model", code="missing_required_parameter")
    if body.get("input") is None:
        raise InvalidRequest("'input' is required", param="input", code="missing_required_parameter")
    if body.get("background"):
        raise _bad("background responses are not supported by this gateway", "background")
    if body.get("conversation") is not None:
        raise _bad("'conversation' is not supported here; chain turns with previous_response_id", "conversation")
    for key, types in (
        ("instructions", (str,)),
        ("max_output_tokens", (int,)),
        ("stream", (bool,)),
        ("temperature", (int, float)),
        ("top_p", (int, float)),
        ("store", (bool,)),
        ("previous_response_id", (str,)),
        ("metadata", (dict,)),
        ("user", (str,)),
    ):
        value = body.get(key)
        if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            raise InvalidRequest(f"'{key}' has the wrong type", param=key, code="invalid_type")


def request_to_chat(body: JSON, history: list[JSON]) -> tuple[JSON, list[JSON]]:
    """Responses request -> (chat body, the conversation's messages without instructions).

    `history` is the stored conversation up to `previous_response_id`. As in
    OpenAI's API, instructions of earlier responses are not carried over.
    """
    check_request(body)
    conversation = [*history, *input_messages(body["input"])]
    messages = (
        [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
    ) + conversation
    if not messages:
        raise _bad("'input' must not be empty", "input")
    chat: JSON = {"model": body["model"], "messages": messages}
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    for key in ("temperature", "top_p", "user"):
        if body.get(key) is not None:
            chat[key] = body[key]
    tools = _tools(body["tools"]) if body.get("tools") else []
    if tools:
        chat["tools"] = tools
        if body.get("tool_choice") is not None:
            chat["tool_choice"] = _tool_choice(body["tool_choice"])
        if body.get("parallel_tool_calls") is not None:
            chat["parallel_tool_calls"] = bool(body["parallel_tool_calls"])
    response_format = _response_format(body.get("text"))
    if response_format:
        chat["response_format"] = response_format
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat, conversation


# -- response -------------------------------------------------------------------


def skeleton(body: JSON, *, response_id: str, model: str, created_at: int | None = None) -> JSON:
    """A Response with the request's settings echoed, no output yet."""
    text = body.get("text") if isinstance(body.get("text"), dict) else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at or int(time.time()),
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": text or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def usage_from_chat(usage: JSON | None) -> JSON:
    usage = usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def _message_item(text: str, *, item_id: str, status: str = "completed") -> JSON:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


def _call_item(call_id: str, name: str, arguments: str, *, item_id: str, status: str = "completed") -> JSON:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def _finish(response: JSON, finish_reason: str | None, usage: JSON) -> JSON:
    reason = INCOMPLETE_REASONS.get(finish_reason or "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    response["usage"] = usage
    return response


def response_from_chat(chat: JSON, response: JSON) -> JSON:
    """Fill `response` (from `skeleton`) with a chat completion's answer."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[JSON] = []
    calls = message.get("tool_calls") or []
    if message.get("content") or message.get("refusal") or not calls:
        item = _message_item(message.get("content") or "", item_id=_new_id("msg_"))
        if message.get("refusal"):
            item["content"] = [{"type": "refusal", "refusal": message["refusal"]}]
        output.append(item)
    for call in calls:
        function = call.get("function") or {}
        output.append(
            _call_item(
                call.get("id") or _new_id("call_"),
                function.get("name") or "",
                function.get("arguments") or "",
                item_id=_new_id("fc_"),
            )
        )
    response["output"] = output
    return _finish(response, choice.get("finish_reason"), usage_from_chat(chat.get("usage")))


def output_messages(output: list[JSON]) -> list[JSON]:
    """A response's output as the chat messages a follow-up turn replays."""
    return input_messages([item for item in output if item.get("type") in ("message", "function_call")])


# -- streaming ------------------------------------------------------------------


class ResponseEvents:
    """Chat chunks -> Responses stream events (`event:` named, numbered in order).

    A message item opens with the first text and closes when a tool call
    starts; function-call items stay open until the end, so interleaved
    argument deltas of parallel calls land on the right item.
    """

    def __init__(self, response: JSON, *, input_tokens: int) -> None:
        self.response = response
        self.input_tokens = input_tokens
        self.sequence = 0
        self.output: list[JSON] = []
        self.open_message: int | None = None
        self.tool_items: dict[int, int] = {}
        self.open_tools: list[int] = []
        self.finish_reason: str | None = None
        self.usage: JSON | None = None

    def _event(self, kind: str, data: JSON) -> bytes:
        payload = {"type": kind, "sequence_number": self.sequence, **data}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def start(self) -> bytes:
        return self._event("response.created", {"response": self.response}) + self._event(
            "response.in_progress", {"response": self.response}
        )

    def _add(self, item: JSON) -> bytes:
        self.output.append(item)
        return self._event("response.output_item.added", {"output_index": len(self.output) - 1, "item": item})

    def _close_message(self) -> bytes:
        if self.open_message is None:
            return b""
        index, self.open_message = self.open_message, None
        item = self.output[index]
        part = item["content"][0]
        item["status"] = "completed"
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return (
            self._event("response.output_text.done", {**where, "text": part["text"], "logprobs": []})
            + self._event("response.content_part.done", {**where, "part": part})
            + self._event("response.output_item.done", {"output_index": index, "item": item})
        )

    def _close_tools(self) -> bytes:
        out = b""
        for index in self.open_tools:
            item = self.output[index]
            item["status"] = "completed"
            out += self._event(
                "response.function_call_arguments.done",
                {"item_id": item["id"], "output_index": index, "name": item["name"], "arguments": item["arguments"]},
            )
            out += self._event("response.output_item.done", {"output_index": index, "item": item})
        self.open_tools = []
        return out

    def _text(self, text: str) -> bytes:
        out = b""
        if self.open_message is None:
            item = _message_item("", item_id=_new_id("msg_"), status="in_progress")
            part = item["content"][0]
            item["content"] = []
            out += self._add(item)
            self.open_message = len(self.output) - 1
            item["content"].append(part)
            where = {"item_id": item["id"], "output_index": self.open_message, "content_index": 0}
            out += self._event("response.content_part.added", {**where, "part": {**part}})
        item = self.output[self.open_message]
        item["content"][0]["text"] += text
        where = {"item_id": item["id"], "output_index": self.open_message, "content_index": 0}
        return out + self._event("response.output_text.delta", {**where, "delta": text, "logprobs": []})

    def _tool(self, call: JSON) -> bytes:
        out = b""
        chat_index = int(call.get("index", 0))
        function = call.get("function") or {}
        if chat_index not in self.tool_items:
            out += self._close_message()
            item = _call_item(
                call.get("id") or _new_id("call_"),
                function.get("name") or "",
                "",
                item_id=_new_id("fc_"),
                status="in_progress",
            )
            out += self._add(item)
            self.tool_items[chat_index] = len(self.output) - 1
            self.open_tools.append(len(self.output) - 1)
        index = self.tool_items[chat_index]
        arguments = function.get("arguments")
        if arguments:
            item = self.output[index]
            item["arguments"] += arguments
            out += self._event(
                "response.function_call_arguments.delta",
                {"item_id": item["id"], "output_index": index, "delta": arguments},
            )
        return out

    def feed(self, chunk: JSON) -> bytes:
        out = b""
        if chunk.get("model"):
            self.response["model"] = chunk["model"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                out += self._tool(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def finish(self) -> tuple[bytes, JSON]:
        """The closing events, and the finished Response (to store)."""
        out = self._close_message() + self._close_tools()
        if not self.output:
            out += self._text("") + self._close_message()
        usage = (
            usage_from_chat(self.usage)
            if self.usage
            else usage_from_chat(
                {"prompt_tokens": self.input_tokens, "completion_tokens": estimate_text_tokens(self._output_text())}
            )
        )
        self.response["output"] = self.output
        final = _finish(self.response, self.finish_reason, usage)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": final}), final

    def _output_text(self) -> str:
        parts: list[str] = []
        for item in self.output:
            if item["type"] == "message":
                parts.extend(p.get("text", "") for p in item["content"])
            else:
                parts.append(item["arguments"])
        return "".join(parts)

    def fail(self, error: GatewayError) -> bytes:
        code = error.code or error.error_type
        self.response["status"] = "failed"
        self.response["output"] = self.output
        self.response["error"] = {"code": code, "message": error.message}
        return self._event("error", {"code": code, "message": error.message, "param": error.param}) + self._event(
            "response.failed", {"response": self.response}
        )
