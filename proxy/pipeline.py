"""The request path for one chat completion, in order:

    route -> cache lookup -> upstream (retries, failover, escalation) -> stream back (cache store) -> record usage

Every dialect (chat completions, the seed's API, later Anthropic Messages and
Responses) calls `run_chat` with an OpenAI-shaped body and gets back either a
response object or a `StreamRelay`; it only translates at its own edge.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal

from . import crosscheck
from .auth import authorize_model
from .cache import CachedAnswer, Directive
from .errors import GatewayError
from .pricing import cost_usd, format_cost
from .runtime import Gateway
from .streaming import StreamRelay
from .tokencount import estimate_messages_tokens, estimate_text_tokens
from .types import JSON, Principal, RouteDecision, Usage, UsageEvent
from .upstream import Dispatched, Handoff, call_upstream


@dataclass
class ChatCall:
    """What the caller knows about the request besides its body."""

    principal: Principal
    endpoint: str = "/v1/chat/completions"
    quality: str | None = None
    client: str | None = None
    conversation_id: str | None = None
    cache: Directive = "default"
    # What the client asked for when its dialect rewrote `model` (a Claude name mapped to a tier).
    requested_model: str | None = None
    # `x-gateway-approve-escalation`: a one-time token approving a paid tier (see upstream.py).
    approval: str | None = None
    # What a higher tier receives instead of the whole request when this one escalates (see upstream.py).
    handoff: Handoff | None = None
    request_id: str = field(default_factory=lambda: "req_" + os.urandom(12).hex())


@dataclass
class ChatOutcome:
    decision: RouteDecision
    headers: dict[str, str]
    response: JSON | None = None
    stream: StreamRelay | None = None

    @property
    def cost(self) -> Decimal:
        """Everything this request cost: the answer, plus answers paid for and thrown away and side calls."""
        return Decimal(self.headers.get("x-gateway-cost-total") or self.headers.get("x-gateway-cost") or "0")


def _event(call: ChatCall, body: JSON, decision: RouteDecision | None) -> UsageEvent:
    event = UsageEvent(
        request_id=call.request_id,
        started_at=time.time(),
        endpoint=call.endpoint,
        project=call.principal.project,
        token_id=call.principal.token_id,
        client=call.client,
        conversation_id=call.conversation_id,
        requested_model=call.requested_model or str(body.get("model") or "auto"),
        stream=bool(body.get("stream")),
    )
    if decision is not None:
        event.task = decision.task
        event.complexity = decision.complexity
        event.tier = decision.tier
        event.routed_model = decision.model.id
        event.provider = decision.provider
        event.route_reasons = list(decision.reasons)
    return event


def _settle(event: UsageEvent, decision: RouteDecision, usage: Usage) -> str:
    event.input_tokens = usage.input_tokens
    event.output_tokens = usage.output_tokens
    event.cached_tokens = usage.cached_tokens
    event.cost_estimated = usage.estimated
    cost = cost_usd(decision.model, usage)
    event.cost_usd = float(cost)
    return format_cost(cost)


def _settle_hit(event: UsageEvent, decision: RouteDecision, usage: Usage) -> None:
    """A cached answer costs nothing; what it would have cost is logged as saved."""
    _settle(event, decision, usage)
    event.cache_hit = True
    event.cache_saved_usd = event.cost_usd
    event.cost_usd = 0.0


async def _replay(
    gateway: Gateway,
    body: JSON,
    decision: RouteDecision,
    event: UsageEvent,
    headers: dict[str, str],
    cached: CachedAnswer,
) -> ChatOutcome:
    headers["x-gateway-cost"] = "0"
    if body.get("stream"):
        client_options = body.get("stream_options") or {}

        def on_end(relay: StreamRelay) -> None:
            _settle_hit(event, decision, relay.usage or cached.usage or _estimate(body, relay.output_text()))
            event.ttft_ms = relay.ttft_ms
            if relay.cancelled and not relay.completed:
                event.status, event.error_type = 499, "client_disconnected"
            _publish(gateway, event)

        relay = StreamRelay(cached.replay(), include_usage=bool(client_options.get("include_usage")), on_end=on_end)
        await relay.prefetch()
        return ChatOutcome(decision, headers, stream=relay)
    response = cached.response or {}
    _settle_hit(event, decision, cached.usage or _estimate(body, _response_text(response)))
    _publish(gateway, event)
    return ChatOutcome(decision, headers, response=response)


def _estimate(body: JSON, output_text: str) -> Usage:
    return Usage(
        input_tokens=estimate_messages_tokens(body.get("messages") or [], body.get("tools")),
        output_tokens=estimate_text_tokens(output_text),
        estimated=True,
    )


def _response_text(response: JSON) -> str:
    parts = []
    for choice in response.get("choices") or []:
        message = choice.get("message") or {}
        parts.append(message.get("content") or "")
        for call in message.get("tool_calls") or []:
            parts.append((call.get("function") or {}).get("arguments") or "")
    return "".join(parts)


def _publish(gateway: Gateway, event: UsageEvent) -> None:
    event.latency_ms = (time.time() - event.started_at) * 1000
    gateway.metrics.observe(event)
    # A rejected attempt (paid, thrown away) adds to the request's cost; the request's own row settles it.
    final = not (event.error_type or "").startswith("rejected_")
    gateway.budgets.settle_soon(event.request_id, event.cost_usd, final=final)
    if final:
        gateway.ratelimits.settle_soon(event.request_id, event.input_tokens + event.output_tokens)
    gateway.alerts.observe(event)
    if gateway.usage is not None:
        gateway.usage.publish(event)


def _note_attempts(
    gateway: Gateway, call: ChatCall, body: JSON, event: UsageEvent, headers: dict[str, str], dispatched: Dispatched
) -> Decimal:
    """Headers and usage fields for the model that answered; a usage row for each answer that was paid and
    thrown away. Returns what those thrown-away answers cost."""
    thrown_away = Decimal(0)
    decision = dispatched.decision
    headers.update(decision.headers())
    event.routed_model, event.provider, event.tier = decision.model.id, decision.provider, decision.tier
    event.route_reasons = list(decision.reasons)
    if dispatched.escalated_from is not None:
        event.escalated_from = dispatched.escalated_from
        headers["x-gateway-escalated-from"] = dispatched.escalated_from
    if len(dispatched.attempts) > 1:
        headers["x-gateway-attempts"] = str(len(dispatched.attempts))
    for attempt in dispatched.attempts:
        if attempt.usage is None or attempt.model_config is None or attempt.outcome == "ok":
            continue
        rejected = _event(call, body, None)
        rejected.task, rejected.complexity, rejected.tier = decision.task, decision.complexity, attempt.tier
        rejected.routed_model, rejected.provider = attempt.model, attempt.provider
        rejected.error_type = f"rejected_{attempt.outcome}"
        rejected.route_reasons = [f"attempt:{attempt.outcome}"]
        rejected.input_tokens, rejected.output_tokens = attempt.usage.input_tokens, attempt.usage.output_tokens
        cost = cost_usd(attempt.model_config, attempt.usage)
        rejected.cost_usd = float(cost)
        thrown_away += cost
        _publish(gateway, rejected)
    return thrown_away


def _publish_side_calls(
    gateway: Gateway, call: ChatCall, body: JSON, decision: RouteDecision, checked: crosscheck.CrossChecked
) -> Decimal:
    """A usage row per cross-check call (the second model, the judge), each costed; returns their cost."""
    total = Decimal(0)
    for model, answer in checked.calls:
        if answer is checked.response:
            continue  # the answer returned is costed on the request's own row
        side = _event(call, body, None)
        side.task, side.complexity, side.tier = decision.task, decision.complexity, model.tier
        side.routed_model, side.provider = model.id, model.provider
        side.cross_check = f"side:{checked.outcome}"
        side.route_reasons = ["cross_check:side_call"]
        usage = Usage.from_openai(answer.get("usage")) or _estimate(body, _response_text(answer))
        total += Decimal(_settle(side, replace(decision, model=model), usage))
        _publish(gateway, side)
    return total


async def run_chat(gateway: Gateway, body: JSON, call: ChatCall) -> ChatOutcome:
    # Budgets that apply; one near its limit lowers the principal's max tier.
    budget = await gateway.budgets.plan(call.principal)
    call.principal = budget.principal
    try:
        admission = await gateway.ratelimits.admit(call.principal, budget.project_limits, body, call.request_id)
        decision = gateway.router.route(body, quality=call.quality, principal=call.principal)
        authorize_model(call.principal, decision)
    except GatewayError as error:
        event = _event(call, body, None)
        event.status, event.error_type = error.status_code, error.code or error.error_type
        _publish(gateway, event)
        raise
    event = _event(call, body, decision)
    headers = {"x-request-id": call.request_id, **decision.headers(), **admission.headers}

    # Cache lookup: a stored answer to this exact request is replayed at $0.
    plan = gateway.cache.plan(body, decision, call.principal.project, call.cache)
    cached = await gateway.cache.get(plan)
    headers["x-gateway-cache"] = "hit" if cached is not None else "miss"
    if plan.skip is not None:
        headers["x-gateway-cache-skip"] = plan.skip
    if cached is not None:
        return await _replay(gateway, body, decision, event, headers, cached)

    # Budget: hold the worst case before the upstream call; `_publish` settles it.
    try:
        await gateway.budgets.reserve(budget, decision, body, call.request_id)
    except GatewayError as error:
        event.status, event.error_type = error.status_code, error.code or error.error_type
        _publish(gateway, event)
        raise

    try:
        dispatched = await call_upstream(
            gateway, body, decision, principal=call.principal, approval=call.approval, handoff=call.handoff
        )
    except GatewayError as error:
        event.status, event.error_type = error.status_code, error.code or error.error_type
        _publish(gateway, event)
        raise
    decision = dispatched.decision
    extra_cost = _note_attempts(gateway, call, body, event, headers, dispatched)

    if dispatched.chunks is not None:
        client_options = body.get("stream_options") or {}

        estimated: list[Usage] = []  # at most one: parsing the whole stream again is not cheap

        def final_usage(relay: StreamRelay) -> Usage:
            if relay.usage is not None:
                return relay.usage
            if not estimated:
                estimated.append(_estimate(body, relay.output_text()))
            return estimated[0]

        def stream_cost(relay: StreamRelay) -> tuple[Decimal, bool]:
            usage = final_usage(relay)
            return cost_usd(decision.model, usage), usage.estimated

        def on_end(relay: StreamRelay) -> None:
            _settle(event, decision, final_usage(relay))
            event.ttft_ms = relay.ttft_ms
            if relay.error is not None:
                event.status, event.error_type = relay.error.status_code, relay.error.code or relay.error.error_type
            elif relay.cancelled and not relay.completed:
                event.status, event.error_type = 499, "client_disconnected"
            _publish(gateway, event)

        chunks = dispatched.chunks
        if plan.write:
            chunks = gateway.cache.tee(plan, chunks)  # cache store: after the last chunk, before [DONE]
        relay = StreamRelay(
            chunks, include_usage=bool(client_options.get("include_usage")), on_end=on_end, cost=stream_cost
        )
        try:
            await relay.prefetch()
        except GatewayError as error:
            event.status, event.error_type = error.status_code, error.code or error.error_type
            _publish(gateway, event)
            raise
        return ChatOutcome(decision, headers, stream=relay)

    response = dispatched.response or {}
    if crosscheck.wanted(gateway, decision, call.quality, stream=False):
        checked = await crosscheck.cross_check(gateway, body, decision, response)
        headers["x-gateway-cross-check"] = checked.outcome
        event.cross_check = f"{checked.outcome}:{checked.detail}"
        if checked.decision is not decision:
            decision, response = checked.decision, checked.response
            headers.update(decision.headers())
            event.routed_model, event.provider, event.tier = decision.model.id, decision.provider, decision.tier
        extra_cost += _publish_side_calls(gateway, call, body, decision, checked)
    usage = Usage.from_openai(response.get("usage"))
    if usage is None:
        usage = _estimate(body, _response_text(response))
        response["usage"] = usage.to_openai()
    headers["x-gateway-cost"] = _settle(event, decision, usage)
    if extra_cost:
        headers["x-gateway-cost-total"] = format_cost(Decimal(headers["x-gateway-cost"]) + extra_cost)
    if usage.estimated:
        headers["x-gateway-cost-estimated"] = "true"
    # Cache store: the answer as sent, for the next identical request.
    await gateway.cache.put(plan, CachedAnswer(usage, response=response))
    _publish(gateway, event)
    return ChatOutcome(decision, headers, response=response)
