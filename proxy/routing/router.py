"""Turn the `model` a client sent into a concrete model, a tier and reasons.

Built once per config (tables are precomputed here, not per request) and
called in-process on every request. Within a tier, candidates are ordered by
the task's preferred model list (`CHAT_MODELS`, ...), then health (a model
whose circuit is open goes last), then price; equal candidates take turns so
load spreads across them.
"""

from __future__ import annotations

import itertools
from typing import Any, Protocol

from ..config import TASKS, TIERS, Config, ModelConfig, Task, Tier
from ..errors import NotFound, PermissionDenied, ServiceUnavailable
from ..types import Classification, Principal, RouteDecision
from .classify import classify
from .health import HealthBoard


class FreeModels(Protocol):
    """Where L0 finds models when it has none of its own (OpenRouter's free list)."""

    def models(self) -> tuple[ModelConfig, ...]: ...


VIRTUAL_MODELS: tuple[str, ...] = ("auto", *TIERS, *TASKS)


def tier_index(tier: Tier) -> int:
    return TIERS.index(tier)


class Router:
    def __init__(
        self,
        config: Config,
        available_providers: set[str],
        health: HealthBoard | None = None,
        free_models: FreeModels | None = None,
    ) -> None:
        self.config = config
        self.routing = config.routing
        self.health = health
        self.free_models = free_models
        self._turns = itertools.count()
        disabled = set(config.routing.disabled_tiers)
        usable = [
            m for m in config.models if m.enabled and m.provider in available_providers and m.tier not in disabled
        ]
        real = [m for m in usable if config.providers[m.provider].kind != "demo"]
        # The demo model answers only when nothing real can.
        self.demo_only = not real
        self.routable: tuple[ModelConfig, ...] = tuple(real or usable)
        self.by_id: dict[str, ModelConfig] = {m.id: m for m in usable}
        self.by_tier: dict[Tier, tuple[ModelConfig, ...]] = {
            tier: tuple(sorted((m for m in self.routable if m.tier == tier), key=_price_key)) for tier in TIERS
        }

    # -- public --------------------------------------------------------------

    def route(
        self, body: dict[str, Any], *, quality: str | None = None, principal: Principal | None = None
    ) -> RouteDecision:
        requested = body.get("model") or "auto"
        if not isinstance(requested, str):
            requested = "auto"
        target = self.routing.aliases.get(requested, requested)
        reasons: list[str] = [f"alias:{requested}->{target}"] if target != requested else []

        concrete = self.by_id.get(target)
        if concrete is not None and target not in VIRTUAL_MODELS:
            if (
                principal is not None
                and principal.request_max_tier is not None
                and tier_index(concrete.tier) > tier_index(principal.request_max_tier)
            ):
                raise _above_request_ceiling(
                    f"model {concrete.id!r} is tier {concrete.tier}, above this request's "
                    f"x-gateway-max-tier {principal.request_max_tier}"
                )
            found = classify(body, quality)
            reasons.append("model:explicit")
            return RouteDecision(
                requested,
                concrete,
                found.task,
                found.complexity,
                concrete.tier,
                tuple(reasons),
                (concrete,),
                ceiling=self.max_tier(principal),
                flexible=False,
            )
        if target not in VIRTUAL_MODELS:
            configured = self.config.model(target)
            if configured is not None:
                raise ServiceUnavailable(
                    f"model {target!r} is configured but its provider {configured.provider!r} is not available "
                    "(missing API key, disabled, or not answering)",
                    code="model_unavailable",
                )
            raise NotFound(
                f"The model {requested!r} does not exist on this gateway. GET /v1/models lists the models you can use "
                "(or send 'auto' to let the gateway choose).",
                param="model",
                code="model_not_found",
            )

        found = classify(body, quality)
        reasons.extend(found.reasons)
        task: Task = found.task
        if target in TASKS:
            task = target
            reasons.append(f"task:requested_{target}")
        if target in TIERS:
            tier: Tier = target
            reasons.append(f"tier:requested_{target}")
        else:
            tier = self._tier_for(task, found)
            if tier_index(tier) < tier_index(self.routing.default_tier):
                tier = self.routing.default_tier
                reasons.append(f"tier:floor_{tier}")
        ceiling = self.max_tier(principal)
        requested_ceiling = principal is not None and principal.request_max_tier == ceiling
        if requested_ceiling:
            reasons.append(f"ceiling:request_{ceiling}")
        if tier_index(tier) > tier_index(ceiling):
            reasons.append(f"tier:capped_{tier}->{ceiling}")
            tier = ceiling
        try:
            model, chosen_tier, candidates = self.pick(task, tier, ceiling)
        except ServiceUnavailable:
            if requested_ceiling and any(self.by_tier[t] for t in TIERS[tier_index(ceiling) + 1 :]):
                raise _above_request_ceiling(
                    f"no model at or below this request's x-gateway-max-tier {ceiling} can answer"
                ) from None
            raise
        if chosen_tier != tier:
            reasons.append(f"tier:empty_{tier}->{chosen_tier}")
        if model.id not in self.by_id:
            reasons.append("tier:openrouter_free")
        if self.health is not None and not self.health.usable(model.provider, model.id):
            reasons.append("health:all_circuits_open")
        return RouteDecision(
            requested,
            model,
            task,
            found.complexity,
            chosen_tier,
            tuple(reasons),
            candidates,
            ceiling=ceiling,
            flexible=target not in TIERS,
        )

    def max_tier(self, principal: Principal | None) -> Tier:
        ceiling = self.routing.max_tier
        if principal and principal.max_tier and tier_index(principal.max_tier) < tier_index(ceiling):
            ceiling = principal.max_tier
        return ceiling

    def pick(self, task: Task, tier: Tier, ceiling: Tier) -> tuple[ModelConfig, Tier, tuple[ModelConfig, ...]]:
        """Cheapest fitting model at `tier`; if that tier is empty, the nearest one up to the ceiling, then down."""
        start = tier_index(tier)
        order = list(range(start, tier_index(ceiling) + 1)) + list(range(start - 1, -1, -1))
        for index in order:
            candidates = self.candidates(task, TIERS[index])
            if candidates:
                return candidates[0], TIERS[index], candidates
        raise ServiceUnavailable(
            "no model is available for this request: configure a provider key or enable a model "
            f"at or below tier {ceiling}",
        )

    def candidates(self, task: Task, tier: Tier) -> tuple[ModelConfig, ...]:
        """The tier's models in the order to try them: preferred, healthy, cheap; equals take turns."""
        in_tier = self.by_tier[tier]
        ranked: dict[str, int] = {}  # the free list comes ranked (context, capability): keep its order
        if tier == "L0" and self.free_models is not None and not self._any_usable(in_tier):
            free = self.free_models.models()
            ranked = {m.id: i for i, m in enumerate(free)}
            in_tier = in_tier + free
        fitting = [m for m in in_tier if task in m.tasks] or list(in_tier)
        if not fitting:
            return ()
        rank = {name: i for i, name in enumerate(self.routing.task_models.get(task, ()))}

        def key(model: ModelConfig) -> tuple[int, bool, float, int, int]:
            return (
                rank.get(model.id, len(rank)),
                not self._usable(model),
                _price_key(model),
                ranked.get(model.id, 0),
                -model.context_window,
            )

        fitting.sort(key=key)
        leaders = [m for m in fitting if key(m) == key(fitting[0])]
        if len(leaders) > 1:
            turn = next(self._turns) % len(leaders)
            fitting[: len(leaders)] = leaders[turn:] + leaders[:turn]
        return tuple(fitting)

    def next_tier(self, task: Task, tier: Tier, ceiling: Tier) -> tuple[Tier, tuple[ModelConfig, ...]] | None:
        """The nearest tier above `tier`, up to `ceiling`, that has a model for the task."""
        for index in range(tier_index(tier) + 1, tier_index(ceiling) + 1):
            found = self.candidates(task, TIERS[index])
            if found:
                return TIERS[index], found
        return None

    def _usable(self, model: ModelConfig) -> bool:
        return self.health is None or self.health.usable(model.provider, model.id)

    def _any_usable(self, models: tuple[ModelConfig, ...]) -> bool:
        return any(self._usable(m) for m in models)

    def _tier_for(self, task: Task, found: Classification) -> Tier:
        """First matching YAML rule, else the complexity's default tier."""
        for rule in self.routing.rules:
            if (rule.task is None or rule.task == task) and (
                rule.complexity is None or rule.complexity == found.complexity
            ):
                return rule.tier
        return self.routing.complexity_tiers[found.complexity]

    def list_models(self) -> list[ModelConfig]:
        return list(self.by_id.values()) if self.demo_only else [m for m in self.by_id.values() if m in self.routable]


def _above_request_ceiling(what: str) -> PermissionDenied:
    """The request's own `x-gateway-max-tier` rules out every model it could use: raise or drop the header."""
    return PermissionDenied(
        f"{what}; raise or drop the header, or name a model at or below it",
        param="x-gateway-max-tier",
        code="tier_ceiling",
    )


def _price_key(model: ModelConfig) -> float:
    return model.price.input + model.price.output
