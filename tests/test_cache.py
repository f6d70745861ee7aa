"""The response cache through HTTP with the openai SDK, on real Redis and the in-process LRU."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import REDIS_URL, base_config
from tests.fakes import FakeUpstream, ServerThread

Start = Callable[[dict[str, Any]], ServerThread]
HELLO = [{"role": "user", "content": "cache me"}]


def sdk(server: ServerThread, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=10, default_headers=headers
    )


@pytest.fixture(params=["redis", "memory"])
def cached_gateway(
    request: pytest.FixtureRequest, start_gateway: Start, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> ServerThread:
    extra: dict[str, Any] = {"redis_url": REDIS_URL, "redis_prefix": redis_prefix} if request.param == "redis" else {}
    return start_gateway(base_config(upstream.url, None, tmp_path, **extra))


def test_second_identical_request_is_a_free_hit(cached_gateway: ServerThread, upstream: FakeUpstream) -> None:
    client = sdk(cached_gateway)
    first = client.chat.completions.with_raw_response.create(model="cheap-mini", messages=HELLO, temperature=0)
    second = client.chat.completions.with_raw_response.create(model="cheap-mini", messages=HELLO, temperature=0)
    assert first.headers["x-gateway-cache"] == "miss" and float(first.headers["x-gateway-cost"]) > 0
    assert second.headers["x-gateway-cache"] == "hit" and second.headers["x-gateway-cost"] == "0"
    assert len(upstream.requests) == 1
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().usage == first.parse().usage
    health = httpx.get(cached_gateway.url + "/health").json()
    assert health["cache"]["available"] is True


def test_streamed_answer_is_replayed_as_sse(cached_gateway: ServerThread, upstream: FakeUpstream) -> None:
    client = sdk(cached_gateway)

    def stream(**options: Any) -> tuple[str, str, list[Any]]:
        raw = client.chat.completions.with_raw_response.create(
            model="cheap-mini",
            messages=[{"role": "user", "content": "stream me [[fake:chunks=4]]"}],
            temperature=0,
            stream=True,
            **options,
        )
        chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return raw.headers["x-gateway-cache"], text, chunks

    state, text, _ = stream()
    assert state == "miss" and text.startswith("echo from cheap-mini: stream me")
    state_again, text_again, chunks = stream()
    assert state_again == "hit" and text_again == text
    assert all(c.usage is None for c in chunks)  # usage only when asked, as for a live stream
    _, _, with_usage = stream(stream_options={"include_usage": True})
    assert with_usage[-1].usage is not None and with_usage[-1].usage.completion_tokens > 0
    assert len(upstream.requests) == 1
    # The replay is a proper SSE stream that ends with [DONE].
    raw = httpx.post(
        cached_gateway.url + "/v1/chat/completions",
        json={
            "model": "cheap-mini",
            "messages": [{"role": "user", "content": "stream me [[fake:chunks=4]]"}],
            "temperature": 0,
            "stream": True,
        },
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.endswith("data: [DONE]\n\n") and raw.headers["x-gateway-cache"] == "hit"


def test_client_bypass_refresh_and_force(cached_gateway: ServerThread, upstream: FakeUpstream) -> None:
    client = sdk(cached_gateway)
    ask = client.chat.completions.with_raw_response.create
    ask(model="cheap-mini", messages=HELLO, temperature=0)
    bypass = ask(model="cheap-mini", messages=HELLO, temperature=0, extra_headers={"x-gateway-cache": "bypass"})
    assert bypass.headers["x-gateway-cache"] == "miss" and bypass.headers["x-gateway-cache-skip"] == "client_bypass"
    no_cache = ask(model="cheap-mini", messages=HELLO, temperature=0, extra_headers={"cache-control": "no-cache"})
    assert no_cache.headers["x-gateway-cache"] == "miss"
    assert len(upstream.requests) == 3
    # Not deterministic: not cached unless forced.
    hot = [{"role": "user", "content": "be creative"}]
    for _ in range(2):
        answer = ask(model="cheap-mini", messages=hot, temperature=0.9)
        assert answer.headers["x-gateway-cache-skip"] == "not_deterministic"
    assert ask(model="cheap-mini", messages=hot, n=2, seed=1).headers["x-gateway-cache-skip"] == "n_gt_1"
    assert len(upstream.requests) == 6
    forced = [
        ask(model="cheap-mini", messages=hot, temperature=0.9, extra_headers={"x-gateway-cache": "force"})
        for _ in range(2)
    ]
    assert [f.headers["x-gateway-cache"] for f in forced] == ["miss", "hit"]
    assert len(upstream.requests) == 7
    bad = httpx.post(
        cached_gateway.url + "/v1/chat/completions",
        headers={"x-gateway-cache": "maybe"},
        json={"model": "cheap-mini", "messages": HELLO},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "x-gateway-cache"


def test_every_output_changing_parameter_is_in_the_key(cached_gateway: ServerThread, upstream: FakeUpstream) -> None:
    client = sdk(cached_gateway)
    ask = client.chat.completions.with_raw_response.create
    variants: list[dict[str, Any]] = [
        {},
        {"max_tokens": 5},
        {"stop": ["x"]},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"model": "premium-max"},
        {"messages": [{"role": "user", "content": "other"}]},
    ]
    for variant in variants:
        ask(**{"model": "cheap-mini", "messages": HELLO, "temperature": 0, **variant})
    assert len(upstream.requests) == len(variants)
    # `user` and `metadata` do not change the answer: still a hit.
    again = ask(model="cheap-mini", messages=HELLO, temperature=0, user="bob", metadata={"k": "v"})
    assert again.headers["x-gateway-cache"] == "hit"


def test_projects_do_not_share_entries(cached_gateway: ServerThread, upstream: FakeUpstream) -> None:
    alpha, beta = (
        sdk(cached_gateway, **{"x-gateway-project": "alpha"}),
        sdk(cached_gateway, **{"x-gateway-project": "beta"}),
    )
    states = [
        c.chat.completions.with_raw_response.create(model="cheap-mini", messages=HELLO, temperature=0).headers[
            "x-gateway-cache"
        ]
        for c in (alpha, beta, alpha, beta)
    ]
    assert states == ["miss", "miss", "hit", "hit"]
    assert len(upstream.requests) == 2


def test_entries_expire_after_the_ttl(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    server = start_gateway(
        base_config(
            upstream.url, None, tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix, cache={"ttl_seconds": 1}
        )
    )
    ask = sdk(server).chat.completions.with_raw_response.create
    assert ask(model="cheap-mini", messages=HELLO, seed=3).headers["x-gateway-cache"] == "miss"
    assert ask(model="cheap-mini", messages=HELLO, seed=3).headers["x-gateway-cache"] == "hit"
    time.sleep(1.5)
    assert ask(model="cheap-mini", messages=HELLO, seed=3).headers["x-gateway-cache"] == "miss"
    assert len(upstream.requests) == 2


def test_rules_turn_caching_on_or_off(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    rules = [{"project": "secret", "mode": "never"}, {"model": "cheap-mini", "mode": "always"}]
    server = start_gateway(base_config(upstream.url, None, tmp_path, cache={"rules": rules}))
    hot = sdk(server).chat.completions.with_raw_response.create
    assert [hot(model="cheap-mini", messages=HELLO, temperature=1).headers["x-gateway-cache"] for _ in range(2)] == [
        "miss",
        "hit",
    ]
    secret = sdk(server, **{"x-gateway-project": "secret", "x-gateway-cache": "force"}).chat.completions
    for _ in range(2):
        answer = secret.with_raw_response.create(model="cheap-mini", messages=HELLO, temperature=0)
        assert answer.headers["x-gateway-cache-skip"] == "rule"
    assert len(upstream.requests) == 3


def test_errors_and_broken_streams_are_not_cached(cached_gateway: ServerThread, upstream: FakeUpstream) -> None:
    client = sdk(cached_gateway)
    failing = [{"role": "user", "content": "[[fake:status=500]]"}]
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="cheap-mini", messages=failing, temperature=0)
    broken = [{"role": "user", "content": "[[fake:stream_error_after=2]]"}]
    for _ in range(2):
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="cheap-mini", messages=broken, temperature=0, stream=True))
    assert len(upstream.requests) == 4


def test_redis_outage_mid_run_never_fails_requests(
    own_redis: tuple[str, subprocess.Popen[bytes]], start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    url, redis_process = own_redis
    server = start_gateway(base_config(upstream.url, None, tmp_path, redis_url=url))
    ask = sdk(server).chat.completions.with_raw_response.create
    assert ask(model="cheap-mini", messages=HELLO, temperature=0).headers["x-gateway-cache"] == "miss"
    assert ask(model="cheap-mini", messages=HELLO, temperature=0).headers["x-gateway-cache"] == "hit"
    redis_process.kill()
    redis_process.wait()
    for _ in range(3):
        answer = ask(model="cheap-mini", messages=HELLO, temperature=0)
        assert answer.parse().choices[0].message.content.startswith("echo from cheap-mini")
        assert answer.headers["x-gateway-cache"] == "miss"
    streamed = sdk(server).chat.completions.create(model="cheap-mini", messages=HELLO, temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices).startswith("echo from")
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "degraded" and health["redis"] is False
    assert health["cache"] == {"backend": "redis", "enabled": True, "available": False}
    assert len(upstream.requests) == 5
