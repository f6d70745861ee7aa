"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API.

Claude Code and the `anthropic` SDKs point here (`ANTHROPIC_BASE_URL`). The
request is translated to a chat body, goes through the same `run_chat` as chat
completions (routing, budgets, cache, usage, headers), and the answer is
translated back; errors come in Anthropic's shape.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth import authenticate
from ..cache import client_directive
from ..dialects import anthropic as dialect
from ..dialects.frames import translate_stream
from ..errors import GatewayError, anthropic_error_json
from ..eventstream import EventStream
from ..pipeline import ChatCall, run_chat
from ..requests import read_json
from ..routing.router import VIRTUAL_MODELS
from ..runtime import Gateway
from ..streaming import StreamRelay
from ..tokencount import estimate_messages_tokens
from .chat import SSE_HEADERS, gateway_of, json_response

log = logging.getLogger("proxy.messages")

Handler = Callable[[Request], Awaitable[Response]]


def anthropic_errors(handler: Handler) -> Handler:
    """Answer this dialect's clients in Anthropic's error shape, whatever went wrong."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except GatewayError as error:
            return error_response(error)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return error_response(
                GatewayError("the gateway hit an internal error; it has been logged", code="internal_error")
            )

    return endpoint


def error_response(error: GatewayError) -> Response:
    return json_response(anthropic_error_json(error), status_code=error.status_code, headers=error.headers)


def known_model(gateway: Gateway, model: str) -> bool:
    routing = gateway.config.routing
    return model in VIRTUAL_MODELS or model in routing.aliases or gateway.config.model(model) is not None


def resolve_model(gateway: Gateway, model: str) -> str:
    """The name to route: as sent if the gateway knows it, else a Claude family's tier."""
    if known_model(gateway, model):
        return model
    return dialect.claude_fallback(model) or model


@anthropic_errors
async def messages(request: Request) -> Response:
    gateway = gateway_of(request)
    chat = dialect.request_to_chat(await read_json(request, gateway.config.server.max_body_bytes))
    requested = str(chat["model"])
    chat["model"] = resolve_model(gateway, requested)
    call = ChatCall(
        principal=authenticate(request),
        endpoint="/v1/messages",
        quality=request.headers.get("x-gateway-quality"),
        client=request.headers.get("user-agent"),
        cache=client_directive(request.headers),
        requested_model=requested,
        approval=request.headers.get("x-gateway-approve-escalation"),
    )
    message_id = "msg_" + call.request_id.removeprefix("req_")
    outcome = await run_chat(gateway, chat, call)
    headers = {**outcome.headers, "request-id": call.request_id}
    if chat["model"] != requested:
        headers["x-gateway-model-mapped"] = f"{requested}->{chat['model']}"
    if outcome.stream is not None:
        input_tokens = estimate_messages_tokens(chat["messages"], chat.get("tools"))
        events = dialect.MessageEvents(
            message_id=message_id, model=outcome.decision.model.id, input_tokens=input_tokens
        )
        return EventStream(
            _stream(outcome.stream, events, outcome.decision.provider),
            headers={**SSE_HEADERS, **headers},
        )
    assert outcome.response is not None
    message = dialect.message_from_chat(outcome.response, message_id=message_id)
    return json_response(orjson.dumps(message), headers=headers)


async def _stream(relay: StreamRelay, events: dialect.MessageEvents, provider: str) -> AsyncIterator[bytes]:
    async def finish() -> bytes:
        return events.finish()

    async for frame in translate_stream(relay, events, provider, finish):
        yield frame


@anthropic_errors
async def count_tokens(request: Request) -> Response:
    """An offline estimate: no upstream is asked, so it is free and instant."""
    gateway = gateway_of(request)
    body = await read_json(request, gateway.config.server.max_body_bytes)
    chat = dialect.request_to_chat({"max_tokens": 1, **body})
    count = estimate_messages_tokens(chat["messages"], chat.get("tools"))
    return json_response(orjson.dumps({"input_tokens": count}), headers={"x-gateway-estimated": "true"})


ROUTES = [
    Route("/v1/messages", messages, methods=["POST"]),
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
]
