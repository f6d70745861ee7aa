"""Rate limits: RPM and TPM per project and per token, with OpenAI's headers, across processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import assert_error_shape, base_config, config_per_store, post_chat
from tests.fakes import FakeUpstream, ServerThread
from tests.replicas import gateway_processes

ADMIN = "ratelimit-admin-token"
StartGateway = Callable[[dict[str, Any]], ServerThread]
HELLO = {"model": "L0", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(params=["redis", "memory"])
def config(request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path: Path) -> dict[str, Any]:
    return config_per_store(request, upstream, tmp_path, ADMIN)


def test_project_rpm_refuses_with_retry_after_and_openai_headers(
    start_gateway: StartGateway, config: dict[str, Any]
) -> None:
    config["projects"] = {"team": {"rpm": 3}}
    gateway = start_gateway(config)
    headers = {"x-gateway-project": "team"}
    remaining = []
    for _ in range(3):
        answer = post_chat(gateway.url, HELLO, **headers)
        assert answer.status_code == 200
        assert answer.headers["x-ratelimit-limit-requests"] == "3"
        assert answer.headers["x-ratelimit-reset-requests"].endswith("s")
        remaining.append(int(answer.headers["x-ratelimit-remaining-requests"]))
    assert remaining == [2, 1, 0]
    refused = post_chat(gateway.url, HELLO, **headers)
    assert refused.status_code == 429
    error = assert_error_shape(refused.json(), code="rate_limit_exceeded")
    assert "project team" in error["message"] and "3 requests per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    # Another project is not limited, nor is an unlisted one.
    assert "x-ratelimit-limit-requests" not in post_chat(gateway.url, HELLO, **{"x-gateway-project": "other"}).headers
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, default_headers=headers) as sdk:
        with pytest.raises(openai.RateLimitError):
            sdk.chat.completions.create(**HELLO)


def test_token_tpm_counts_prompt_and_max_tokens(start_gateway: StartGateway, config: dict[str, Any]) -> None:
    gateway = start_gateway(config)
    created = httpx.post(
        gateway.url + "/admin/tokens",
        headers={"authorization": f"Bearer {ADMIN}"},
        json={"limits": {"tpm": 1000, "rpm": 100}},
    ).json()
    auth = {"authorization": f"Bearer {created['secret']}"}
    answer = post_chat(gateway.url, {**HELLO, "max_tokens": 400}, **auth)
    assert answer.status_code == 200
    assert (
        answer.headers["x-ratelimit-limit-tokens"] == "1000" and answer.headers["x-ratelimit-limit-requests"] == "100"
    )
    assert 500 <= int(answer.headers["x-ratelimit-remaining-tokens"]) < 600
    assert post_chat(gateway.url, {**HELLO, "max_tokens": 400}, **auth).status_code == 200
    refused = post_chat(gateway.url, {**HELLO, "max_tokens": 400}, **auth)
    assert refused.status_code == 429 and "tokens per minute" in assert_error_shape(refused.json())["message"]
    assert int(refused.headers["retry-after"]) >= 1
    too_big = post_chat(gateway.url, {**HELLO, "max_tokens": 5000}, **auth)
    assert too_big.status_code == 429
    assert_error_shape(too_big.json(), code="request_too_large")
    assert "retry-after" not in too_big.headers


def test_rate_limits_hold_across_two_gateway_processes(
    upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    config = base_config(upstream.url, None, tmp_path / "data")
    config["projects"] = {"shared": {"rpm": 20}}  # one more request every 3 s after a burst of 20
    with gateway_processes(tmp_path, config, redis_prefix, count=2) as replicas:
        urls = [replica.url for replica in replicas]

        async def fire() -> list[int]:
            async with httpx.AsyncClient(timeout=30, headers={"x-gateway-project": "shared"}) as client:
                responses = await asyncio.gather(
                    *(client.post(urls[i % 2] + "/v1/chat/completions", json=HELLO) for i in range(60))
                )
            return [r.status_code for r in responses]

        started = time.time()
        statuses = asyncio.run(fire())
        elapsed = time.time() - started
    admitted = statuses.count(200)
    print(f"ratelimit: {admitted} of 60 admitted in {elapsed:.2f}s by 2 processes at 20 rpm")
    assert set(statuses) == {200, 429}
    assert 20 <= admitted <= 20 + int(elapsed / 3)
