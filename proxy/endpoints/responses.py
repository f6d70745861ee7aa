"""POST /v1/responses (and GET/DELETE /v1/responses/{id}): OpenAI's Responses API.

Newer OpenAI agents and SDKs send this instead of chat completions. The request
(plus the stored conversation when it names `previous_response_id`) becomes a
chat body for `run_chat`, so routing, budgets, cache, usage and headers are
those of chat completions; the answer is translated back and stored unless
the request says `store: false`. Errors keep OpenAI's shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth import authenticate
from ..cache import client_directive
from ..dialects import responses as dialect
from ..dialects.frames import translate_stream
from ..errors import InvalidRequest, NotFound
from ..eventstream import EventStream
from ..pipeline import ChatCall, run_chat
from ..requests import read_json
from ..response_store import ResponseStore
from ..streaming import StreamRelay
from ..tokencount import estimate_messages_tokens
from ..types import JSON, Principal
from .chat import SSE_HEADERS, gateway_of, json_response


async def _previous(store: ResponseStore, response_id: str | None, principal: Principal) -> JSON | None:
    if response_id is None:
        return None
    record = await store.get(response_id)
    if record is None or record.get("project") != principal.project:
        raise InvalidRequest(
            f"Previous response with id {response_id!r} not found (responses are kept for a limited time, "
            "and not at all when sent with store: false).",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return record


async def create_response(request: Request) -> Response:
    gateway = gateway_of(request)
    body = await read_json(request, gateway.config.server.max_body_bytes)
    dialect.check_request(body)
    principal = authenticate(request)
    previous = await _previous(gateway.responses, body.get("previous_response_id"), principal)
    chat, conversation = dialect.request_to_chat(body, previous["messages"] if previous else [])
    call = ChatCall(
        principal=principal,
        endpoint="/v1/responses",
        quality=request.headers.get("x-gateway-quality"),
        client=request.headers.get("user-agent"),
        cache=client_directive(request.headers),
        approval=request.headers.get("x-gateway-approve-escalation"),
    )
    response_id = "resp_" + call.request_id.removeprefix("req_")
    # Every turn of a previous_response_id chain shares the first response's id in the usage log.
    call.conversation_id = previous["conversation"] if previous else response_id
    outcome = await run_chat(gateway, chat, call)
    dropped = dialect.dropped_tools(body)
    if dropped:
        outcome.headers["x-gateway-dropped-tools"] = ",".join(dropped)
    response = dialect.skeleton(body, response_id=response_id, model=outcome.decision.model.id)
    record = {"project": principal.project, "conversation": call.conversation_id, "messages": conversation}
    store = gateway.responses if body.get("store", True) else None

    if outcome.stream is not None:
        events = dialect.ResponseEvents(
            response, input_tokens=estimate_messages_tokens(chat["messages"], chat.get("tools"))
        )
        return EventStream(
            _stream(outcome.stream, events, store, record, outcome.decision.provider),
            headers={**SSE_HEADERS, **outcome.headers},
        )
    assert outcome.response is not None
    response = dialect.response_from_chat(outcome.response, response)
    if store is not None:
        await _save(store, response, record)
    return json_response(orjson.dumps(response), headers=outcome.headers)


async def _save(store: ResponseStore, response: JSON, record: JSON) -> None:
    messages = [*record["messages"], *dialect.output_messages(response["output"])]
    await store.put(response["id"], {**record, "messages": messages, "response": response})


async def _stream(
    relay: StreamRelay, events: dialect.ResponseEvents, store: ResponseStore | None, record: JSON, provider: str
) -> AsyncIterator[bytes]:
    async def finish() -> bytes:
        closing, final = events.finish()
        if store is not None:
            await _save(store, final, record)  # before `response.completed`, so a quick follow-up finds it
        return closing

    async for frame in translate_stream(relay, events, provider, finish):
        yield frame


async def _owned(request: Request) -> tuple[ResponseStore, str, JSON]:
    gateway = gateway_of(request)
    response_id = request.path_params["response_id"]
    record = await gateway.responses.get(response_id)
    if record is None or record.get("project") != authenticate(request).project:
        raise NotFound(
            f"No response with id {response_id!r} is stored.", param="response_id", code="response_not_found"
        )
    return gateway.responses, response_id, record


async def get_response(request: Request) -> Response:
    _, _, record = await _owned(request)
    return json_response(orjson.dumps(record["response"]))


async def delete_response(request: Request) -> Response:
    store, response_id, _ = await _owned(request)
    await store.delete(response_id)
    return json_response(orjson.dumps({"id": response_id, "object": "response.deleted", "deleted": True}))


ROUTES = [
    Route("/v1/responses", create_response, methods=["POST"]),
    Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
]
