"""OpenRouter free-model fallback against a fake OpenRouter /api/v1/models endpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import base_config
from tests.fakes import FakeUpstream, ServerThread

MODELS = [
    {"id": "paid/large", "context_length": 1_000_000, "pricing": {"prompt": "0.000003", "completion": "0.000015"}},
    {"id": "free/small-8k", "context_length": 8_192, "pricing": {"prompt": "0", "completion": "0"}},
    {
        "id": "free/long-128k",
        "context_length": 131_072,
        "pricing": {"prompt": "0", "completion": "0"},
        "supported_parameters": ["tools"],
    },
    {"id": "free/long-128k-plain", "context_length": 131_072, "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "free/mid-32k", "context_length": 32_768, "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "free/a-16k", "context_length": 16_384, "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "free/b-4k", "context_length": 4_096, "pricing": {"prompt": "0", "completion": "0"}},
    {"id": "broken-pricing", "context_length": 999_999},
]


def test_empty_l0_borrows_the_top_five_free_openrouter_models(
    start_gateway: Callable[[dict[str, Any]], ServerThread],
    upstream: FakeUpstream,
    tmp_path: Path,
) -> None:
    upstream.models = MODELS
    raw = base_config(upstream.url, None, tmp_path)
    raw["models"] = [m for m in raw["models"] if m["tier"] != "L0"]  # L0 has no model of its own
    raw["providers"]["openrouter"] = {"kind": "openai", "base_url": upstream.url + "/api/v1", "api_key": "sk-or-fake"}
    gateway = start_gateway(raw)

    health = httpx.get(gateway.url + "/health").json()
    assert health["openrouterFree"]["models"] == [
        "free/long-128k",
        "free/long-128k-plain",
        "free/mid-32k",
        "free/a-16k",
        "free/small-8k",
    ]

    dry = httpx.post(gateway.url + "/v1/route", json={"dryRun": True, "message": "hi there"}).json()
    assert dry["tier"] == "L0" and dry["model"] == "free/long-128k" and dry["provider"] == "openrouter"
    assert "tier:openrouter_free" in dry["reasons"]

    answer = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi there"}]},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == "free/long-128k"
    sent = upstream.requests[-1]
    assert sent["path"] == "/api/v1/chat/completions" and sent["body"]["model"] == "free/long-128k"
    assert answer.headers["x-gateway-cost"] == "0"
