"""Failover and escalation through HTTP against fake upstreams.

Each failure that moves a request one tier up, manual approval with one-time
tokens, the max tier, retries honouring Retry-After, the circuit breaker,
and streams that fail before and after their first byte.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.conftest import REDIS_URL, assert_error_shape, base_config
from tests.fakes import FakeUpstream, ServerThread

Start = Callable[[dict[str, Any]], ServerThread]
HELLO = [{"role": "user", "content": "hi there"}]  # classified chat/L0


def config(upstream: FakeUpstream, tmp_path: Path, **routing: Any) -> dict[str, Any]:
    raw = base_config(upstream.url, None, tmp_path)
    raw["routing"] = {**raw["routing"], "retry": {"attempts": 2, "backoff_seconds": 0.01}, **routing}
    return raw


def post(gateway: ServerThread, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=headers, timeout=20)


def models_called(upstream: FakeUpstream) -> list[str]:
    return [r["body"]["model"] for r in upstream.requests if r["path"].endswith("/chat/completions")]


@pytest.mark.parametrize(
    ("script", "extra", "reason"),
    [
        ([{"status": "503"}, {"status": "503"}], {}, "upstream_503"),
        ([{"empty": "1"}], {}, "empty"),
        ([{"truncate": "1"}], {}, "truncated"),
        ([{"text": "this is not json"}], {"response_format": {"type": "json_object"}}, "invalid_json"),
        ([{"refuse": "1"}], {}, "refusal"),
    ],
)
def test_each_failure_escalates_one_tier_with_a_handoff(
    start_gateway: Start,
    upstream: FakeUpstream,
    tmp_path: Path,
    script: list[dict[str, str]],
    extra: dict[str, Any],
    reason: str,
) -> None:
    gateway = start_gateway(config(upstream, tmp_path, auto_escalate=True))
    upstream.script.extend(script + [{"json": "1"} if extra else {}])
    response = post(gateway, {"model": "auto", "messages": HELLO, **extra})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "cheap-mini"
    assert response.headers["x-gateway-tier"] == "L1"
    assert response.headers["x-gateway-escalated-from"] == "L0"
    assert f"escalated:L0->L1:{reason}" in response.headers["x-gateway-route-reason"]
    assert models_called(upstream)[-1] == "cheap-mini"
    assert set(models_called(upstream)[:-1]) == {"free-small"}
    handoff = upstream.requests[-1]["body"]["messages"][0]
    assert handoff["role"] == "system" and "[gateway handoff]" in handoff["content"]
    assert f"It failed: {reason}" in handoff["content"] and "free-small" in handoff["content"]


def test_a_timeout_escalates(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    raw = config(upstream, tmp_path, auto_escalate=True)
    raw["providers"]["fakeai"]["timeout_seconds"] = 0.5
    gateway = start_gateway(raw)
    upstream.script.extend([{"delay": "1.5"}, {}])
    response = post(gateway, {"model": "auto", "messages": HELLO})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "cheap-mini"
    assert "escalated:L0->L1:timeout" in response.headers["x-gateway-route-reason"]
    assert models_called(upstream) == ["free-small", "cheap-mini"]  # a timeout is not retried on the same model


def test_manual_approval_refuses_then_accepts_a_single_use_token(
    start_gateway: Start,
    upstream: FakeUpstream,
    tmp_path: Path,
    redis_prefix: str,
) -> None:
    raw = config(upstream, tmp_path, auto_escalate=False)
    raw["redis_url"], raw["redis_prefix"] = REDIS_URL, redis_prefix
    gateway = start_gateway(raw)
    body = {"model": "auto", "messages": HELLO}

    upstream.script.append({"empty": "1"})
    refused = post(gateway, body)
    assert refused.status_code == 402
    error = assert_error_shape(refused.json(), code="escalation_required")
    assert error["type"] == "escalation_required"
    escalation = error["escalation"]
    assert escalation["fromTier"] == "L0" and escalation["proposedTier"] == "L1"
    assert escalation["reason"] == "empty" and escalation["proposedModel"] == "cheap-mini"
    assert float(escalation["estimatedCostUsd"]) > 0
    token = escalation["approvalToken"]
    assert models_called(upstream) == ["free-small"]  # nothing was spent on the paid tier
    # The token lives in Redis under the gateway's prefix, so every worker accepts it.
    assert redis.Redis.from_url(REDIS_URL).exists(f"{redis_prefix}escalation:{token}") == 1

    approved = post(gateway, body, **{"x-gateway-approve-escalation": token})
    assert approved.status_code == 200, approved.text
    assert approved.json()["model"] == "cheap-mini"
    assert approved.headers["x-gateway-escalated-from"] == "L0"
    assert models_called(upstream) == ["free-small", "cheap-mini"]  # started at the approved tier

    reused = post(gateway, body, **{"x-gateway-approve-escalation": token})
    assert reused.status_code == 403
    assert_error_shape(reused.json(), code="escalation_token_invalid")

    other = {"model": "auto", "messages": [{"role": "user", "content": "hello again"}]}
    upstream.script.append({"empty": "1"})
    second = post(gateway, body).json()["error"]["escalation"]["approvalToken"]
    mismatch = post(gateway, other, **{"x-gateway-approve-escalation": second})
    assert mismatch.status_code == 403
    assert_error_shape(mismatch.json(), code="escalation_token_mismatch")


def test_approval_tokens_expire(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    gateway = start_gateway(config(upstream, tmp_path, auto_escalate=False, escalation_token_ttl_seconds=0.5))
    body = {"model": "auto", "messages": HELLO}
    upstream.script.append({"refuse": "1"})
    token = post(gateway, body).json()["error"]["escalation"]["approvalToken"]
    time.sleep(0.8)
    expired = post(gateway, body, **{"x-gateway-approve-escalation": token})
    assert expired.status_code == 403
    assert_error_shape(expired.json(), code="escalation_token_invalid")


def test_the_max_tier_is_never_exceeded(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    gateway = start_gateway(config(upstream, tmp_path, auto_escalate=True, max_tier="L1"))
    failing = [{"role": "user", "content": "hi there [[fake:status=503]]"}]
    response = post(gateway, {"model": "auto", "messages": failing})
    assert response.status_code == 503
    assert_error_shape(response.json())
    assert set(models_called(upstream)) == {"free-small", "cheap-mini"}

    critical = [{"role": "user", "content": "Audit our payment service for security vulnerabilities before production"}]
    capped = post(gateway, {"model": "auto", "messages": critical})
    assert capped.status_code == 200
    assert capped.headers["x-gateway-tier"] == "L1"
    assert "tier:capped_L3->L1" in capped.headers["x-gateway-route-reason"]
    dry = httpx.post(gateway.url + "/v1/route", json={"dryRun": True, "messages": critical}).json()
    assert dry["maxTier"] == "L1" and dry["tier"] == "L1" and dry["escalation"] == []


def test_retries_honour_retry_after(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    gateway = start_gateway(config(upstream, tmp_path))
    upstream.script.extend([{"status": "429", "retry_after": "1"}, {}])
    started = time.monotonic()
    response = post(gateway, {"model": "L0", "messages": HELLO})
    assert response.status_code == 200, response.text
    assert time.monotonic() - started >= 1.0
    assert models_called(upstream) == ["free-small", "free-small"]
    assert response.headers["x-gateway-attempts"] == "2"

    # A Retry-After longer than routing.retry.max_retry_after_seconds is passed on at once.
    upstream.script.append({"status": "429", "retry_after": "60"})
    started = time.monotonic()
    limited = post(gateway, {"model": "L0", "messages": HELLO})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
    assert time.monotonic() - started < 5


def test_circuit_breaker_opens_and_recovers(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    raw = config(upstream, tmp_path, retry={"attempts": 1}, health={"failure_threshold": 2, "cooldown_seconds": 1.0})
    gateway = start_gateway(raw)
    body = {"model": "free-small", "messages": HELLO}
    upstream.script.extend([{"status": "500"}, {"status": "500"}])
    assert post(gateway, body).status_code == 500
    assert post(gateway, body).status_code == 500

    blocked = post(gateway, body)
    assert blocked.status_code == 503
    assert_error_shape(blocked.json(), code="circuit_open")
    assert len(models_called(upstream)) == 2  # the open circuit kept the call from the upstream
    health = httpx.get(gateway.url + "/health").json()
    assert health["circuits"]["models"]["free-small"]["state"] == "open"
    stats = httpx.get(gateway.url + "/v1/server-stats").json()
    assert stats["health"]["models"]["free-small"]["state"] == "open"

    # Auto routing goes around the open circuit: the router puts it last within L0 and L1 answers.
    deadline = time.monotonic() + 10
    while httpx.get(gateway.url + "/health").json()["circuits"]["models"]["free-small"]["state"] != "half_open":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    recovered = post(gateway, body)  # the half-open trial call succeeds
    assert recovered.status_code == 200
    assert httpx.get(gateway.url + "/health").json()["circuits"]["models"]["free-small"]["state"] == "closed"


def test_open_circuit_fails_over_to_another_model(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    raw = config(upstream, tmp_path, auto_escalate=True, retry={"attempts": 1}, health={"failure_threshold": 1})
    gateway = start_gateway(raw)
    upstream.script.append({"status": "502"})
    assert post(gateway, {"model": "auto", "messages": HELLO}).json()["model"] == "cheap-mini"
    calls = len(models_called(upstream))
    again = post(gateway, {"model": "auto", "messages": HELLO})
    assert again.json()["model"] == "cheap-mini"
    assert models_called(upstream)[calls:] == ["cheap-mini"]  # free-small's circuit is open: not tried


def test_a_stream_fails_over_before_its_first_byte(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(config(upstream, tmp_path, auto_escalate=True))
    upstream.script.extend([{"status": "503"}, {"status": "503"}, {"chunks": "3"}])
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=20) as client:
        stream = client.chat.completions.create(model="auto", messages=HELLO, stream=True)  # type: ignore[arg-type]
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.startswith("echo from cheap-mini")


def test_a_stream_that_already_sent_bytes_ends_with_an_error_event(
    start_gateway: Start,
    upstream: FakeUpstream,
    tmp_path: Path,
) -> None:
    gateway = start_gateway(config(upstream, tmp_path, auto_escalate=True))
    messages = [{"role": "user", "content": "hi there [[fake:chunks=4,stream_error_after=2]]"}]
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={"model": "auto", "messages": messages, "stream": True},
        timeout=20,
    ) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    errors = [i for i, e in enumerate(events) if '"error"' in e]
    assert errors and any('"content"' in e for e in events[: errors[0]])
    assert not any("echo from cheap-mini" in e for e in events)
    assert models_called(upstream) == ["free-small"]  # never restarted on another model
