"""Call the upstream for a routing decision: retries, failover, escalation.

`call_upstream` is the one step between "which model" and "stream it back":

    for each tier, starting at the decision's:
        for each candidate of the tier (skipping open circuits):
            try it, retrying 429/5xx/connection errors with backoff + jitter
            (a Retry-After is honoured when it is short, else move on)
            a non-streamed answer must also be an answer (not empty,
            truncated, invalid JSON for a JSON format, or a refusal)
        then one tier up, with a handoff note: by itself with auto-escalate,
        else only with the client's approval token (HTTP 402 otherwise)

A stream is only retried or moved before its first chunk; once bytes have
gone out, a failure ends the stream with an error event (`streaming.py`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from email.utils import parsedate_to_datetime

from .config import TIERS, ModelConfig, Tier
from .errors import EscalationRequired, GatewayError, PermissionDenied, UpstreamError, UpstreamUnavailable
from .pricing import format_cost
from .providers import Provider
from .providers.anthropic_format import NATIVE_KEY
from .routing.escalation import Grant, answer_problem, fingerprint, handoff_message
from .runtime import Gateway
from .tokencount import estimate_messages_tokens
from .types import JSON, Principal, RouteDecision, Usage

log = logging.getLogger("proxy.upstream")

# Upstream answers that say "this request is wrong", not "this model is unwell":
# no retry and no other model would do better.
_CLIENT_ERRORS = frozenset({400, 413, 422})


@dataclass
class Attempt:
    """One try of one model, as the usage log and the escalation error report it."""

    model: str
    provider: str
    tier: Tier
    outcome: str  # ok | error | timeout | circuit_open | empty | truncated | invalid_json | refusal
    status: int | None = None
    detail: str = ""
    latency_ms: float = 0.0
    usage: Usage | None = None
    model_config: ModelConfig | None = None

    def public(self) -> JSON:
        return {"model": self.model, "tier": self.tier, "outcome": self.outcome, "status": self.status}


@dataclass
class Dispatched:
    """What answered: the final decision, the answer (or the stream), and every attempt made."""

    decision: RouteDecision
    response: JSON | None = None
    chunks: AsyncIterator[bytes] | None = None
    attempts: list[Attempt] = field(default_factory=list)
    escalated_from: Tier | None = None


# Builds the messages a higher tier receives when a request escalates, in place
# of the request's own messages plus a handoff note. The seed's stateful API
# passes one that sends a compact package (summary, current task, previous
# attempts, known issues) instead of the whole conversation. Called with the
# attempts so far and why the last tier failed.
Handoff = Callable[[list[Attempt], str], list[JSON]]


class _TierFailed(Exception):
    def __init__(self, reason: str, error: GatewayError | None, response: JSON | None = None) -> None:
        self.reason = reason
        self.error = error
        self.response = response


async def call_upstream(
    gateway: Gateway,
    body: JSON,
    decision: RouteDecision,
    *,
    principal: Principal,
    approval: str | None = None,
    handoff: Handoff | None = None,
) -> Dispatched:
    """Answer `body` starting from `decision`; raise the last error when nothing can."""
    attempts: list[Attempt] = []
    start_tier = decision.tier
    sent = body
    if approval:
        decision = await _approved(gateway, body, decision, principal, approval)
        if handoff is not None and decision.tier != start_tier:
            sent = {
                **body,
                "messages": handoff(attempts, "a lower tier fell short; the client approved this escalation"),
            }
    while True:
        try:
            response, chunks, answered = await _try_tier(gateway, sent, decision, attempts)
            final = replace(decision, model=answered)
            escalated_from = start_tier if decision.tier != start_tier else None
            return Dispatched(final, response, chunks, attempts, escalated_from)
        except _TierFailed as failure:
            nxt = (
                gateway.router.next_tier(decision.task, decision.tier, decision.ceiling) if decision.flexible else None
            )
            if nxt is None:
                if failure.response is not None:
                    # Nothing above to ask: the last answer, flawed as it is, beats an error. It is
                    # costed once, on the request's own row, not also as a rejected attempt.
                    attempts[-1].usage = None
                    return Dispatched(decision, failure.response, None, attempts, _from(start_tier, decision))
                raise failure.error or GatewayError(f"no model could answer: {failure.reason}") from None
            tier, candidates = nxt
            if not gateway.config.routing.auto_escalate and _paid(candidates):
                raise await _escalation_required(
                    gateway, body, decision, tier, candidates, failure.reason, attempts, principal
                ) from None
            log.info("escalating %s -> %s (%s)", decision.tier, tier, failure.reason)
            if handoff is not None:
                sent = {**body, "messages": handoff(attempts, failure.reason)}
            else:
                tried = [f"{a.model} ({a.tier})" for a in attempts]
                sent = {
                    **body,
                    "messages": [handoff_message(decision.task, tried, failure.reason), *(body.get("messages") or [])],
                }
            decision = replace(
                decision,
                model=candidates[0],
                tier=tier,
                candidates=candidates,
                reasons=(*decision.reasons, f"escalated:{decision.tier}->{tier}:{failure.reason}"),
            )


def _from(start: Tier, decision: RouteDecision) -> Tier | None:
    return start if decision.tier != start else None


def _paid(candidates: tuple[ModelConfig, ...]) -> bool:
    return bool(candidates) and (candidates[0].price.input > 0 or candidates[0].price.output > 0)


async def _try_tier(
    gateway: Gateway, body: JSON, decision: RouteDecision, attempts: list[Attempt]
) -> tuple[JSON | None, AsyncIterator[bytes] | None, ModelConfig]:
    health = gateway.health
    candidates = decision.candidates if decision.flexible else (decision.model,)
    if decision.model not in candidates:
        candidates = (decision.model, *candidates)
    last_error: GatewayError | None = None
    for model in candidates:
        if not await health.admit(model.provider, model.id):
            attempts.append(Attempt(model.id, model.provider, decision.tier, "circuit_open", model_config=model))
            continue
        provider = gateway.providers.get(model.provider)
        if provider is None:
            continue
        try:
            response, chunks = await _with_retries(gateway, provider, body, model, decision.tier, attempts)
        except GatewayError as error:
            if error.status_code in _CLIENT_ERRORS:
                raise
            last_error = error
            if not decision.flexible:
                raise
            continue
        if response is not None:
            problem = answer_problem(body, response)
            if problem is not None:
                attempts[-1].outcome = problem
                attempts[-1].usage = Usage.from_openai(response.get("usage"))
                raise _TierFailed(problem, None, response)
        return response, chunks, model
    if last_error is None:
        last_error = UpstreamUnavailable(
            "every model of tier " + decision.tier + " is failing (circuit open); try again shortly",
            provider=decision.provider,
            status_code=503,
            code="circuit_open",
        )
        raise _TierFailed("circuit_open", last_error)
    raise _TierFailed(_reason(last_error), last_error)


def _reason(error: GatewayError) -> str:
    if error.code == "upstream_timeout":
        return "timeout"
    return f"upstream_{error.status_code}"


async def _with_retries(
    gateway: Gateway, provider: Provider, body: JSON, model: ModelConfig, tier: Tier, attempts: list[Attempt]
) -> tuple[JSON | None, AsyncIterator[bytes] | None]:
    retry = gateway.config.routing.retry
    upstream_body = {**body, "model": model.upstream_model}
    if provider.config.kind != "anthropic":
        upstream_body.pop(NATIVE_KEY, None)  # the Messages dialect's own fields: for an Anthropic upstream only
    stream = bool(body.get("stream"))
    if stream:
        upstream_body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    for attempt_index in range(retry.attempts):
        started = time.perf_counter()
        attempt = Attempt(model.id, model.provider, tier, "ok", model_config=model)
        attempts.append(attempt)
        try:
            if stream:
                chunks = provider.stream(upstream_body)
                first = await _first_chunk(chunks)
                attempt.latency_ms = (time.perf_counter() - started) * 1000
                gateway.health.record(model.provider, model.id, True, latency_ms=attempt.latency_ms)
                return None, _prepend(first, chunks)
            response = await provider.complete(upstream_body)
            attempt.latency_ms = (time.perf_counter() - started) * 1000
            gateway.health.record(model.provider, model.id, True, latency_ms=attempt.latency_ms)
            return response, None
        except GatewayError as error:
            attempt.latency_ms = (time.perf_counter() - started) * 1000
            attempt.status = error.status_code
            attempt.detail = error.message[:200]
            timeout = error.code == "upstream_timeout"
            attempt.outcome = "timeout" if timeout else "error"
            if error.status_code in _CLIENT_ERRORS:
                raise
            # A timeout already cost the whole timeout: the next candidate is the better bet than the same model.
            retryable = not timeout and (
                isinstance(error, UpstreamUnavailable) or (isinstance(error, UpstreamError) and error.retryable)
            )
            if error.status_code != 429:  # rate limiting is backpressure, not ill health
                gateway.health.record(
                    model.provider,
                    model.id,
                    False,
                    latency_ms=attempt.latency_ms,
                    error=error.message[:200],
                    timeout=timeout,
                    provider_wide=isinstance(error, UpstreamUnavailable) and not timeout,
                )
            if not retryable or attempt_index + 1 >= retry.attempts:
                raise
            wait = _retry_after(error)
            if wait is None:
                wait = random.uniform(0, min(retry.max_backoff_seconds, retry.backoff_seconds * 2**attempt_index))
            elif wait > retry.max_retry_after_seconds:
                raise  # a long Retry-After: the next candidate is the better bet
            log.info("retrying %s in %.2fs after %s", model.id, wait, error.message[:120])
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(error: GatewayError) -> float | None:
    value = error.headers.get("Retry-After") or error.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


async def _first_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise


async def _prepend(first: bytes | None, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first is not None:
            yield first
            async for chunk in chunks:
                yield chunk
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def _escalation_required(
    gateway: Gateway,
    body: JSON,
    decision: RouteDecision,
    tier: Tier,
    candidates: tuple[ModelConfig, ...],
    reason: str,
    attempts: list[Attempt],
    principal: Principal,
) -> EscalationRequired:
    model = candidates[0]
    tokens_in = estimate_messages_tokens(body.get("messages") or [], body.get("tools"))
    tokens_out = int(body.get("max_completion_tokens") or body.get("max_tokens") or 1000)
    estimate = (
        Decimal(tokens_in) * Decimal(str(model.price.input)) + Decimal(tokens_out) * Decimal(str(model.price.output))
    ) / Decimal(1_000_000)
    grant = Grant(principal.project, fingerprint(principal.project, body), tier, decision.tier, reason)
    token = await gateway.approvals.issue(grant)
    ttl = gateway.config.routing.escalation_token_ttl_seconds
    return EscalationRequired(
        f"tier {decision.tier} could not answer ({reason}); tier {tier} ({model.id}) costs money and "
        f"auto-escalation is off. Repeat the request with the header 'x-gateway-approve-escalation: {token}' "
        f"within {int(ttl)} seconds to approve it once.",
        extra={
            "escalation": {
                "fromTier": decision.tier,
                "proposedTier": tier,
                "proposedModel": model.id,
                "reason": reason,
                "estimatedCostUsd": format_cost(estimate),
                "approvalToken": token,
                "expiresInSeconds": ttl,
                "attempts": [a.public() for a in attempts],
            }
        },
        headers={"x-gateway-escalation": "required"},
    )


async def _approved(
    gateway: Gateway, body: JSON, decision: RouteDecision, principal: Principal, token: str
) -> RouteDecision:
    """The decision moved to the tier an approval token grants, or a 403 for a bad token."""
    grant = await gateway.approvals.redeem(token.strip())
    if grant is None:
        raise PermissionDenied(
            "the escalation approval token is unknown, already used or expired; send the request without it "
            "to get a new one",
            param="x-gateway-approve-escalation",
            code="escalation_token_invalid",
        )
    if grant.project != principal.project or grant.fingerprint != fingerprint(principal.project, body):
        raise PermissionDenied(
            "this escalation approval token was issued for a different request or project",
            param="x-gateway-approve-escalation",
            code="escalation_token_mismatch",
        )
    tier = grant.tier
    if TIERS.index(tier) > TIERS.index(decision.ceiling):
        tier = decision.ceiling
    if TIERS.index(tier) <= TIERS.index(decision.tier):
        return decision
    candidates = gateway.router.candidates(decision.task, tier)
    if not candidates:
        return decision
    return replace(
        decision,
        model=candidates[0],
        tier=tier,
        candidates=candidates,
        reasons=(*decision.reasons, f"escalated:{grant.from_tier}->{tier}:approved"),
    )
