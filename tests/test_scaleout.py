"""Scale out: two `aigw serve --workers 2` processes, one Redis, one data dir, seen as one gateway.

The issue's "done when": budgets, rate limits, cache hits, revoked tokens and
a config change are the same whichever process (and worker) answers, and
SIGKILL of the process that runs the usage ingester loses no usage row. One
pair of processes runs every part, in order (the last one kills a process).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.conftest import REDIS_URL, assert_error_shape, base_config
from tests.fakes import FakeUpstream
from tests.replicas import Replica, admin_headers, gateway_processes, wait_released, wait_until

pytestmark = pytest.mark.slow

LIMIT_USD = Decimal("0.10")
RPM = 3  # one more request every 20 s after a burst of 3: far longer than a burst takes here


def scaleout_config(upstream: FakeUpstream, data_dir: Path) -> dict[str, Any]:
    raw = base_config(
        upstream.url,
        None,
        data_dir,
        usage={"ingester_lock_seconds": 3},
        budgets={"steer_at": None},
        projects={"capped": {"total_usd": float(LIMIT_USD)}, "limited": {"rpm": RPM}},
    )
    # $1000 per million tokens: each answer costs a few cents, so a $0.10 budget holds a handful.
    raw["models"].append({"id": "paid", "provider": "fakeai", "tier": "L1", "price": {"input": 1000, "output": 1000}})
    return raw


def chat(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    """One request on a connection of its own, so any worker of the process may take it."""
    return httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=30)


def hello(model: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


async def _burst(requests: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[httpx.Response]:
    """All at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(client.post(url + "/v1/chat/completions", json=body, headers=headers) for url, body, headers in requests)
        )


def burst(urls: list[str], count: int, body: dict[str, Any], headers: dict[str, str]) -> list[httpx.Response]:
    return asyncio.run(_burst([(urls[i % len(urls)], body, headers) for i in range(count)]))


def sql(url: str, query: str) -> list[list[Any]] | None:
    """The rows, or None while no ingester can answer (one is taking over)."""
    response = httpx.post(url + "/v1/admin/sql", headers=admin_headers(), json={"sql": query}, timeout=30)
    if response.status_code == 503:
        assert_error_shape(response.json(), code="usage_unavailable")
        return None
    assert response.status_code == 200, response.text
    rows: list[list[Any]] = response.json()["rows"]
    return rows


def seen_everywhere(urls: list[str], check: Any, times: int = 3) -> bool:
    """`check(url)` holds on `times` fresh connections to each process (so on its workers, most likely all)."""
    return all(check(url) for url in urls for _ in range(times))


def ingester_replica(replicas: list[Replica], prefix: str) -> Replica:
    """The process whose worker holds the ingester lock (its value names the worker's pid)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        holder = client.get(prefix + "usage:ingester")
    finally:
        client.close()
    assert holder is not None, "no usage ingester holds the lock"
    pid = int(holder.decode().split(":")[1])
    owners = [replica for replica in replicas if pid in replica.pids()]
    assert len(owners) == 1, f"worker {pid} belongs to {len(owners)} of the processes"
    return owners[0]


def test_two_processes_with_two_workers_each_act_as_one_gateway(
    upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    started = time.monotonic()
    timings: dict[str, float] = {}
    with gateway_processes(
        tmp_path, scaleout_config(upstream, tmp_path / "data"), redis_prefix, workers=2, count=2
    ) as replicas:
        a, b = replicas
        urls = [a.url, b.url]
        timings["start"] = time.monotonic() - started

        # Budget: 16 requests at once over both processes never spend more than the project's limit.
        answers = burst(
            urls, 16, hello("paid", "[[fake:delay=0.3,text=ok]]", max_tokens=5), {"x-gateway-project": "capped"}
        )
        charged = Decimal(0)
        for answer in answers:
            if answer.status_code == 200:
                charged += Decimal(answer.headers["x-gateway-cost"])
            else:
                assert answer.status_code == 402, answer.text
                assert_error_shape(answer.json(), code="budget_exceeded")
        statuses = [answer.status_code for answer in answers]
        assert 200 in statuses and 402 in statuses, statuses
        report = wait_released(b.url, "capped")
        spent = Decimal(str(report["spend"]["total"]["spent_usd"]))
        assert charged <= spent <= LIMIT_USD, (charged, spent)

        # Rate limit: of 12 requests at once over both processes, exactly RPM are admitted.
        answers = burst(urls, 12, hello("L0"), {"x-gateway-project": "limited"})
        assert [a.status_code for a in answers].count(200) == RPM, [a.status_code for a in answers]
        for answer in answers:
            if answer.status_code != 200:
                assert answer.status_code == 429
                assert_error_shape(answer.json(), code="rate_limit_exceeded")

        # Cache: an answer stored through A is a hit through B, without another upstream call.
        cacheable = hello("cheap-mini", "cache me across replicas", temperature=0)
        assert chat(a.url, cacheable).headers["x-gateway-cache"] == "miss"
        calls = len(upstream.requests)
        for _ in range(3):
            hit = chat(b.url, cacheable)
            assert hit.status_code == 200 and hit.headers["x-gateway-cache"] == "hit"
        assert len(upstream.requests) == calls

        # Config through the admin API of A: every worker of B applies it within seconds.
        assert chat(b.url, hello("team-model")).status_code == 404
        changed = httpx.patch(
            a.url + "/admin/config",
            headers=admin_headers(),
            timeout=10,
            json={"routing": {"aliases": {"team-model": "cheap-mini"}}},
        )
        assert changed.status_code == 200, changed.text
        timings["config via admin API"] = wait_until(
            lambda: seen_everywhere([b.url], lambda url: chat(url, hello("team-model")).status_code == 200),
            15,
            "the admin API's change on B",
        )
        # ... and an edit of the config.yaml both processes read, on top of that change.
        path = tmp_path / "config.yaml"
        edited = yaml.safe_load(path.read_text())
        edited["routing"]["aliases"]["file-model"] = "free-small"
        path.write_text(yaml.safe_dump(edited))
        timings["config file edit"] = wait_until(
            lambda: seen_everywhere(
                urls, lambda url: chat(url, hello("file-model")).json().get("model") == "free-small"
            ),
            15,
            "the edited config.yaml on both",
        )
        assert chat(a.url, hello("team-model")).json()["model"] == "cheap-mini"  # the override stays on top

        # Tokens: one revoked through A's admin API is refused by B at once; another keeps working.
        def token(project: str) -> dict[str, Any]:
            created = httpx.post(
                a.url + "/admin/tokens", headers=admin_headers(), json={"project": project}, timeout=10
            )
            assert created.status_code == 201, created.text
            body: dict[str, Any] = created.json()
            return body

        kept, doomed = token("ingest"), token("revocable")
        keep = {"authorization": f"Bearer {kept['secret']}"}
        assert chat(b.url, hello("L0")).status_code == 401  # tokens exist now: no more open access
        assert chat(b.url, hello("L0"), authorization=f"Bearer {doomed['secret']}").status_code == 200
        revoked = httpx.delete(f"{a.url}/admin/tokens/{doomed['id']}", headers=admin_headers(), timeout=10)
        assert revoked.status_code == 200, revoked.text
        for url in urls * 3:
            refused = chat(url, hello("L0"), authorization=f"Bearer {doomed['secret']}")
            assert refused.status_code == 401 and "revoked" in assert_error_shape(refused.json())["message"]

        # Usage: every request is one row, even when the process that writes them is killed.
        ids: list[str] = []

        def ask(url: str, index: int) -> str:
            answer = chat(url, hello("L0", f"usage {index}", stream=index % 2 == 0), **keep)
            assert answer.status_code == 200, answer.text
            return answer.headers["x-request-id"]

        ids += [ask(urls[i % 2], i) for i in range(10)]  # some answered by the ingester's own process
        count = "SELECT count(*), count(DISTINCT request_id) FROM usage WHERE project = 'ingest'"
        wait_until(lambda: sql(b.url, count) == [[10, 10]], 30, "the first rows")
        doomed_process = ingester_replica(replicas, redis_prefix)
        survivor = b if doomed_process is a else a
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(ask, survivor.url, 10 + i) for i in range(30)]
            wait_until(lambda: sum(f.done() for f in futures) >= 10, 30, "requests under way")
            doomed_process.kill()  # SIGKILL to it and its workers: no shutdown, the lock is not released
            killed_at = time.monotonic()
            ids += [future.result() for future in futures]
        wait_until(lambda: sql(survivor.url, count) == [[40, 40]], 40, "every row after the kill")
        timings["ingester take-over"] = time.monotonic() - killed_at
        stored = sql(survivor.url, "SELECT request_id FROM usage WHERE project = 'ingest'")
        assert stored is not None and {row[0] for row in stored} == set(ids) and len(set(ids)) == 40
    timings["total"] = time.monotonic() - started
    print("scale-out: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in timings.items()))
