"""POST /v1/chat/completions: HTTP in, `run_chat`, HTTP out."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth import authenticate
from ..cache import client_directive
from ..eventstream import EventStream
from ..pipeline import ChatCall, run_chat
from ..requests import check_chat, read_json
from ..runtime import Gateway
from ..streaming import coalesce

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def json_response(content: bytes, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content, status_code=status_code, headers=headers, media_type="application/json")


async def chat_completions(request: Request) -> Response:
    gateway = gateway_of(request)
    body = await read_json(request, gateway.config.server.max_body_bytes)
    check_chat(body)
    call = ChatCall(
        principal=authenticate(request),
        quality=request.headers.get("x-gateway-quality"),
        approval=request.headers.get("x-gateway-approve-escalation"),
        client=request.headers.get("user-agent"),
        cache=client_directive(request.headers),
    )
    outcome = await run_chat(gateway, body, call)
    if outcome.stream is not None:
        return EventStream(coalesce(outcome.stream), headers={**SSE_HEADERS, **outcome.headers})
    return json_response(orjson.dumps(outcome.response), headers=outcome.headers)


ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/chat/completions", chat_completions, methods=["POST"]),
]
