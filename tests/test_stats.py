"""GET /v1/server-stats (the seed's shape) and GET /metrics (Prometheus text), per worker and summed over Redis."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import REDIS_URL, base_config
from tests.fakes import FakeUpstream, ServerThread

Start = Callable[[dict[str, Any]], ServerThread]
SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)+\})? -?[0-9.e+-]+$')


def chat(server: ServerThread, content: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        server.url + "/v1/chat/completions",
        timeout=20,
        json={"model": "cheap-mini", "messages": [{"role": "user", "content": content}], **extra},
    )


def test_server_stats_and_metrics_count_what_happened(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_gateway(base_config(upstream.url, None, tmp_path))
    first = chat(server, "hello", temperature=0)
    hit = chat(server, "hello", temperature=0)
    failed = chat(server, "[[fake:status=503]]")
    assert (first.status_code, hit.headers["x-gateway-cache"], failed.status_code) == (200, "hit", 503)
    usage = first.json()["usage"]

    stats = httpx.get(server.url + "/v1/server-stats").json()
    assert {"uptime", "requests", "llm", "memory", "providers", "timestamp"} <= set(stats)
    assert stats["requests"]["total"] == 3 and stats["requests"]["averageDuration"] > 0
    assert stats["llm"]["totalCalls"] == 1
    assert stats["llm"]["tokens"] == {
        "input": usage["prompt_tokens"] * 2,
        "output": usage["completion_tokens"] * 2,
        "total": usage["total_tokens"] * 2,
    }  # the hit's tokens count, not its cost
    assert Decimal(str(stats["llm"]["cost"]["total"])) == Decimal(first.headers["x-gateway-cost"])
    assert stats["llm"]["cost"]["currency"] == "USD"
    assert stats["memory"]["unit"] == "MB" and stats["memory"]["heapUsed"] > 10
    assert stats["providers"]["fakeai"] is True
    assert stats["uptime"]["formatted"].endswith("s") and stats["timestamp"].endswith("Z")

    response = httpx.get(server.url + "/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = response.text.splitlines()
    for line in lines:
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or SAMPLE.match(line), line
    text = response.text
    assert 'aigw_requests_total{cache="hit",model="cheap-mini",status="200"} 1' in lines
    assert 'aigw_requests_total{cache="miss",model="cheap-mini",status="200"} 1' in lines
    assert 'aigw_requests_total{cache="miss",model="cheap-mini",status="503"} 1' in lines
    assert 'aigw_request_duration_seconds_count{model="cheap-mini"} 3' in lines
    assert 'aigw_request_duration_seconds_bucket{le="+Inf",model="cheap-mini"} 3' in lines
    assert "aigw_cache_hits_total 1" in lines
    assert 'aigw_upstream_errors_total{provider="fakeai",type="fake_503"} 1' in lines
    assert f'aigw_tokens_total{{kind="input",model="cheap-mini"}} {usage["prompt_tokens"] * 2}' in lines
    assert "# TYPE aigw_request_duration_seconds histogram" in text


def test_workers_sharing_redis_report_their_sum(
    redis_prefix: str, start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    first = start_gateway(
        base_config(upstream.url, None, tmp_path / "a", redis_url=REDIS_URL, redis_prefix=redis_prefix)
    )
    second = start_gateway(
        base_config(upstream.url, None, tmp_path / "b", redis_url=REDIS_URL, redis_prefix=redis_prefix)
    )
    for index in range(3):
        assert chat(first, f"one {index}").status_code == 200
    assert chat(second, "two").status_code == 200
    deadline = time.time() + 15
    while True:
        totals = [httpx.get(s.url + "/v1/server-stats").json()["requests"]["total"] for s in (first, second)]
        if totals == [4, 4] or time.time() > deadline:
            break
        time.sleep(0.3)
    assert totals == [4, 4]
    assert 'aigw_request_duration_seconds_count{model="cheap-mini"} 4' in httpx.get(second.url + "/metrics").text
