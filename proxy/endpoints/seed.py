"""The seed's own HTTP API: stateful chat, the code agent, context, and the CLI's endpoint.

    POST /v1/route         {conversationId, message, userId, projectId, qualityLevel}
    POST /v1/chat          {conversationId, message}
    POST /v1/code-agent    {conversationId, task, files}
    GET  /v1/context/{id}  summary, recent messages, TODO list, metadata
    POST /v1/mcp-cli       {mode: chat|code|diff, message, context: {cwd, files, gitStatus}}

The shapes are the seed README's. Each endpoint translates at its edge and
calls `conversations.turns.run_turn` (or `run_chat` for a one-shot CLI call);
`"stream": true` on /v1/route, /v1/chat and /v1/mcp-cli answers with SSE
(OpenAI chunks, ending with `data: [DONE]`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..auth import authenticate
from ..codeagent import code_agent, render_task
from ..conversations.model import Conversation, Message
from ..conversations.turns import TurnRequest, TurnResult, get_conversation, run_turn
from ..errors import InvalidRequest
from ..pipeline import ChatCall, run_chat
from ..requests import read_json
from ..routing.explain import explain, quality_of
from ..types import JSON, Principal, Usage
from .chat import SSE_HEADERS, gateway_of, json_response

_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
_QUALITY = ("low", "normal", "high")
_MODES = ("chat", "code", "diff")


# -- reading bodies ---------------------------------------------------------------


def _string(body: JSON, key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidRequest(f"'{key}' is required", param=key, code="missing_required_parameter")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidRequest(f"'{key}' must be a non-empty string", param=key, code="invalid_type")
    return value


def _conversation_id(body: JSON, *, prefix: str = "conv-") -> str:
    value = _string(body, "conversationId")
    if value is None:
        return prefix + uuid.uuid4().hex[:16]
    check_conversation_id(value)
    return value


def check_conversation_id(value: str) -> None:
    if not _ID.match(value):
        raise InvalidRequest(
            "'conversationId' must be 1-128 letters, digits, '_', '.', ':', '@' or '-'",
            param="conversationId",
            code="invalid_value",
        )


def _quality(body: JSON, request: Request, key: str = "qualityLevel") -> str | None:
    value = body.get(key)
    if value is None:
        return request.headers.get("x-gateway-quality")
    if value not in _QUALITY:
        raise InvalidRequest(f"'{key}' must be one of low, normal, high", param=key, code="invalid_value")
    return str(value)


def _stream(body: JSON) -> bool:
    value = body.get("stream", False)
    if not isinstance(value, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream", code="invalid_type")
    return value


def _principal(request: Request, body: JSON) -> Principal:
    """The caller; the seed's `projectId` names the project when no token already does."""
    principal = authenticate(request)
    project = _string(body, "projectId")
    if project is not None and principal.token_id is None and principal.project == "default":
        if not _ID.match(project) or len(project) > 64:
            raise InvalidRequest(
                "'projectId' must be 1-64 letters, digits, '_', '.', ':' or '-'",
                param="projectId",
                code="invalid_value",
            )
        principal = replace(principal, project=project)
    return principal


# -- writing answers --------------------------------------------------------------


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _cost(value: Decimal) -> float:
    return float(value)


def _answer(result: TurnResult, extra: JSON | None = None) -> JSON:
    conversation = result.conversation
    body: JSON = {
        "result": {"response": result.text, "model": result.decision.model.id, "provider": result.decision.provider},
        "routing": {
            "summary": result.route_summary,
            "fromCache": result.from_cache,
            "tier": result.decision.tier,
            "task": result.decision.task,
            "escalations": [{"model": a.model, "tier": a.tier, "reason": a.failure} for a in result.attempts],
        },
        "context": {
            "conversationId": conversation.id,
            "messageCount": conversation.message_count,
            "summaryVersion": conversation.summary.version if conversation.summary else 0,
            "compressed": result.compressed is not None,
        },
        "performance": {
            "durationMs": result.duration_ms,
            "tokens": {"input": result.input_tokens, "output": result.output_tokens},
            "cost": _cost(result.cost),
        },
    }
    if extra:
        for key, value in extra.items():
            body[key] = {**body[key], **value} if isinstance(body.get(key), dict) else value
    return body


def _headers(result: TurnResult) -> dict[str, str]:
    return {**result.headers, "x-conversation-id": result.conversation.id}


def _sse(result: TurnResult) -> StreamingResponse:
    assert result.stream is not None
    return StreamingResponse(result.stream, media_type="text/event-stream", headers={**SSE_HEADERS, **_headers(result)})


# -- endpoints --------------------------------------------------------------------


async def _converse(request: Request, body: JSON, *, endpoint: str, default_model: str) -> Response:
    gateway = gateway_of(request)
    message = _string(body, "message", required=True)
    assert message is not None
    model = _string(body, "model") or default_model
    principal = _principal(request, body)
    turn = TurnRequest(
        conversation_id=_conversation_id(body),
        message=message,
        principal=principal,
        endpoint=endpoint,
        model=model,
        quality=_quality(body, request),
        user_id=_string(body, "userId"),
        project_id=principal.project,
        stream=_stream(body),
        client=request.headers.get("user-agent"),
        approval=request.headers.get("x-gateway-approve-escalation"),
    )
    result = await run_turn(gateway, turn)
    if result.stream is not None:
        return _sse(result)
    return json_response(orjson.dumps(_answer(result)), headers=_headers(result))


async def route(request: Request) -> Response:
    """The seed's routed, stateful call (`"dryRun": true` only explains the decision)."""
    body = await read_json(request, gateway_of(request).config.server.max_body_bytes)
    dry_run = body.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise InvalidRequest("'dryRun' must be a boolean", param="dryRun", code="invalid_type")
    if dry_run:
        return await _dry_run(request, body)
    return await _converse(request, body, endpoint="/v1/route", default_model="auto")


async def _dry_run(request: Request, body: JSON) -> Response:
    """The routing decision without calling a model (`routing/explain.py`); takes `message` or `messages`."""
    gateway = gateway_of(request)
    quality = quality_of(body, request.headers.get("x-gateway-quality"))
    answer = explain(gateway.router, body, quality=quality, principal=_principal(request, body))
    return json_response(orjson.dumps(answer))


async def chat(request: Request) -> Response:
    body = await read_json(request, gateway_of(request).config.server.max_body_bytes)
    return await _converse(request, body, endpoint="/v1/chat", default_model="chat")


async def code(request: Request) -> Response:
    gateway = gateway_of(request)
    body = await read_json(request, gateway.config.server.max_body_bytes)
    task = _string(body, "task", required=True)
    assert task is not None
    files = body.get("files") or []
    if not isinstance(files, list):
        raise InvalidRequest(
            "'files' must be an array of paths or {path, content} objects", param="files", code="invalid_type"
        )
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise InvalidRequest("'context' must be an object", param="context", code="invalid_type")
    quality = body.get("quality", body.get("qualityLevel"))
    if quality is not None and quality not in _QUALITY:
        raise InvalidRequest("'quality' must be one of low, normal, high", param="quality", code="invalid_value")
    principal = _principal(request, body)
    outcome = await code_agent(
        gateway,
        task,
        files=files,
        context=context,
        quality=quality or request.headers.get("x-gateway-quality"),
        conversation_id=_conversation_id(body),
        principal=principal,
        user_id=_string(body, "userId"),
        approval=request.headers.get("x-gateway-approve-escalation"),
    )
    answer = {
        "result": {
            "response": outcome.text,
            "code": outcome.code,
            "todos": [t.to_json() for t in outcome.todos],
            "model": outcome.model,
            "provider": outcome.provider,
        },
        "routing": {"summary": outcome.routing_summary, "tier": outcome.tier},
        "context": {"conversationId": outcome.conversation_id},
        "performance": {
            "durationMs": outcome.duration_ms,
            "tokens": {"input": outcome.input_tokens, "output": outcome.output_tokens},
            "cost": _cost(outcome.cost),
        },
    }
    return json_response(orjson.dumps(answer), headers={"x-conversation-id": outcome.conversation_id})


def _message_json(message: Message) -> JSON:
    return {
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "createdAt": _iso(message.created_at),
        "metadata": message.metadata,
    }


def context_json(conversation: Conversation) -> JSON:
    summary = conversation.summary
    return {
        "conversationId": conversation.id,
        "summary": None
        if summary is None
        else {
            "text": summary.text,
            "version": summary.version,
            "coversThroughMessage": summary.through_seq,
            "createdAt": _iso(summary.created_at),
        },
        "messages": [_message_json(m) for m in conversation.recent],
        "todos": [t.to_json() for t in conversation.todos],
        "metadata": {
            "userId": conversation.user_id,
            "projectId": conversation.project_id,
            "createdAt": _iso(conversation.created_at),
            "updatedAt": _iso(conversation.updated_at),
            "messageCount": conversation.message_count,
            "todosVersion": conversation.todos_version,
            **conversation.metadata,
        },
    }


async def context(request: Request) -> Response:
    conversation_id = request.path_params["conversation_id"]
    check_conversation_id(conversation_id)
    conversation = await get_conversation(gateway_of(request), conversation_id, authenticate(request))
    return json_response(orjson.dumps(context_json(conversation)))


# -- the CLI's endpoint -------------------------------------------------------------

_CLI_SYSTEM = {
    "chat": "You are a helpful assistant for a developer working in a terminal. Be concise.",
    "code": "You are an expert code reviewer. Analyse the code in the request for bugs, risks and improvements; "
    "be specific and cite file names and lines.",
    "diff": "You change code by writing patches. Answer with ONE unified diff in git format (`--- a/path`, "
    "`+++ b/path`, `@@` hunks with correct line counts) inside a ```diff fenced block that `git apply` "
    "accepts, then one short line saying what it does.",
}
_CLI_MODEL = {"chat": "chat", "code": "analyze", "diff": "code"}
_DIFF_FENCE = re.compile(r"```(?:diff|patch)[^\n]*\n(.*?)```", re.DOTALL)
_BARE_DIFF = re.compile(r"^(?:diff --git |--- ).*?(?=^```|\Z)", re.DOTALL | re.MULTILINE)


def extract_patch(text: str) -> str | None:
    """The unified diff in a model's answer: a ```diff block, else bare `--- a/...` lines."""
    found = _DIFF_FENCE.search(text)
    patch = found.group(1) if found else None
    if patch is None:
        bare = _BARE_DIFF.search(text)
        patch = bare.group(0) if bare and "\n+++ " in bare.group(0) else None
    if patch is None or "+++ " not in patch:
        return None
    return patch if patch.endswith("\n") else patch + "\n"


def _cli_message(body: JSON, mode: str, message: str) -> str:
    raw = body.get("context")
    if raw is None:
        return message
    if not isinstance(raw, dict):
        raise InvalidRequest(
            "'context' must be an object {cwd, files, gitStatus}", param="context", code="invalid_type"
        )
    cwd, status, files = raw.get("cwd"), raw.get("gitStatus"), raw.get("files") or []
    if not isinstance(files, list):
        raise InvalidRequest("'context.files' must be an array", param="context.files", code="invalid_type")
    parts = []
    if isinstance(cwd, str) and cwd:
        parts.append(f"Working directory: {cwd}")
    if isinstance(status, str) and status.strip():
        parts.append(f"Git status:\n{status.strip()}")
    workspace = "\n\n".join(parts)
    return render_task(message if not workspace else f"{message}\n\n{workspace}", files)


async def mcp_cli(request: Request) -> Response:
    gateway = gateway_of(request)
    body = await read_json(request, gateway.config.server.max_body_bytes)
    mode = body.get("mode", "chat")
    if mode not in _MODES:
        raise InvalidRequest("'mode' must be one of chat, code, diff", param="mode", code="invalid_value")
    message = _string(body, "message", required=True)
    assert message is not None
    text = _cli_message(body, mode, message)
    stream = _stream(body)
    principal = _principal(request, body)
    model = _string(body, "model") or _CLI_MODEL[mode]
    quality = _quality(body, request)
    # The CLI streams with `stream_options.include_usage` (for its /cost) and repeats an
    # escalated request with the approval token, as any chat-completions client would.
    options = body.get("stream_options")
    stream_options = options if isinstance(options, dict) else None
    approval = request.headers.get("x-gateway-approve-escalation")
    if body.get("conversationId") is not None:
        turn = TurnRequest(
            _conversation_id(body),
            text,
            principal,
            "/v1/mcp-cli",
            model=model,
            quality=quality,
            system=_CLI_SYSTEM[mode],
            project_id=principal.project,
            stream=stream,
            client=request.headers.get("user-agent"),
            stream_options=stream_options,
            approval=approval,
        )
        result = await run_turn(gateway, turn)
        if result.stream is not None:
            return _sse(result)
        answer = _cli_answer(
            result.text, mode, result.decision.model.id, Usage(result.input_tokens, result.output_tokens), result.cost
        )
        answer["conversationId"] = result.conversation.id
        return json_response(orjson.dumps(answer), headers=_headers(result))
    chat_body: JSON = {
        "model": model,
        "messages": [{"role": "system", "content": _CLI_SYSTEM[mode]}, {"role": "user", "content": text}],
    }
    if stream:
        chat_body["stream"] = True
        if stream_options:
            chat_body["stream_options"] = stream_options
    call = ChatCall(
        principal=principal,
        endpoint="/v1/mcp-cli",
        quality=quality,
        client=request.headers.get("user-agent"),
        approval=approval,
    )
    outcome = await run_chat(gateway, chat_body, call)
    if outcome.stream is not None:
        return StreamingResponse(
            outcome.stream, media_type="text/event-stream", headers={**SSE_HEADERS, **outcome.headers}
        )
    assert outcome.response is not None
    choice = (outcome.response.get("choices") or [{}])[0] or {}
    content = str((choice.get("message") or {}).get("content") or "")
    usage = Usage.from_openai(outcome.response.get("usage")) or Usage()
    answer = _cli_answer(content, mode, outcome.decision.model.id, usage, outcome.cost)
    return json_response(orjson.dumps(answer), headers=outcome.headers)


def _cli_answer(text: str, mode: str, model: str, usage: Usage, cost: Decimal) -> JSON:
    return {
        "message": text,
        "patch": extract_patch(text) if mode == "diff" else None,
        "model": model,
        "tokens": {
            "input": usage.input_tokens,
            "output": usage.output_tokens,
            "total": usage.input_tokens + usage.output_tokens,
        },
        "cost": _cost(cost),
    }


ROUTES = [
    Route("/v1/route", route, methods=["POST"]),
    Route("/v1/chat", chat, methods=["POST"]),
    Route("/v1/code-agent", code, methods=["POST"]),
    Route("/v1/context/{conversation_id}", context, methods=["GET"]),
    Route("/v1/mcp-cli", mcp_cli, methods=["POST"]),
]
