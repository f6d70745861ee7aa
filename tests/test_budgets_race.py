"""The race test: many concurrent requests over 4 worker processes never overspend a budget."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import REDIS_URL, assert_error_shape
from tests.fakes import FakeUpstream, free_port
from tests.test_serve import clean_env

ADMIN = "race-admin-token"
pytestmark = pytest.mark.slow


@contextmanager
def gateway_processes(tmp_path: Path, config: dict[str, Any], redis_prefix: str, *, workers: int = 1,
                      count: int = 1) -> Iterator[list[str]]:
    """`aigw serve` processes sharing one Redis prefix, as workers or replicas would."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = clean_env(REDIS_URL=REDIS_URL, REDIS_PREFIX=redis_prefix, AIGW_ADMIN_TOKEN=ADMIN, LOG_LEVEL="warning")
    processes, urls = [], []
    for _ in range(count):
        port = free_port()
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--port", str(port), "--workers", str(workers)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, process in zip(urls, processes, strict=True):
            deadline = time.time() + 60
            while True:
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, process.communicate()[0]
                assert time.time() < deadline, "gateway did not start"
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            output, _ = process.communicate(timeout=60)
            assert "Traceback" not in output, output


def race_config(upstream: FakeUpstream, tmp_path: Path, **limits: Any) -> dict[str, Any]:
    return {
        "server": {"data_dir": str(tmp_path / "data")},
        "providers": {"fakeai": {"kind": "openai", "base_url": upstream.url + "/v1", "api_key": "sk-fake", "timeout_seconds": 10}},
        # $1000 per million tokens: a token costs a tenth of a cent.
        "models": [{"id": "paid", "provider": "fakeai", "tier": "L1", "price": {"input": 1000, "output": 1000}}],
        "budgets": {"steer_at": None},
        "projects": {"race": limits},
    }


def project_report(url: str, project: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/admin/projects/{project}", headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_released(url: str, project: str) -> dict[str, Any]:
    deadline = time.time() + 30
    while True:
        report = project_report(url, project)
        if report["spend"]["total"]["reserved_usd"] == 0 and report["pending_reservations"] == 0:
            return report
        assert time.time() < deadline, report
        time.sleep(0.2)


async def _fire(url: str, count: int) -> list[tuple[str, httpx.Response | None]]:
    """`count` requests at once: most plain, some failing upstream, some streams the client drops."""
    headers = {"x-gateway-project": "race"}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:

        async def one(index: int) -> tuple[str, httpx.Response | None]:
            kind = "fail" if index % 10 == 3 else "drop" if index % 10 == 7 else "ok"
            directive = {"ok": "delay=0.3,text=ok", "fail": "delay=0.3,status=500", "drop": "chunks=20,chunk_delay=0.2,text=a b c d e f g h i j k l m n o p q r s t"}[kind]
            body = {"model": "paid", "max_tokens": 5, "messages": [{"role": "user", "content": f"[[fake:{directive}]]"}]}
            if kind == "drop":
                async with client.stream("POST", "/v1/chat/completions", json={**body, "max_tokens": 40, "stream": True}) as response:
                    if response.status_code != 200:
                        await response.aread()
                        return kind, response
                    async for _ in response.aiter_lines():
                        break  # leave after the first event: the client disconnects mid-stream
                return kind, None
            return kind, await client.post("/v1/chat/completions", json=body)

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_concurrent_requests_over_four_workers_never_overspend(upstream: FakeUpstream, tmp_path: Path, redis_prefix: str) -> None:
    limit = Decimal("1.00")
    with gateway_processes(tmp_path, race_config(upstream, tmp_path, total_usd=float(limit)), redis_prefix, workers=4) as (url,):
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
