"""One adapter per wire format; `build_providers` turns config into live adapters."""

from __future__ import annotations

from ..config import Config, ProviderConfig
from .anthropic import AnthropicProvider
from .base import Provider
from .demo import DemoProvider
from .openai import OpenAIProvider

ADAPTERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "demo": DemoProvider,
}


def build_provider(name: str, config: ProviderConfig) -> Provider:
    return ADAPTERS[config.kind](name, config)


def build_providers(config: Config) -> dict[str, Provider]:
    """Adapters for every usable provider (enabled, and keyed where a key is needed)."""
    return {name: build_provider(name, pc) for name, pc in config.providers.items() if pc.usable}


__all__ = ["Provider", "build_provider", "build_providers"]
