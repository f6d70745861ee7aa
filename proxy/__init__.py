"""AI MCP Gateway: an OpenAI-compatible LLM gateway."""

from .app import create_app
from .config import Config, ConfigError, config_from_dict, load_config

__all__ = ["Config", "ConfigError", "config_from_dict", "create_app", "load_config"]
__version__ = "0.1.0"
