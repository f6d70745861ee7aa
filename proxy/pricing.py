"""What a request cost, in USD, from its usage and the model's prices."""

from __future__ import annotations

from decimal import Decimal

from .config import ModelConfig
from .types import Usage

_MILLION = Decimal(1_000_000)


def cost_usd(model: ModelConfig, usage: Usage) -> Decimal:
    """Exact decimal cost: cached input at its own price where the model has one."""
    price = model.price
    cached = min(usage.cached_tokens, usage.input_tokens)
    cached_price = price.cached_input if price.cached_input is not None else price.input
    total = (
        Decimal(usage.input_tokens - cached) * Decimal(str(price.input))
        + Decimal(cached) * Decimal(str(cached_price))
        + Decimal(usage.output_tokens) * Decimal(str(price.output))
    )
    return total / _MILLION


def format_cost(cost: Decimal) -> str:
    return f"{cost:.9f}".rstrip("0").rstrip(".") if cost else "0"
