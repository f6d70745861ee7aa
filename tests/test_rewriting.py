"""Each form of `model` a client may send, checked through HTTP with the headers."""

from __future__ import annotations

import openai
import pytest

from tests.fakes import FakeUpstream


def _create(client: openai.OpenAI, model: str, text: str = "hello", **kwargs):  # type: ignore[no-untyped-def]
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def test_auto_classifies_and_picks_cheapest_fitting_tier(client: openai.OpenAI) -> None:
    simple = _create(client, "auto", "hi, how are you?")
    assert simple.headers["x-gateway-tier"] == "L0"
    assert simple.headers["x-gateway-task"] == "chat"
    assert "task:small_talk" in simple.headers["x-gateway-route-reason"]
    assert simple.parse().model == "free-small"

    hard = _create(
        client, "auto", "Design the architecture for a concurrent job scheduler and debug its race condition"
    )
    assert hard.headers["x-gateway-tier"] == "L2"
    assert hard.parse().model == "claude-mid"

    critical = _create(client, "auto", "Audit this payments service for security vulnerabilities before production")
    assert critical.headers["x-gateway-tier"] == "L3"
    assert critical.headers["x-gateway-task"] == "analyze"


def test_tier_names_pin_the_tier(client: openai.OpenAI) -> None:
    for tier, model in (("L0", "free-small"), ("L1", "cheap-mini"), ("L2", "claude-mid"), ("L3", "premium-max")):
        raw = _create(client, tier)
        assert raw.headers["x-gateway-tier"] == tier
        assert raw.headers["x-gateway-model"] == model
        assert raw.parse().model == model
        assert f"tier:requested_{tier}" in raw.headers["x-gateway-route-reason"]


def test_task_alias_sets_the_task(client: openai.OpenAI) -> None:
    raw = _create(client, "code", "hello")
    assert raw.headers["x-gateway-task"] == "code"
    assert "task:requested_code" in raw.headers["x-gateway-route-reason"]


def test_configured_alias_maps_an_ide_model_name(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    raw = _create(client, "gpt-4o")
    assert raw.headers["x-gateway-model"] == "cheap-mini"
    assert "alias:gpt-4o->cheap-mini" in raw.headers["x-gateway-route-reason"]
    assert upstream.requests[-1]["body"]["model"] == "cheap-mini"

    to_tier = _create(client, "gpt-4")
    assert to_tier.headers["x-gateway-tier"] == "L2"


def test_concrete_model_is_used_as_named(client: openai.OpenAI) -> None:
    raw = _create(client, "premium-max")
    assert raw.headers["x-gateway-model"] == "premium-max"
    assert raw.headers["x-gateway-tier"] == "L3"
    assert raw.headers["x-gateway-route-reason"] == "model:explicit"
    assert float(raw.headers["x-gateway-cost"]) > 0


def test_quality_header_moves_the_tier(client: openai.OpenAI) -> None:
    low = _create(client, "auto", "write a python function to parse dates", extra_headers={"x-gateway-quality": "low"})
    high = _create(
        client, "auto", "write a python function to parse dates", extra_headers={"x-gateway-quality": "high"}
    )
    assert low.headers["x-gateway-tier"] < high.headers["x-gateway-tier"]


def test_max_tier_caps_auto_routing(start_gateway, upstream, anthropic_upstream, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import base_config

    server = start_gateway(base_config(upstream.url, anthropic_upstream.url, tmp_path, routing={"max_tier": "L1"}))
    with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as sdk:
        raw = _create(sdk, "auto", "Audit this payments service for security vulnerabilities before production")
        assert raw.headers["x-gateway-tier"] == "L1"
        assert "tier:capped_L3->L1" in raw.headers["x-gateway-route-reason"]
        assert _create(sdk, "L3").headers["x-gateway-tier"] == "L1"


@pytest.mark.parametrize("model", ["auto", "L0", "chat"])
def test_models_endpoint_lists_virtual_and_concrete(client: openai.OpenAI, model: str) -> None:
    ids = [m.id for m in client.models.list()]
    assert model in ids
    for expected in (
        "auto",
        "L0",
        "L1",
        "L2",
        "L3",
        "code",
        "analyze",
        "create_project",
        "gpt-4o",
        "free-small",
        "cheap-mini",
        "claude-mid",
        "premium-max",
    ):
        assert expected in ids
    assert "demo" not in ids
