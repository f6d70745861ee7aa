"""AI MCP Gateway: an OpenAI-compatible LLM gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .config import Config, ConfigError, config_from_dict, load_config

__all__ = ["Config", "ConfigError", "config_from_dict", "create_app", "load_config"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Imported on first use: `python -m proxy.usage.writer` (the usage writer
    # process) must not pay for the whole app, only for what it runs.
    if name == "create_app":
        from .app import create_app

        return create_app
    if name in ("Config", "ConfigError", "config_from_dict", "load_config"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module 'proxy' has no attribute {name!r}")
