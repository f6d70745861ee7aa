"""What a request cost, in USD, from its usage and the model's prices."""

from __future__ import annotations

import functools
from decimal import Decimal

from .config import ModelConfig
from .types import Usage

_MILLION = Decimal(1_000_000)


def cost_usd(model: ModelConfig, usage: Usage) -> Decimal:
    """Exact decimal cost: cached input at its own price where the model has one."""
    price = model.price
    cached = min(usage.cached_tokens, usage.input_tokens)
    cached_price = price.cached_input if price.cached_input is not None else price.input
    per_input, per_cached, per_output = _per_token(price.input, cached_price, price.output)
    return (usage.input_tokens - cached) * per_input + cached * per_cached + usage.output_tokens * per_output


@functools.lru_cache(maxsize=1024)
def _per_token(input_usd: float, cached_usd: float, output_usd: float) -> tuple[Decimal, Decimal, Decimal]:
    # USD per token as exact decimals, converted once per price list rather than per request.
    return (
        Decimal(str(input_usd)) / _MILLION,
        Decimal(str(cached_usd)) / _MILLION,
        Decimal(str(output_usd)) / _MILLION,
    )


def format_cost(cost: Decimal) -> str:
    return f"{cost:.9f}".rstrip("0").rstrip(".") if cost else "0"
