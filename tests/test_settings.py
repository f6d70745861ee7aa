"""Runtime configuration through the admin API: applied at once, shared, persisted."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import REDIS_URL, assert_error_shape, base_config
from tests.fakes import FakeUpstream, ServerThread

ADMIN = {"authorization": "Bearer test-admin"}


def _config(upstream: FakeUpstream, anthropic: FakeUpstream, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return base_config(
        upstream.url, anthropic.url, tmp_path, server={"data_dir": str(tmp_path), "admin_token": "test-admin"}, **extra
    )


def _route(url: str, model: str, text: str = "hi") -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": text}]}
    )


def test_admin_token_required(gateway: ServerThread) -> None:
    for response in (
        httpx.get(gateway.url + "/admin/config"),
        httpx.patch(gateway.url + "/admin/config", json={}, headers={"authorization": "Bearer wrong"}),
    ):
        assert response.status_code == 401
        assert_error_shape(response.json(), code="admin_token_required")


def test_changes_apply_at_once_and_persist(
    start_gateway: Callable[[dict[str, Any]], ServerThread],
    upstream: FakeUpstream,
    anthropic_upstream: FakeUpstream,
    tmp_path: Path,
) -> None:
    raw = _config(upstream, anthropic_upstream, tmp_path)
    server = start_gateway(raw)
    assert _route(server.url, "L2").headers["x-gateway-model"] == "claude-mid"

    # Disable a provider: routing avoids it and the model list drops its models.
    change = httpx.patch(
        server.url + "/admin/config", headers=ADMIN, json={"providers": {"fakeanthropic": {"enabled": False}}}
    )
    assert change.status_code == 200, change.text
    assert _route(server.url, "L2").headers["x-gateway-model"] != "claude-mid"
    assert "claude-mid" not in [m["id"] for m in httpx.get(server.url + "/v1/models").json()["data"]]

    # Add a model, switch a tier off, change a setting.
    change = httpx.patch(
        server.url + "/admin/config",
        headers=ADMIN,
        json={
            "models": {"added-mini": {"provider": "fakeai", "tier": "L1", "price": {"input": 0.01, "output": 0.02}}},
            "routing": {"disabled_tiers": ["L3"], "default_tier": "L1"},
        },
    )
    assert change.status_code == 200, change.text
    models = [m["id"] for m in httpx.get(server.url + "/v1/models").json()["data"]]
    assert "added-mini" in models and "premium-max" not in models
    assert _route(server.url, "added-mini").json()["model"] == "added-mini"
    assert _route(server.url, "L3").headers["x-gateway-tier"] != "L3"
    assert _route(server.url, "auto", "hello").headers["x-gateway-tier"] == "L1"

    # An invalid change is refused with the key path and changes nothing.
    bad = httpx.patch(
        server.url + "/admin/config", headers=ADMIN, json={"models": {"x": {"provider": "fakeai", "tier": "L9"}}}
    )
    assert bad.status_code == 400
    assert "tier" in assert_error_shape(bad.json(), code="invalid_config")["message"]
    assert _route(server.url, "added-mini").status_code == 200

    # API keys are accepted but never shown back.
    httpx.patch(
        server.url + "/admin/config", headers=ADMIN, json={"providers": {"fakeai": {"api_key": "sk-new-secret"}}}
    )
    view = httpx.get(server.url + "/admin/config", headers=ADMIN)
    assert "sk-new-secret" not in view.text and "sk-fake-upstream" not in view.text
    assert view.json()["effective"]["providers"]["fakeai"]["api_key"] == "set"
    _route(server.url, "L0")
    assert upstream.requests[-1]["headers"]["authorization"] == "Bearer sk-new-secret"
    server.stop()

    # A restart with the same data_dir comes back with the overrides.
    again = start_gateway(raw)
    assert "added-mini" in [m["id"] for m in httpx.get(again.url + "/v1/models").json()["data"]]
    assert _route(again.url, "auto", "hello").headers["x-gateway-tier"] == "L1"

    reset = httpx.delete(again.url + "/admin/config/overrides", headers=ADMIN)
    assert reset.status_code == 200 and reset.json()["overrides"] == {}
    assert _route(again.url, "L2").headers["x-gateway-model"] == "claude-mid"


def test_a_change_reaches_every_replica_through_redis(
    start_gateway: Callable[[dict[str, Any]], ServerThread],
    upstream: FakeUpstream,
    anthropic_upstream: FakeUpstream,
    tmp_path: Path,
    redis_prefix: str,
) -> None:
    first = start_gateway(
        _config(upstream, anthropic_upstream, tmp_path / "a", redis_url=REDIS_URL, redis_prefix=redis_prefix)
    )
    second = start_gateway(
        _config(upstream, anthropic_upstream, tmp_path / "b", redis_url=REDIS_URL, redis_prefix=redis_prefix)
    )
    time.sleep(0.5)  # let both subscribe
    response = httpx.patch(first.url + "/admin/config", headers=ADMIN, json={"routing": {"default_tier": "L1"}})
    assert response.status_code == 200
    deadline = time.time() + 10
    while _route(second.url, "auto", "hello").headers["x-gateway-tier"] != "L1":
        assert time.time() < deadline, "the second replica never saw the change"
        time.sleep(0.2)
    assert "redis key" in httpx.get(second.url + "/admin/config", headers=ADMIN).json()["storedIn"]
