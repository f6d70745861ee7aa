"""The race test: many concurrent requests over 4 worker processes never overspend a budget."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import assert_error_shape
from tests.fakes import FakeUpstream
from tests.replicas import gateway_processes, wait_released

pytestmark = pytest.mark.slow


def race_config(upstream: FakeUpstream, tmp_path: Path, **limits: Any) -> dict[str, Any]:
    return {
        "server": {"data_dir": str(tmp_path / "data")},
        "providers": {
            "fakeai": {"kind": "openai", "base_url": upstream.url + "/v1", "api_key": "sk-fake", "timeout_seconds": 10}
        },
        # $1000 per million tokens: a token costs a tenth of a cent.
        "models": [{"id": "paid", "provider": "fakeai", "tier": "L1", "price": {"input": 1000, "output": 1000}}],
        "budgets": {"steer_at": None},
        # The deliberate 500s (all at once, over every worker) must not open the model's circuit.
        "routing": {"health": {"failure_threshold": 1000, "error_rate": 1.0, "min_calls": 1000}},
        "projects": {"race": limits},
    }


async def _fire(url: str, count: int) -> list[tuple[str, httpx.Response | None]]:
    """`count` requests at once: most plain, some failing upstream, some streams the client drops."""
    headers = {"x-gateway-project": "race"}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:

        async def one(index: int) -> tuple[str, httpx.Response | None]:
            kind = "fail" if index % 10 == 3 else "drop" if index % 10 == 7 else "ok"
            directive = {
                "ok": "delay=0.3,text=ok",
                "fail": "delay=0.3,status=500",
                "drop": "chunks=20,chunk_delay=0.2,text=a b c d e f g h i j k l m n o p q r s t",
            }[kind]
            body = {
                "model": "paid",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": f"[[fake:{directive}]]"}],
            }
            if kind == "drop":
                async with client.stream(
                    "POST", "/v1/chat/completions", json={**body, "max_tokens": 40, "stream": True}
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        return kind, response
                    async for _ in response.aiter_lines():
                        break  # leave after the first event: the client disconnects mid-stream
                return kind, None
            return kind, await client.post("/v1/chat/completions", json=body)

        # The failing and dropped requests go a second ahead: racing the plain ones they were
        # admitted only by chance (cheaper plain requests often held the whole budget first),
        # and the checks below need some of each. The plain ones then race each other, and
        # whatever the early ones still hold, over the four workers.
        kinds = ["fail" if i % 10 == 3 else "drop" if i % 10 == 7 else "ok" for i in range(count)]
        early = [asyncio.create_task(one(i)) for i in range(count) if kinds[i] != "ok"]
        await asyncio.sleep(1.0)
        rest = [asyncio.create_task(one(i)) for i in range(count) if kinds[i] == "ok"]
        return list(await asyncio.gather(*early, *rest))


def test_concurrent_requests_over_four_workers_never_overspend(
    upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    limit = Decimal("1.00")
    with gateway_processes(
        tmp_path, race_config(upstream, tmp_path, total_usd=float(limit)), redis_prefix, workers=4
    ) as (gateway,):
        url = gateway.url
        results = asyncio.run(_fire(url, 200))
        answered_cost = Decimal(0)
        counts = {"ok": 0, "refused": 0, "failed": 0, "dropped": 0}
        for kind, response in results:
            if response is None:
                counts["dropped"] += 1
            elif response.status_code == 200:
                assert kind == "ok"
                counts["ok"] += 1
                answered_cost += Decimal(response.headers["x-gateway-cost"])
            elif response.status_code == 402:
                counts["refused"] += 1
                error = assert_error_shape(response.json(), code="budget_exceeded")
                assert error["budget"]["limit_usd"] == float(limit) and error["budget"]["period"] == "total"
                assert "$1.000000" in error["message"] and "does not reset" in error["message"]
            else:
                assert kind == "fail" and response.status_code == 500, response.text
                counts["failed"] += 1
        report = wait_released(url, "race")
    spent = Decimal(str(report["spend"]["total"]["spent_usd"]))
    print(f"race: {counts}, spent ${spent} of ${limit}")
    assert counts["ok"] > 0 and counts["refused"] > 0, counts
    assert counts["failed"] > 0 and counts["dropped"] > 0, counts
    assert spent <= limit
    # Everything answered was charged; dropped streams add their partial cost; failures add nothing.
    assert spent >= answered_cost
    assert report["spend"]["day"]["spent_usd"] == report["spend"]["total"]["spent_usd"]
