"""OpenRouter's free models as an L0 fallback.

When L0 has no usable model of its own and an OpenRouter key is configured,
the router borrows the top few zero-priced models from OpenRouter's
`/models` list: ranked by context length, then capability (tool calling,
structured output), cached and refreshed in the background after
`refresh_seconds`. The list is fetched at start-up when L0 is empty, and
lazily (without blocking a request) when L0's own models all fail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx

from ..config import ModelConfig, OpenRouterFreeConfig, Price

log = logging.getLogger("proxy.openrouter_free")


class OpenRouterFree:
    def __init__(self, config: OpenRouterFreeConfig, provider_name: str, client: httpx.AsyncClient) -> None:
        self.config = config
        self.provider_name = provider_name
        self.client = client
        self._models: tuple[ModelConfig, ...] = ()
        self.fetched_at: float | None = None
        self.last_error: str | None = None
        self._refreshing: asyncio.Task[None] | None = None
        self._announced = False

    def models(self) -> tuple[ModelConfig, ...]:
        """The cached free models; a stale list is refreshed in the background."""
        stale = self.fetched_at is None or time.monotonic() - self.fetched_at > self.config.refresh_seconds
        if stale and self._refreshing is None:
            try:
                self._refreshing = asyncio.get_running_loop().create_task(self._refresh_once())
            except RuntimeError:
                pass  # no loop (a CLI dry run): use what is cached
        if self._models and not self._announced:
            self._announced = True
            log.warning(
                "L0 has no usable model: using OpenRouter's free models %s", ", ".join(m.id for m in self._models)
            )
        return self._models

    async def _refresh_once(self) -> None:
        try:
            await self.refresh()
        finally:
            self._refreshing = None

    async def refresh(self) -> tuple[ModelConfig, ...]:
        """Fetch /models, keep the zero-priced ones, rank them and keep the top few."""
        try:
            response = await self.client.get("/models")
            response.raise_for_status()
            data = response.json().get("data") or []
        except (httpx.HTTPError, ValueError, AttributeError) as error:
            self.last_error = f"{type(error).__name__}: {error}"[:200]
            self.fetched_at = time.monotonic()  # retry after the refresh interval, not on every request
            log.warning("cannot fetch OpenRouter's model list: %s", self.last_error)
            return self._models
        self._models = rank_free_models(data, self.provider_name, self.config.top)
        self.fetched_at = time.monotonic()
        self.last_error = None
        self._announced = False
        log.info(
            "OpenRouter free models (top %d): %s", self.config.top, ", ".join(m.id for m in self._models) or "none"
        )
        return self._models

    def status(self) -> dict[str, Any]:
        return {
            "models": [m.id for m in self._models],
            "fetched": self.fetched_at is not None,
            "lastError": self.last_error,
        }


def _is_free(entry: dict[str, Any]) -> bool:
    pricing = entry.get("pricing")
    if not isinstance(pricing, dict):
        return False
    try:
        return float(pricing.get("prompt", 1)) == 0 and float(pricing.get("completion", 1)) == 0
    except (TypeError, ValueError):
        return False


def _capability(entry: dict[str, Any]) -> int:
    params = entry.get("supported_parameters") or []
    return sum(1 for p in ("tools", "response_format", "structured_outputs") if p in params)


def rank_free_models(data: list[Any], provider: str, top: int) -> tuple[ModelConfig, ...]:
    """Zero-priced models, longest context first, then the most capable."""
    free = [e for e in data if isinstance(e, dict) and isinstance(e.get("id"), str) and _is_free(e)]
    free.sort(key=lambda e: (-int(e.get("context_length") or 0), -_capability(e), e["id"]))
    return tuple(
        ModelConfig(
            id=e["id"],
            provider=provider,
            tier="L0",
            price=Price(input=0, output=0),
            context_window=max(1, int(e.get("context_length") or 8192)),
        )
        for e in free[:top]
    )
