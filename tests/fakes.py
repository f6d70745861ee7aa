"""Fake upstream LLM servers: small Starlette apps served by real uvicorn.

They speak the real wire formats (OpenAI chat completions with SSE, Anthropic
Messages with its event stream, OpenRouter's and Ollama's model lists). A test
steers a response by putting a directive in the last user message, for example
`[[fake:status=429,retry_after=1]]`, or by queueing behaviours on `script`.

Directives (comma-separated `key=value` or bare flags):
    status=N            answer with HTTP N and the provider's error JSON
    retry_after=S       Retry-After header on that error
    delay=S             wait S seconds before answering (or before the first chunk)
    chunks=N            stream N content chunks (default 5)
    chunk_delay=S       wait between chunks
    no_usage            send no usage at all
    cached_tokens=N     report N of the prompt tokens as cached (prompt_tokens_details)
    tool_call           answer with a tool call to the first tool
    json                answer with a JSON object as content
    text=...            answer exactly this text (no commas)
    empty               answer with empty content
    truncate            finish_reason "length"
    refuse              a refusal ("I can't help with that.")
    stream_error_after=N  after N chunks, fail (error event / broken connection)
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_DIRECTIVE = re.compile(r"\[\[fake:([^\]]*)\]\]")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """Run an ASGI app under real uvicorn in a thread (as httpx's own tests do)."""

    def __init__(self, app: Any, port: int | None = None, **options: Any) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", **options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.time() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@contextmanager
def serve(app: Any, **options: Any) -> Iterator[ServerThread]:
    server = ServerThread(app, **options).start()
    try:
        yield server
    finally:
        server.stop()


def parse_directives(body: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for message in body.get("messages") or []:
        content = message.get("content")
        texts = (
            [content]
            if isinstance(content, str)
            else [p.get("text", "") for p in (content or []) if isinstance(p, dict)]
        )
        for text in texts:
            for match in _DIRECTIVE.finditer(text or ""):
                for item in match.group(1).split(","):
                    key, _, value = item.strip().partition("=")
                    if key:
                        found[key] = value or "1"
    return found


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", p.get("content", ""))) for p in content if isinstance(p, dict))
    return ""


@dataclass
class FakeUpstream:
    """State shared by a fake server and the test that drives it."""

    name: str = "fake"
    requests: list[dict[str, Any]] = field(default_factory=list)
    script: list[dict[str, str]] = field(default_factory=list)
    stream_closed_early: int = 0
    models: list[dict[str, Any]] = field(default_factory=list)
    server: ServerThread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def directives(self, body: dict[str, Any]) -> dict[str, str]:
        if self.script:
            return self.script.pop(0)
        return parse_directives(body)

    def record(self, request: Request, body: dict[str, Any]) -> None:
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": body})

    def answer_text(self, body: dict[str, Any], directives: dict[str, str]) -> str:
        if "text" in directives:
            return directives["text"]
        if "empty" in directives:
            return ""
        if "refuse" in directives:
            return "I'm sorry, but I can't help with that."
        if "json" in directives:
            return '{"answer": 42, "model": "' + str(body.get("model")) + '"}'
        return f"echo from {body.get('model')}: {last_user_text(body)[:200]}"


async def _wait(directives: dict[str, str]) -> None:
    if "delay" in directives:
        await asyncio.sleep(float(directives["delay"]))


def _error_response(status: int, directives: dict[str, str], anthropic: bool) -> Response:
    headers = {"retry-after": directives["retry_after"]} if "retry_after" in directives else {}
    if anthropic:
        kind = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}.get(status, "api_error")
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": f"fake anthropic error {status}"}}
    else:
        body = {
            "error": {
                "message": f"fake upstream error {status}",
                "type": "fake_error",
                "param": None,
                "code": f"fake_{status}",
            }
        }
    return JSONResponse(body, status_code=status, headers=headers)


# -- OpenAI-compatible ----------------------------------------------------------


def openai_app(state: FakeUpstream) -> Starlette:
    async def chat(request: Request) -> Response:
        body = orjson.loads(await request.body())
        state.record(request, body)
        directives = state.directives(body)
        await _wait(directives)
        if "status" in directives:
            return _error_response(int(directives["status"]), directives, anthropic=False)
        model = body.get("model")
        text = state.answer_text(body, directives)
        prompt_tokens = 10 + len(str(body.get("messages"))) // 10
        finish = "length" if "truncate" in directives else "stop"
        tool_call = None
        if "tool_call" in directives and body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            tool_call = {
                "id": "call_fake1",
                "type": "function",
                "function": {"name": name, "arguments": '{"city": "Paris"}'},
            }
            finish = "tool_calls"
        completion_tokens = max(1, len(text.split()))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if "cached_tokens" in directives:
            usage["prompt_tokens_details"] = {"cached_tokens": int(directives["cached_tokens"])}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if tool_call else text}
            if tool_call:
                message["tool_calls"] = [tool_call]
            response: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            }
            if "no_usage" not in directives:
                response["usage"] = usage
            return JSONResponse(response)

        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and "no_usage" not in directives
        chunk_count = int(directives.get("chunks", "5"))
        chunk_delay = float(directives.get("chunk_delay", "0"))
        fail_after = int(directives["stream_error_after"]) if "stream_error_after" in directives else None

        def frame(
            delta: dict[str, Any], finish_reason: str | None = None, usage_value: Any = None, choices: bool = True
        ) -> bytes:
            chunk: dict[str, Any] = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
            }
            chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish_reason}] if choices else []
            if include_usage:
                chunk["usage"] = usage_value
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        async def events() -> AsyncIterator[bytes]:
            try:
                yield frame({"role": "assistant", "content": ""})
                if tool_call:
                    yield frame(
                        {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    **tool_call,
                                    "function": {"name": tool_call["function"]["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                    yield frame(
                        {"tool_calls": [{"index": 0, "function": {"arguments": tool_call["function"]["arguments"]}}]}
                    )
                else:
                    words = text.split(" ") if text else []
                    size = max(1, -(-len(words) // max(1, chunk_count)))
                    pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)] or [""]
                    while len(pieces) < chunk_count:
                        pieces.append("")
                    for index, piece in enumerate(pieces):
                        if fail_after is not None and index >= fail_after:
                            yield b'data: {"error": {"message": "fake upstream broke mid-stream", "type": "server_error"}}\n\n'
                            return
                        if chunk_delay:
                            await asyncio.sleep(chunk_delay)
                        yield frame({"content": (" " if index and piece else "") + piece})
                yield frame({}, finish)
                if include_usage:
                    yield frame({}, usage_value=usage, choices=False)
                yield b"data: [DONE]\n\n"
            except asyncio.CancelledError:
                state.stream_closed_early += 1
                raise
            except GeneratorExit:
                state.stream_closed_early += 1
                raise

        return StreamingResponse(events(), media_type="text/event-stream")

    async def passthrough(request: Request) -> Response:
        body = orjson.loads(await request.body())
        state.record(request, body)
        if request.url.path.endswith("/embeddings"):
            inputs = body.get("input")
            items = inputs if isinstance(inputs, list) else [inputs]
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i, _ in enumerate(items)]
            return JSONResponse(
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model"),
                    "usage": {"prompt_tokens": 3, "total_tokens": 3},
                }
            )
        return JSONResponse(
            {
                "id": "cmpl-fake",
                "object": "text_completion",
                "created": 1,
                "model": body.get("model"),
                "choices": [{"text": "completed", "index": 0, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
            }
        )

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": state.models})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", passthrough, methods=["POST"]),
            Route("/v1/embeddings", passthrough, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/api/v1/chat/completions", chat, methods=["POST"]),
            Route("/api/v1/models", models, methods=["GET"]),
        ]
    )


# -- Anthropic Messages ---------------------------------------------------------


def _anthropic_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
    return ""


def anthropic_app(state: FakeUpstream) -> Starlette:
    async def messages(request: Request) -> Response:
        body = orjson.loads(await request.body())
        state.record(request, body)
        if not request.headers.get("x-api-key") or not request.headers.get("anthropic-version"):
            return _error_response(401, {}, anthropic=True)
        directives = state.directives({"messages": [{"role": "user", "content": _anthropic_user_text(body)}]})
        await _wait(directives)
        if "status" in directives:
            return _error_response(int(directives["status"]), directives, anthropic=True)
        model = body.get("model")
        text = directives.get("text") or f"echo from {model}: {_anthropic_user_text(body)[:200]}"
        use_tool = "tool_call" in directives and body.get("tools")
        stop_reason = "tool_use" if use_tool else ("max_tokens" if "truncate" in directives else "end_turn")
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if use_tool:
            content = [
                {"type": "tool_use", "id": "toolu_fake1", "name": body["tools"][0]["name"], "input": {"city": "Paris"}}
            ]
        # With `thinking` enabled, a signed thinking block comes first (index 0), as Claude answers.
        thinks = (body.get("thinking") or {}).get("type") == "enabled"
        thought = {"type": "thinking", "thinking": "fake thought", "signature": "fake-signature"}
        usage = {"input_tokens": 12, "output_tokens": max(1, len(text.split()))}
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "msg_fake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [thought, *content] if thinks else content,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": usage,
                }
            )

        def event(kind: str, data: dict[str, Any]) -> bytes:
            return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"

        chunk_delay = float(directives.get("chunk_delay", "0"))

        async def events() -> AsyncIterator[bytes]:
            yield event(
                "message_start",
                {
                    "message": {
                        "id": "msg_fake",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "usage": {"input_tokens": 12, "output_tokens": 1},
                    }
                },
            )
            yield event("ping", {})
            at = 0
            if thinks:
                yield event(
                    "content_block_start",
                    {"index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
                )
                yield event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "thinking_delta", "thinking": thought["thinking"]}},
                )
                yield event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "signature_delta", "signature": thought["signature"]}},
                )
                yield event("content_block_stop", {"index": 0})
                at = 1
            if use_tool:
                yield event(
                    "content_block_start",
                    {
                        "index": at,
                        "content_block": {
                            "type": "tool_use",
                            "id": "toolu_fake1",
                            "name": content[0]["name"],
                            "input": {},
                        },
                    },
                )
                yield event(
                    "content_block_delta",
                    {"index": at, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
                )
                yield event(
                    "content_block_delta",
                    {"index": at, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
                )
            else:
                yield event("content_block_start", {"index": at, "content_block": {"type": "text", "text": ""}})
                for index, word in enumerate(text.split(" ")):
                    if chunk_delay:
                        await asyncio.sleep(chunk_delay)
                    yield event(
                        "content_block_delta",
                        {"index": at, "delta": {"type": "text_delta", "text": (" " if index else "") + word}},
                    )
            yield event("content_block_stop", {"index": at})
            yield event(
                "message_delta",
                {
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            )
            yield event("message_stop", {})

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


@contextmanager
def fake_openai(name: str = "fake-openai") -> Iterator[FakeUpstream]:
    state = FakeUpstream(name=name)
    with serve(openai_app(state)) as server:
        state.server = server
        yield state


@contextmanager
def fake_anthropic(name: str = "fake-anthropic") -> Iterator[FakeUpstream]:
    state = FakeUpstream(name=name)
    with serve(anthropic_app(state)) as server:
        state.server = server
        yield state
