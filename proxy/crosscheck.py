"""Cross-check a non-streamed answer with a second model of another provider.

On with `routing.cross_check` (ENABLE_CROSS_CHECK) for requests with quality
`high` or a task in `routing.cross_check_tasks`. The second model is the
nearest candidate from a different provider (same tier first, then up to
the max tier, then down); neither it nor the judge is ever above the
request's max tier. The answers are compared structurally
(`routing/crosscheck.py`); when they disagree and `cross_check_judge` names a
model, that cheap model picks the better one. Every extra call is returned
so the caller costs and logs it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from .config import TIERS, ModelConfig
from .errors import GatewayError
from .routing.crosscheck import answer_text, judge_choice, judge_prompt, verdict
from .runtime import Gateway
from .types import JSON, RouteDecision

log = logging.getLogger("proxy.crosscheck")


@dataclass
class CrossChecked:
    outcome: str  # agreed | disagreed | judged | skipped
    detail: str
    response: JSON
    decision: RouteDecision
    calls: list[tuple[ModelConfig, JSON]] = field(default_factory=list)  # extra answers, to cost and log


def wanted(gateway: Gateway, decision: RouteDecision, quality: str | None, stream: bool) -> bool:
    routing = gateway.config.routing
    return routing.cross_check and not stream and (quality == "high" or decision.task in routing.cross_check_tasks)


def _second(gateway: Gateway, decision: RouteDecision) -> ModelConfig | None:
    start = TIERS.index(decision.tier)
    ceiling = TIERS.index(decision.ceiling)
    order = [start, *range(start + 1, ceiling + 1), *range(start - 1, -1, -1)]
    for index in order:
        for model in gateway.router.candidates(decision.task, TIERS[index]):
            if model.provider != decision.provider and model.provider in gateway.providers:
                return model
    return None


async def cross_check(gateway: Gateway, body: JSON, decision: RouteDecision, response: JSON) -> CrossChecked:
    second = _second(gateway, decision)
    if second is None:
        return CrossChecked("skipped", "no_other_provider", response, decision)
    try:
        other = await gateway.providers[second.provider].complete({**body, "model": second.upstream_model})
    except GatewayError as error:
        log.warning("cross-check with %s failed: %s", second.id, error.message)
        return CrossChecked("skipped", f"second_failed_{error.status_code}", response, decision)
    calls: list[tuple[ModelConfig, JSON]] = [(second, other)]
    first_text, second_text = answer_text(response), answer_text(other)
    format_type = (
        (body.get("response_format") or {}).get("type") if isinstance(body.get("response_format"), dict) else None
    )
    found, how = verdict(first_text, second_text, json_mode=format_type in ("json_object", "json_schema"))
    if found == "agreed":
        return CrossChecked("agreed", how, response, decision, calls)
    judge_id = gateway.config.routing.cross_check_judge
    judge = gateway.router.by_id.get(judge_id) if judge_id else None
    if judge is None or judge.provider not in gateway.providers:
        return CrossChecked("disagreed", how, response, decision, calls)
    if TIERS.index(judge.tier) > TIERS.index(decision.ceiling):
        return CrossChecked("disagreed", f"{how},judge_above_max_tier", response, decision, calls)
    messages = body.get("messages") or []
    request_text = next(
        (m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), ""
    )
    try:
        verdict_response = await gateway.providers[judge.provider].complete(
            {
                "model": judge.upstream_model,
                "messages": judge_prompt(str(request_text), first_text, second_text),
                "max_tokens": 5,
                "temperature": 0,
            }
        )
    except GatewayError as error:
        log.warning("cross-check judge %s failed: %s", judge.id, error.message)
        return CrossChecked("disagreed", how, response, decision, calls)
    calls.append((judge, verdict_response))
    choice = judge_choice(answer_text(verdict_response))
    if choice == "B":
        # The first answer becomes the side call; the second is the request's own answer now.
        calls = [(decision.model, response), (judge, verdict_response)]
        return CrossChecked("judged", f"{how},judge_chose_{second.id}", other, _as(decision, second), calls)
    return CrossChecked("judged", f"{how},judge_chose_{decision.model.id}", response, decision, calls)


def _as(decision: RouteDecision, model: ModelConfig) -> RouteDecision:
    return replace(decision, model=model, tier=model.tier)
