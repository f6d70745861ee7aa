"""One turn of a stateful conversation, in order:

    lock -> load (hot, else rebuilt from cold) -> compress if needed -> prompt
    -> run_chat (escalating with a handoff package if allowed) -> save -> unlock

Turns of one conversation are serialised (see `locks`), so concurrent
messages are answered one after another, each seeing the ones before it.
The user's message and the answer are stored together once the answer is
complete; a failed turn stores nothing but a summary it already paid for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import GatewayError, NotFound
from ..pipeline import ChatCall, ChatOutcome, run_chat
from ..pricing import cost_usd
from ..runtime import Gateway
from ..streaming import StreamRelay
from ..tokencount import estimate_messages_tokens, estimate_text_tokens
from ..types import JSON, Principal, RouteDecision, Usage
from ..upstream import Attempt as UpstreamAttempt
from .compress import compress, compression_reason
from .handoff import Attempt, handoff_messages
from .locks import Lease
from .model import Conversation
from .store import ConversationStore

log = logging.getLogger("proxy.conversations")

# Called with the conversation and the final answer once a turn succeeds;
# returns True when it changed the TODO list (the code agent's hook).
AfterTurn = Callable[[Conversation, str], bool]


@dataclass
class TurnRequest:
    conversation_id: str
    message: str
    principal: Principal
    endpoint: str
    model: str = "auto"
    quality: str | None = None
    system: str | None = None
    user_id: str | None = None
    project_id: str | None = None
    stream: bool = False
    client: str | None = None
    after: AfterTurn | None = None
    # `x-gateway-approve-escalation`, passed on to the pipeline.
    approval: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # A streaming client's `stream_options` (the CLI asks for usage to price its /cost).
    stream_options: dict[str, Any] | None = None


@dataclass
class TurnResult:
    conversation: Conversation
    decision: RouteDecision
    headers: dict[str, str]
    started: float
    text: str = ""
    from_cache: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)
    attempts: list[Attempt] = field(default_factory=list)
    compressed: str | None = None
    stream: AsyncIterator[bytes] | None = None

    @property
    def route_summary(self) -> str:
        """`L0 -> L1 -> model (reasons)`: the tiers tried, in order, then the model that answered."""
        tiers: list[str] = []
        escalated_from = self.headers.get("x-gateway-escalated-from")
        for tier in [
            *([escalated_from] if escalated_from else []),
            *(a.tier for a in self.attempts),
            self.decision.tier,
        ]:
            if tier not in tiers:
                tiers.append(tier)
        reasons = ", ".join(self.decision.reasons) or "default"
        return f"{' -> '.join(tiers)} -> {self.decision.model.id} ({reasons})"

    @property
    def duration_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)


def store_of(gateway: Gateway) -> ConversationStore:
    if gateway.conversations is None:
        raise GatewayError("conversation storage is not running on this gateway", code="conversations_unavailable")
    return gateway.conversations


async def get_conversation(gateway: Gateway, conversation_id: str, principal: Principal) -> Conversation:
    """The conversation for the context endpoint; 404 when unknown (or another project's)."""
    found = await store_of(gateway).load(conversation_id)
    if found is None or not _visible(found, principal):
        raise NotFound(
            f"conversation {conversation_id!r} does not exist", param="conversationId", code="conversation_not_found"
        )
    return found


def _visible(conversation: Conversation, principal: Principal) -> bool:
    """With gateway tokens, a conversation belongs to the project that started it."""
    return principal.token_id is None or conversation.project_id in (None, principal.project)


def build_prompt(conversation: Conversation, message: str, system: str | None) -> list[JSON]:
    """Summary and TODO list as a system message, the unsummarised messages verbatim, then the new one."""
    parts = [system] if system else []
    if conversation.summary is not None:
        parts.append(
            f"Summary of the conversation so far (version {conversation.summary.version}):\n{conversation.summary.text}"
        )
    if conversation.todos:
        marks = {"done": "x", "in_progress": "~", "pending": " "}
        parts.append("Current TODO list:\n" + "\n".join(f"- [{marks[t.status]}] {t.text}" for t in conversation.todos))
    prompt: list[JSON] = [{"role": "system", "content": "\n\n".join(parts)}] if parts else []
    prompt.extend(m.as_chat() for m in conversation.recent)
    prompt.append({"role": "user", "content": message})
    return prompt


async def run_turn(gateway: Gateway, request: TurnRequest) -> TurnResult:
    store = store_of(gateway)
    lease = await store.locks.acquire(request.conversation_id)
    try:
        return await _turn(gateway, store, lease, request)
    except BaseException:
        await lease.release()
        raise


async def _turn(gateway: Gateway, store: ConversationStore, lease: Lease, request: TurnRequest) -> TurnResult:
    started = time.perf_counter()
    conversation = await store.load(request.conversation_id)
    if conversation is None:
        conversation = Conversation(
            request.conversation_id,
            user_id=request.user_id,
            project_id=request.project_id,
            metadata=dict(request.metadata),
        )
    elif not _visible(conversation, request.principal):
        raise NotFound(
            f"conversation {request.conversation_id!r} does not exist",
            param="conversationId",
            code="conversation_not_found",
        )
    prompt = build_prompt(conversation, request.message, request.system)
    body: JSON = {"model": request.model, "messages": prompt}
    decision = gateway.router.route(body, quality=request.quality, principal=request.principal)

    compressed = compression_reason(conversation, prompt, decision.model.context_window, gateway.config.conversations)
    if compressed is not None and await compress(gateway, conversation, compressed, request.principal):
        await store.save(conversation, [], summary=True)
        prompt = build_prompt(conversation, request.message, request.system)
        body = {"model": request.model, "messages": prompt}
    else:
        compressed = None

    result = TurnResult(conversation, decision, {}, started, compressed=compressed)

    def handoff(tried: list[UpstreamAttempt], reason: str) -> list[JSON]:
        """Escalating (upstream.py decides when): the higher tier gets the package, not the history."""
        result.attempts = [Attempt(a.model, a.tier, _failure(a)) for a in tried if a.outcome != "ok"]
        log.info("conversation %s escalates (%s); sending a handoff package", conversation.id, reason)
        return handoff_messages(conversation, request.message, result.attempts, reason=reason, system=request.system)

    if request.stream:
        body["stream"] = True
        if request.stream_options:
            body["stream_options"] = request.stream_options
    call = ChatCall(
        principal=request.principal,
        endpoint=request.endpoint,
        quality=request.quality,
        client=request.client,
        conversation_id=conversation.id,
        approval=request.approval,
        handoff=handoff,
    )
    outcome = await run_chat(gateway, body, call)
    result.decision = outcome.decision
    result.headers = outcome.headers
    result.from_cache = outcome.headers.get("x-gateway-cache") == "hit"
    if outcome.stream is not None:
        result.stream = _relay(gateway, store, lease, request, result, outcome.stream)
        return result
    assert outcome.response is not None
    _count(result, outcome)
    choice = (outcome.response.get("choices") or [{}])[0] or {}
    result.text = str((choice.get("message") or {}).get("content") or "")
    await _finish(store, request, result, lease)
    return result


def _failure(attempt: UpstreamAttempt) -> str:
    """An attempt's outcome in words for the handoff package."""
    text = attempt.outcome.replace("_", " ")
    if attempt.status:
        text += f" (HTTP {attempt.status})"
    return f"{text}: {attempt.detail}" if attempt.detail else text


def _count(result: TurnResult, outcome: ChatOutcome) -> None:
    usage = Usage.from_openai((outcome.response or {}).get("usage")) or Usage()
    result.input_tokens += usage.input_tokens
    result.output_tokens += usage.output_tokens
    result.cost += outcome.cost


async def _finish(store: ConversationStore, request: TurnRequest, result: TurnResult, lease: Lease) -> None:
    """Store the user's message with its answer, then let the next turn in."""
    try:
        conversation = result.conversation
        if request.user_id and not conversation.user_id:
            conversation.user_id = request.user_id
        metadata: dict[str, Any] = {"model": result.decision.model.id, "tier": result.decision.tier}
        if result.attempts:
            metadata["escalatedFrom"] = [a.tier for a in result.attempts]
        user = conversation.add("user", request.message, {"endpoint": request.endpoint})
        answer = conversation.add("assistant", result.text, metadata)
        todos = request.after(conversation, result.text) if request.after else False
        if todos:
            conversation.todos_version += 1
        await store.save(conversation, [user, answer], todos=todos)
    finally:
        await lease.release()


async def _relay(
    gateway: Gateway,
    store: ConversationStore,
    lease: Lease,
    request: TurnRequest,
    result: TurnResult,
    relay: StreamRelay,
) -> AsyncIterator[bytes]:
    """Pass the SSE frames on; once the stream completes, store the turn and unlock."""
    finished = False

    async def finish(completed: bool) -> None:
        if completed and relay.error is None:
            result.text = relay.output_text()
            usage = relay.usage or Usage(
                estimate_messages_tokens([]), estimate_text_tokens(result.text), estimated=True
            )
            result.input_tokens += usage.input_tokens
            result.output_tokens += usage.output_tokens
            if not result.from_cache:
                result.cost += cost_usd(result.decision.model, usage)
            await _finish(store, request, result, lease)
        else:
            await lease.release()

    try:
        async for frame in relay:
            yield frame
        finished = True
        await finish(relay.completed)
    finally:
        if not finished:
            # Cancelled (client gone): finish without awaiting in a cancelled task.
            store.background(finish(False))
