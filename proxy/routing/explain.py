"""The routing decision for a request, explained, without calling any model.

Used by `POST /v1/route` with `"dryRun": true` and by `aigw route`. Accepts
the seed's `{message, qualityLevel, model}` or an OpenAI chat body (`messages`
with `tools`, `max_tokens`, `response_format` ...), and answers

    {task, complexity, tier, model, provider, reasons, candidates, maxTier, ...}
"""

from __future__ import annotations

from typing import Any

from ..config import TIERS
from ..errors import InvalidRequest
from ..requests import check_chat
from ..types import JSON, Principal
from .router import Router

QUALITIES = ("low", "normal", "high")


def chat_body(body: JSON) -> JSON:
    """An OpenAI-shaped chat body from either request shape; bad input raises `InvalidRequest`."""
    if "messages" in body:
        chat = {
            k: v
            for k, v in body.items()
            if k not in ("dryRun", "message", "qualityLevel", "conversationId", "userId", "projectId")
        }
    else:
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise InvalidRequest(
                "send 'message' (a string) or 'messages' (an OpenAI messages array)",
                param="message",
                code="missing_required_parameter",
            )
        chat = {"messages": [{"role": "user", "content": message}]}
        for key in ("model", "tools", "max_tokens", "response_format"):
            if key in body:
                chat[key] = body[key]
    chat.setdefault("model", "auto")
    check_chat(chat)
    return chat


def quality_of(body: JSON, header: str | None) -> str | None:
    value = body.get("qualityLevel", body.get("quality"))
    if value is None:
        value = header
    if value is not None and value not in QUALITIES:
        raise InvalidRequest(
            "'qualityLevel' must be one of low, normal, high", param="qualityLevel", code="invalid_value"
        )
    return value


def explain(router: Router, body: JSON, *, quality: str | None = None, principal: Principal | None = None) -> JSON:
    """The decision as JSON: what a real call would do first, and what it would fall back to."""
    chat = chat_body(body)
    decision = router.route(chat, quality=quality, principal=principal)
    health = router.health

    def describe(model: Any) -> JSON:
        state = health.state(model.provider, model.id) if health is not None else "closed"
        return {
            "model": model.id,
            "provider": model.provider,
            "tier": model.tier,
            "price": {"input": model.price.input, "output": model.price.output},
            "circuit": state,
        }

    escalation: list[JSON] = []
    if decision.flexible:
        tier = decision.tier
        while True:
            nxt = router.next_tier(decision.task, tier, decision.ceiling)
            if nxt is None:
                break
            tier = nxt[0]
            escalation.append({"tier": tier, "model": nxt[1][0].id})
    return {
        "task": decision.task,
        "complexity": decision.complexity,
        "tier": decision.tier,
        "model": decision.model.id,
        "provider": decision.provider,
        "reasons": list(decision.reasons),
        "candidates": [describe(m) for m in decision.candidates],
        "maxTier": decision.ceiling,
        "escalation": escalation,
        "autoEscalate": router.routing.auto_escalate,
        "tiers": list(TIERS),
    }
