"""Gateway tokens and the admin API: create, use, revoke; secure by default; secrets never leak."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import openai
import pytest

from tests.conftest import REDIS_URL, assert_error_shape, base_config
from tests.fakes import FakeUpstream, ServerThread
from tests.replicas import clean_env

ADMIN = "test-admin-token-123"
StartGateway = Callable[[dict[str, Any]], ServerThread]


def admin(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)


def create_token(url: str, **spec: Any) -> dict[str, Any]:
    with admin(url) as client:
        response = client.post("/admin/tokens", json=spec)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def chat(
    url: str, secret: str | None = None, *, header: str = "authorization", model: str = "L0", **extra: Any
) -> httpx.Response:
    headers = {}
    if secret is not None:
        headers = {"authorization": f"Bearer {secret}"} if header == "authorization" else {"x-api-key": secret}
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
        headers=headers,
        timeout=10,
    )


@pytest.fixture
def config(upstream: FakeUpstream, tmp_path: Path) -> dict[str, Any]:
    return base_config(upstream.url, None, tmp_path, server={"data_dir": str(tmp_path), "admin_token": ADMIN})


def test_loopback_runs_open_until_the_first_token_exists(start_gateway: StartGateway, config: dict[str, Any]) -> None:
    gateway = start_gateway(config)
    assert chat(gateway.url, "anything").status_code == 200
    token = create_token(gateway.url, project="alpha", name="ci")
    assert token["secret"].startswith("aigw_") and token["project"] == "alpha"

    refused = chat(gateway.url)
    assert refused.status_code == 401
    assert_error_shape(refused.json(), code="missing_api_key")
    assert chat(gateway.url, "not-a-token").status_code == 401
    assert chat(gateway.url, "aigw_wrong").status_code == 401
    assert httpx.get(gateway.url + "/v1/models").status_code == 401

    answer = chat(gateway.url, token["secret"])
    assert answer.status_code == 200 and answer.json()["model"] == "free-small"
    assert chat(gateway.url, token["secret"], header="x-api-key").status_code == 200
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key=token["secret"], max_retries=0) as sdk:
        assert (
            sdk.chat.completions.create(model="L0", messages=[{"role": "user", "content": "hi"}]).model == "free-small"
        )
    assert httpx.get(gateway.url + "/health").status_code == 200


def test_non_loopback_gateway_refuses_requests_without_a_token(
    start_gateway: StartGateway, config: dict[str, Any]
) -> None:
    config["server"]["host"] = "0.0.0.0"
    gateway = start_gateway(config)
    refused = chat(gateway.url)
    assert refused.status_code == 401
    assert "gateway token" in assert_error_shape(refused.json())["message"]
    token = create_token(gateway.url)
    assert chat(gateway.url, token["secret"]).status_code == 200


def test_revoked_and_expired_tokens_are_refused(start_gateway: StartGateway, config: dict[str, Any]) -> None:
    gateway = start_gateway(config)
    token = create_token(gateway.url, project="beta")
    expired = create_token(gateway.url, expires_at=time.time() - 1)
    assert chat(gateway.url, token["secret"]).status_code == 200
    with admin(gateway.url) as client:
        revoked = client.delete(f"/admin/tokens/{token['id']}").json()
        assert revoked["status"] == "revoked"
        assert client.get(f"/admin/tokens/{expired['id']}").json()["status"] == "expired"
        missing = client.get("/admin/tokens/tok_nope")
        assert missing.status_code == 404 and assert_error_shape(missing.json(), code="token_not_found")
    for secret in (token["secret"], expired["secret"]):
        refused = chat(gateway.url, secret)
        assert refused.status_code == 401
        assert_error_shape(refused.json(), code="invalid_api_key")


def test_admin_api_needs_the_admin_token_and_validates_input(
    start_gateway: StartGateway, config: dict[str, Any]
) -> None:
    gateway = start_gateway(config)
    for headers in ({}, {"authorization": "Bearer wrong"}):
        refused = httpx.get(gateway.url + "/admin/tokens", headers=headers)
        assert refused.status_code == 401
        assert_error_shape(refused.json(), code="admin_token_required")
    with admin(gateway.url) as client:
        bad = client.post("/admin/tokens", json={"limits": {"max_tier": "L9"}})
        assert bad.status_code == 400 and "limits.max_tier" in assert_error_shape(bad.json())["message"]
        bad_project = client.post("/admin/tokens", json={"project": "has spaces"})
        assert bad_project.status_code == 400


def test_token_limits_cap_the_tier_and_the_models(start_gateway: StartGateway, config: dict[str, Any]) -> None:
    gateway = start_gateway(config)
    capped = create_token(gateway.url, limits={"max_tier": "L1"})
    answer = chat(gateway.url, capped["secret"], model="L3")
    assert answer.status_code == 200 and answer.headers["x-gateway-tier"] == "L1"
    only_mini = create_token(gateway.url, allowed_models=["cheap-mini"])
    assert chat(gateway.url, only_mini["secret"], model="cheap-mini").status_code == 200
    refused = chat(gateway.url, only_mini["secret"], model="premium-max")
    assert refused.status_code == 403
    assert_error_shape(refused.json(), code="model_not_allowed")


def test_tokens_are_shared_through_redis(
    start_gateway: StartGateway, config: dict[str, Any], redis_prefix: str
) -> None:
    config.update(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    first, second = start_gateway(config), start_gateway(config)
    token = create_token(first.url, project="shared")
    assert chat(second.url, token["secret"]).status_code == 200
    assert chat(second.url).status_code == 401
    with admin(second.url) as client:
        assert [t["id"] for t in client.get("/admin/tokens").json()["data"]] == [token["id"]]
        client.post(f"/admin/tokens/{token['id']}/revoke")
    assert chat(first.url, token["secret"]).status_code == 401


def test_secrets_never_appear_in_logs_usage_responses_or_errors(
    start_gateway: StartGateway, config: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    gateway = start_gateway(config)
    token = create_token(gateway.url, project="secretive")
    secret = token["secret"]
    seen: list[str] = []
    seen.append(chat(gateway.url, secret).text)
    seen.append(chat(gateway.url, secret, stream=True).text)
    seen.append(chat(gateway.url, secret, model="no-such-model").text)
    seen.append(chat(gateway.url, secret[:-2] + "xx").text)  # a near miss must not be echoed either
    seen.append(chat(gateway.url, secret, header="x-api-key", messages="bad").text)
    with admin(gateway.url) as client:
        seen.append(client.get("/admin/tokens").text)
        seen.append(client.get(f"/admin/tokens/{token['id']}").text)
        seen.append(client.delete(f"/admin/tokens/{token['id']}").text)
    seen.append(chat(gateway.url, secret).text)
    gateway.stop()  # flushes the usage log
    body = secret.removeprefix("aigw_")
    for text in seen:
        assert body not in text and body[:16] not in text
    assert body[:16] not in caplog.text
    rows = duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True).execute("SELECT * FROM usage").fetchall()
    assert len(rows) >= 3 and any(token["id"] in map(str, row) for row in rows)
    assert not any(body[:16] in str(value) for row in rows for value in row)
    stored = (tmp_path / "tokens.json").read_text()
    assert body[:16] not in stored and token["id"] in stored


def test_cli_manages_tokens_through_the_admin_api(
    start_gateway: StartGateway, config: dict[str, Any], tmp_path: Path
) -> None:
    gateway = start_gateway(config)

    def aigw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "proxy", "tokens", "--url", gateway.url, "--admin-token", ADMIN, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
            env=clean_env(),
        )

    created = aigw(
        "create", "--project", "cli", "--name", "laptop", "--max-tier", "L1", "--daily-usd", "2.5", "--rpm", "30"
    )
    assert created.returncode == 0, created.stderr
    secret = next(line.split()[1] for line in created.stdout.splitlines() if line.startswith("secret: "))
    token_id = created.stdout.split()[0]
    assert chat(gateway.url, secret).status_code == 200

    listed = aigw("list")
    assert listed.returncode == 0 and token_id in listed.stdout and "daily_usd=2.5" in listed.stdout
    assert secret not in listed.stdout
    shown = aigw("--json", "show", token_id)
    assert shown.returncode == 0 and '"project": "cli"' in shown.stdout and secret not in shown.stdout
    assert aigw("revoke", token_id).returncode == 0
    assert "revoked" in aigw("show", token_id).stdout
    assert chat(gateway.url, secret).status_code == 401

    wrong = subprocess.run(
        [sys.executable, "-m", "proxy", "tokens", "--url", gateway.url, "--admin-token", "nope", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=clean_env(),
    )
    assert wrong.returncode == 1 and "admin token" in wrong.stderr and "Traceback" not in wrong.stderr
