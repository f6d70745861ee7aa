"""load_config: validation messages that name the key, env overrides, the packaged example."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import PACKAGED_EXAMPLE, ConfigError, config_from_dict, load_config


def test_packaged_example_is_valid_and_is_the_top_level_config() -> None:
    config = load_config(PACKAGED_EXAMPLE, env={})
    assert {m.tier for m in config.models} == {"L0", "L1", "L2", "L3"}
    top_level = Path(__file__).parent.parent / "config.yaml"
    assert top_level.read_text() == PACKAGED_EXAMPLE.read_text()


def test_errors_name_the_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - {id: a, provider: demo, tier: L5}\n")
    with pytest.raises(ConfigError) as error:
        load_config(bad, env={})
    assert "models[0].tier" in str(error.value) and "bad.yaml" in str(error.value)

    with pytest.raises(ConfigError, match=r"models\[0\].provider: unknown provider 'nowhere'"):
        config_from_dict({"models": [{"id": "x", "provider": "nowhere", "tier": "L0"}]}, env={})
    with pytest.raises(ConfigError, match="routing.aliases.foo: unknown target 'bar'"):
        config_from_dict({"routing": {"aliases": {"foo": "bar"}}}, env={})
    with pytest.raises(ConfigError, match="server.colour"):
        config_from_dict({"server": {"colour": "blue"}}, env={})


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("server: [unclosed")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(broken, env={})
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml", env={})


def test_env_expansion_and_seed_overrides() -> None:
    env = {
        "OPENAI_API_KEY": "sk-from-env",
        "DEFAULT_LAYER": "L1",
        "MAX_ESCALATION_LAYER": "L2",
        "API_PORT": "4100",
        "LOG_LEVEL": "DEBUG",
        "CODE_MODELS": "gpt-4o-mini",
        "OSS_MODEL_ENABLED": "true",
        "OSS_MODEL_ENDPOINT": "http://ollama:11434",
        "OSS_MODEL_NAME": "qwen2.5:7b",
        "OPENROUTER_API_KEY": "or-key",
        "OPENROUTER_FALLBACK_MODELS": "a/free-1:free,b/free-2:free",
        "OPENROUTER_REPLACE_CLAUDE": "anthropic/claude-3.5-sonnet",
        "ENABLE_AUTO_ESCALATE": "true",
    }
    config = load_config(PACKAGED_EXAMPLE, env=env)
    assert config.providers["openai"].api_key == "sk-from-env"
    assert config.providers["anthropic"].api_key is None
    assert config.routing.default_tier == "L1" and config.routing.max_tier == "L2"
    assert config.server.port == 4100 and config.server.log_level == "debug"
    assert config.routing.task_models["code"] == ("gpt-4o-mini",)
    assert config.providers["ollama"].base_url == "http://ollama:11434/v1"
    assert config.model("qwen2.5:7b") is not None and config.model("qwen2.5:7b").tier == "L0"  # type: ignore[union-attr]
    assert config.model("a/free-1:free").provider == "openrouter"  # type: ignore[union-attr]
    assert config.routing.aliases["claude-sonnet-4-20250514"] == "anthropic/claude-3.5-sonnet"
    assert config.routing.auto_escalate is True


def test_default_expansion_when_env_unset() -> None:
    config = load_config(PACKAGED_EXAMPLE, env={})
    assert config.providers["ollama"].base_url == "http://127.0.0.1:11434/v1"
    assert config.redis_url is None
