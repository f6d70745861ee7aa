"""Budgets per project and per token: refusal before upstream, settlement, steering, admin API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import assert_error_shape, config_per_store, post_chat
from tests.fakes import FakeUpstream, ServerThread
from tests.replicas import wait_released

ADMIN = "budget-admin-token"
StartGateway = Callable[[dict[str, Any]], ServerThread]
# premium-max (L3) costs $15/$75 per million tokens.
EXPENSIVE = {"model": "premium-max", "max_tokens": 100, "messages": [{"role": "user", "content": "[[fake:text=ok]]"}]}


@pytest.fixture(params=["redis", "memory"])
def config(request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path: Path) -> dict[str, Any]:
    return config_per_store(request, upstream, tmp_path, ADMIN)


def admin(url: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.request(method, url + path, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10, **kwargs)
    assert response.status_code < 300, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_request_that_would_exceed_is_refused_before_the_upstream(
    start_gateway: StartGateway, config: dict[str, Any], upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    # Worst case: ~35 prompt tokens at $15/M + 100 output at $75/M = ~$0.0080.
    config["projects"] = {"team": {"daily_usd": 0.02}}
    gateway = start_gateway(config)
    first = post_chat(gateway.url, EXPENSIVE, **{"x-gateway-project": "team"})
    assert first.status_code == 200
    cost = float(first.headers["x-gateway-cost"])
    assert cost > 0
    answered = 1
    while True:
        before = len(upstream.requests)
        response = post_chat(gateway.url, EXPENSIVE, **{"x-gateway-project": "team"})
        if response.status_code != 200:
            break
        answered += 1
    assert response.status_code == 402
    assert len(upstream.requests) == before  # refused before any upstream call
    error = assert_error_shape(response.json(), code="budget_exceeded")
    assert error["type"] == "insufficient_quota"
    budget = error["budget"]
    assert budget["scope"] == "project" and budget["name"] == "team" and budget["period"] == "day"
    assert budget["limit_usd"] == 0.02 and budget["resets_at"].endswith("T00:00:00Z")
    assert budget["spent_usd"] == pytest.approx(cost * answered)
    assert "$0.020000" in error["message"] and "resets at" in error["message"]

    report = admin(gateway.url, "GET", "/admin/projects/team")
    assert report["spend"]["day"]["spent_usd"] == pytest.approx(cost * answered)
    assert report["spend"]["day"]["reserved_usd"] == 0 and report["pending_reservations"] == 0
    # A free model still answers: it cannot exceed a budget. Its reservation of $0 settles too.
    assert (
        post_chat(gateway.url, {**EXPENSIVE, "model": "free-small"}, **{"x-gateway-project": "team"}).status_code == 200
    )
    report = wait_released(gateway.url, "team", ADMIN)
    assert report["spend"]["day"]["reserved_usd"] == 0
    # Other projects are not affected.
    assert post_chat(gateway.url, EXPENSIVE, **{"x-gateway-project": "other"}).status_code == 200
    assert "settling" not in caplog.text and "could not settle" not in caplog.text


def test_a_failed_upstream_call_releases_its_reservation(start_gateway: StartGateway, config: dict[str, Any]) -> None:
    config["projects"] = {"team": {"total_usd": 1.0}}
    gateway = start_gateway(config)
    failing = {**EXPENSIVE, "messages": [{"role": "user", "content": "[[fake:status=503]]"}]}
    assert post_chat(gateway.url, failing, **{"x-gateway-project": "team"}).status_code == 503
    report = admin(gateway.url, "GET", "/admin/projects/team")
    assert report["spend"]["total"] == {"limit_usd": 1.0, "spent_usd": 0.0, "reserved_usd": 0.0, "resets_at": None}


def test_token_budgets_and_project_limits_from_the_admin_api(
    start_gateway: StartGateway, config: dict[str, Any]
) -> None:
    gateway = start_gateway(config)
    token = admin(gateway.url, "POST", "/admin/tokens", json={"project": "team", "limits": {"total_usd": 0.005}})
    auth = {"authorization": f"Bearer {token['secret']}"}
    refused = post_chat(gateway.url, EXPENSIVE, **auth)
    assert refused.status_code == 402
    budget = assert_error_shape(refused.json(), code="budget_exceeded")["budget"]
    assert budget["scope"] == "token" and budget["name"] == token["id"] and budget["resets_at"] is None
    assert post_chat(gateway.url, {**EXPENSIVE, "max_tokens": 10}, **auth).status_code == 200
    shown = admin(gateway.url, "GET", f"/admin/tokens/{token['id']}")
    assert 0 < shown["spend"]["total"]["spent_usd"] <= 0.005

    # The project's limit set at run time applies at once, and can be cleared.
    admin(gateway.url, "PUT", "/admin/projects/team", json={"monthly_usd": 0.000001, "max_tier": "L1"})
    over = post_chat(gateway.url, {**EXPENSIVE, "model": "cheap-mini", "max_tokens": 10}, **auth)
    assert over.status_code == 402 and over.json()["error"]["budget"]["period"] == "month"
    above = post_chat(gateway.url, {**EXPENSIVE, "max_tokens": 10}, **auth)  # premium-max is L3
    assert above.status_code == 403 and assert_error_shape(above.json(), code="tier_not_allowed")
    # Over budget, `L3` is steered down to the free tier, which a budget never refuses.
    steered = post_chat(gateway.url, {**EXPENSIVE, "model": "L3"}, **auth)
    assert steered.status_code == 200 and steered.headers["x-gateway-tier"] == "L0"
    projects = admin(gateway.url, "GET", "/admin/projects")["data"]
    assert [p["project"] for p in projects] == ["team"] and projects[0]["limits"]["max_tier"] == "L1"
    admin(gateway.url, "DELETE", "/admin/projects/team")
    assert post_chat(gateway.url, {**EXPENSIVE, "max_tokens": 5}, **auth).status_code == 200
    bad = httpx.put(
        gateway.url + "/admin/projects/team", json={"daily_usd": -1}, headers={"authorization": f"Bearer {ADMIN}"}
    )
    assert bad.status_code == 400 and "daily_usd" in assert_error_shape(bad.json())["message"]


def test_a_budget_near_its_limit_steers_to_cheaper_tiers(start_gateway: StartGateway, config: dict[str, Any]) -> None:
    config["projects"] = {"team": {"daily_usd": 0.02, "max_tier": "L2"}}
    config["budgets"] = {"steer_at": 0.5, "steer_max_tier": "L1"}
    gateway = start_gateway(config)
    headers = {"x-gateway-project": "team"}
    capped = post_chat(gateway.url, {**EXPENSIVE, "model": "L3"}, **headers)
    assert capped.headers["x-gateway-tier"] == "L2"  # the project's own max tier
    big = {
        **EXPENSIVE,
        "model": "mid-large",
        "messages": [{"role": "user", "content": "x " * 4000 + "[[fake:text=ok]]"}],
    }
    while float(admin(gateway.url, "GET", "/admin/projects/team")["spend"]["day"]["spent_usd"]) < 0.01:
        assert post_chat(gateway.url, big, **headers).status_code == 200
    steered = post_chat(gateway.url, {**EXPENSIVE, "model": "L3"}, **headers)
    assert steered.status_code == 200 and steered.headers["x-gateway-tier"] == "L1"
    assert "tier:capped" in steered.headers["x-gateway-route-reason"]
