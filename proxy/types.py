"""Small values passed along the request path. No behaviour lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import Complexity, Limits, ModelConfig, Task, Tier

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the project and token a request is charged to, and what they may use.

    `max_tier` is the tightest ceiling from the token, the project, a budget
    near its limit and the request's own `x-gateway-max-tier`; the router never
    routes above it. `request_max_tier` is that header's value, kept so an
    error can say the request itself set the limit.
    """

    project: str = "default"
    token_id: str | None = None
    max_tier: Tier | None = None
    request_max_tier: Tier | None = None
    allowed_models: tuple[str, ...] = ()
    token_limits: Limits | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    task: Task
    complexity: Complexity
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The model chosen for a request, and why."""

    requested_model: str
    model: ModelConfig
    task: Task
    complexity: Complexity
    tier: Tier
    reasons: tuple[str, ...]
    candidates: tuple[ModelConfig, ...] = ()
    # The highest tier this request may reach (the project's MAX_ESCALATION_LAYER).
    ceiling: Tier = "L3"
    # False when the client named a concrete model or tier: no fallback to
    # other models and no escalation, only retries of that model.
    flexible: bool = True

    @property
    def provider(self) -> str:
        return self.model.provider

    def headers(self) -> dict[str, str]:
        return {
            "x-gateway-model": self.model.id,
            "x-gateway-tier": self.tier,
            "x-gateway-task": self.task,
            "x-gateway-route-reason": ",".join(self.reasons),
        }


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False

    @classmethod
    def from_openai(cls, usage: JSON | None) -> Usage | None:
        if not usage:
            return None
        details = usage.get("prompt_tokens_details") or {}
        return cls(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
        )

    def to_openai(self) -> JSON:
        body: JSON = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        if self.cached_tokens:
            body["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return body


@dataclass(slots=True)
class UsageEvent:
    """One row of the usage log; built as the request goes, written after it."""

    request_id: str
    started_at: float
    endpoint: str
    project: str = "default"
    token_id: str | None = None
    client: str | None = None
    conversation_id: str | None = None
    task: str | None = None
    complexity: str | None = None
    tier: str | None = None
    requested_model: str | None = None
    routed_model: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    cost_estimated: bool = False
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    status: int = 200
    error_type: str | None = None
    cache_hit: bool = False
    stream: bool = False
    escalated_from: str | None = None
    cross_check: str | None = None
    route_reasons: list[str] = field(default_factory=list)
    cache_saved_usd: float = 0.0
