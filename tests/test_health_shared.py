"""Provider health shared through Redis: a circuit that opens on one worker is open on every worker and replica.

Two real `aigw serve --workers 2` processes on one Redis prefix, a fake
upstream that fails on demand (HTTP 500, or slower than the provider's
timeout) and a healthy one; then two boards in one process for the exact
counting rules; then Redis going away under a running gateway.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from proxy import config_from_dict, create_app
from proxy.config import HealthConfig
from proxy.routing.health import HealthBoard
from proxy.routing.health_share import RedisHealthShare
from tests.conftest import REDIS_URL, assert_error_shape, redis_server
from tests.fakes import FakeUpstream, ServerThread, fake_openai, free_port
from tests.replicas import gateway_processes, wait_until

COOLDOWN = 3.0


def two_provider_config(flaky: FakeUpstream, steady: FakeUpstream, data_dir: Path, **extra: Any) -> dict[str, Any]:
    """Two L0 models on two providers; the flaky one is cheaper, so it is chosen while it is healthy."""
    return {
        "server": {"data_dir": str(data_dir)},
        "providers": {
            "flaky": {"kind": "openai", "base_url": flaky.url + "/v1", "api_key": "sk-flaky", "timeout_seconds": 2},
            "steady": {"kind": "openai", "base_url": steady.url + "/v1", "api_key": "sk-steady", "timeout_seconds": 5},
        },
        "models": [
            {"id": "flaky-small", "provider": "flaky", "tier": "L0", "price": {"input": 0, "output": 0}},
            {"id": "steady-small", "provider": "steady", "tier": "L0", "price": {"input": 0.01, "output": 0.01}},
        ],
        "routing": {"retry": {"attempts": 1}, "health": {"failure_threshold": 3, "cooldown_seconds": COOLDOWN}},
        **extra,
    }


def ask(url: str, model: str, text: str = "hi") -> httpx.Response:
    """One request on a connection of its own, so the kernel hands it to any of the process's workers."""
    return httpx.post(
        url + "/v1/chat/completions", timeout=30, json={"model": model, "messages": [{"role": "user", "content": text}]}
    )


def circuit(url: str, model: str) -> str:
    circuits = httpx.get(url + "/health", timeout=10).json()["circuits"]["models"]
    return str(circuits.get(model, {}).get("state", "closed"))


@pytest.mark.slow
def test_a_circuit_opens_and_recovers_for_every_worker_of_every_replica(tmp_path: Path, redis_prefix: str) -> None:
    with (
        fake_openai("flaky") as flaky,
        fake_openai("steady") as steady,
        gateway_processes(
            tmp_path,
            two_provider_config(flaky, steady, tmp_path / "data"),
            redis_prefix,
            workers=2,
            count=2,
        ) as (a, b),
    ):
        assert ask(b.url, "L0").json()["model"] == "flaky-small"
        assert httpx.get(a.url + "/health").json()["circuitsShared"] is True

        # Three failures, of both kinds, two on A and one on B: neither alone reaches the threshold of 3.
        assert ask(a.url, "flaky-small", "[[fake:status=500]]").status_code == 500
        assert_error_shape(ask(b.url, "flaky-small", "[[fake:delay=3]]").json(), code="upstream_timeout")
        assert ask(a.url, "flaky-small", "[[fake:status=500]]").status_code == 500
        propagation = wait_until(
            lambda: circuit(a.url, "flaky-small") == "open" == circuit(b.url, "flaky-small"),
            5,
            "the circuit open on both replicas",
        )
        calls = len(flaky.requests)
        for url in (a.url, b.url) * 4:
            refused = ask(url, "flaky-small")
            assert refused.status_code == 503
            assert_error_shape(refused.json(), code="circuit_open")
            assert ask(url, "L0").json()["model"] == "steady-small"  # routed around it
        assert len(flaky.requests) == calls  # no worker of either replica called it again

        # Half-open after the cooldown: one trial call for all workers of both replicas, the rest refused.
        wait_until(
            lambda: circuit(a.url, "flaky-small") == "half_open" == circuit(b.url, "flaky-small"),
            COOLDOWN + 5,
            "half-open on both replicas",
        )

        async def trials() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                body = {"model": "flaky-small", "messages": [{"role": "user", "content": "[[fake:delay=1.5]]"}]}
                return await asyncio.gather(
                    *(client.post(url + "/v1/chat/completions", json=body) for url in (a.url, b.url) * 4)
                )

        answers = asyncio.run(trials())
        assert sorted(r.status_code for r in answers) == [200] + [503] * 7
        assert len(flaky.requests) == calls + 1
        recovery = wait_until(
            lambda: circuit(a.url, "flaky-small") == "closed" == circuit(b.url, "flaky-small"),
            5,
            "closed again on both replicas",
        )
        for url in (a.url, b.url) * 2:
            assert ask(url, "L0").json()["model"] == "flaky-small"
    print(
        f"health: open on both replicas {propagation * 1000:.0f} ms after the third failure's answer, "
        f"closed {recovery * 1000:.0f} ms after the trial's (polling /health every 50 ms)"
    )
    assert "opened for every worker" in a.output + b.output


async def _boards(url: str, prefix: str, config: HealthConfig, count: int = 2) -> tuple[list[HealthBoard], Any]:
    """`count` boards, each with its own Redis connection, as in separate workers; and a closer."""
    boards, tasks, clients = [], [], []
    for _ in range(count):
        client = aioredis.from_url(url)
        board = HealthBoard(config)
        tasks.append(asyncio.create_task(RedisHealthShare(board, client, prefix).run_forever()))
        boards.append(board)
        clients.append(client)

    async def close() -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.aclose()

    await asyncio.sleep(0.2)  # subscribed
    return boards, close


async def _until(condition: Any, timeout: float = 5.0) -> float:
    started = time.perf_counter()
    while not condition():
        assert time.perf_counter() - started < timeout, "condition not reached"
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


def test_boards_count_failures_together_and_share_each_change(redis_prefix: str) -> None:
    config = HealthConfig(failure_threshold=3, cooldown_seconds=0.5, failure_window_seconds=1.0)

    async def scenario() -> dict[str, float]:
        (a, b), close = await _boards(REDIS_URL, redis_prefix, config)
        client = aioredis.from_url(REDIS_URL)
        try:
            # A success on a closed circuit is not news: nothing is written to Redis.
            a.record("p", "m", True, latency_ms=5)
            await asyncio.sleep(0.1)
            assert await client.hgetall(redis_prefix + "health:circuits") == {}

            # Failures in the window add up over both boards; a success in between starts the count again.
            a.record("p", "m", False, error="500")
            a.record("p", "m", False, error="500")
            await _until(lambda: b.circuits.get("m:m") is not None and b.circuits["m:m"].shared_failures == 2)
            b.record("p", "m", True)
            await _until(lambda: a.circuits["m:m"].shared_failures == 0)
            a.record("p", "m", False, error="500")
            await asyncio.sleep(0.2)
            assert a.state("p", "m") == b.state("p", "m") == "closed"

            # Failures older than the window do not count.
            await asyncio.sleep(1.1)
            b.record("p", "m", False, error="500")
            await asyncio.sleep(0.2)
            assert a.state("p", "m") == b.state("p", "m") == "closed"

            # Now three in the window, over both boards: open everywhere.
            a.record("p", "m", False, error="500")
            b.record("p", "m", False, error="503", timeout=True)
            opened = await _until(lambda: a.state("p", "m") == b.state("p", "m") == "open")
            assert not await a.admit("p", "m") and not await b.admit("p", "m")

            # Half-open: exactly one board runs the trial; its failure opens the circuit again everywhere.
            await _until(lambda: a.state("p", "m") == b.state("p", "m") == "half_open", 2)
            admitted = await asyncio.gather(a.admit("p", "m"), b.admit("p", "m"))
            assert sorted(admitted) == [False, True]
            trial, other = (a, b) if admitted[0] else (b, a)
            trial.record("p", "m", False, error="still 500")
            await _until(lambda: other.state("p", "m") == "open" and other.circuits["m:m"].last_error == "still 500")

            # The next trial succeeds: closed everywhere.
            await _until(lambda: a.state("p", "m") == b.state("p", "m") == "half_open", 2)
            admitted = await asyncio.gather(b.admit("p", "m"), a.admit("p", "m"))
            assert sorted(admitted) == [False, True]
            trial, other = (b, a) if admitted[0] else (a, b)
            trial.record("p", "m", True, latency_ms=20)
            closed = await _until(lambda: other.state("p", "m") == "closed")
            assert await other.admit("p", "m")

            # A provider-wide failure (connection refused) opens the provider for every model of it.
            for _ in range(3):
                a.record("p", "other-model", False, error="connection refused", provider_wide=True)
            await _until(lambda: b.provider_state("p") == "open")
            assert not b.usable("p", "m") and b.usable("q", "m2")
            return {"opened": opened, "closed": closed}
        finally:
            await client.aclose()
            await close()

    timings = asyncio.run(scenario())
    print(
        f"health between boards: open seen {timings['opened'] * 1000:.1f} ms after the failure was recorded, "
        f"closed {timings['closed'] * 1000:.1f} ms after the trial's success"
    )
    assert timings["opened"] < 1.0 and timings["closed"] < 1.0


def test_a_worker_that_starts_later_sees_circuits_opened_before(redis_prefix: str) -> None:
    """It missed the announcement, so it reads the stored circuits: open, with the same cooldown left."""
    config = HealthConfig(failure_threshold=1, cooldown_seconds=30)

    async def scenario() -> tuple[float, float]:
        (early,), close_early = await _boards(REDIS_URL, redis_prefix, config, count=1)
        try:
            early.record("p", "m", False, error="500")
            await _until(lambda: early.circuits["m:m"].version == 1)
            await asyncio.sleep(0.3)
            (late,), close_late = await _boards(REDIS_URL, redis_prefix, config, count=1)
            try:
                seen = await _until(lambda: late.state("p", "m") == "open")
                return seen, abs(late.circuits["m:m"].opened_at - early.circuits["m:m"].opened_at)
            finally:
                await close_late()
        finally:
            await close_early()

    seen, skew = asyncio.run(scenario())
    assert seen < 1.0 and skew < 0.1


def test_without_redis_each_worker_keeps_its_own_circuits(
    own_redis: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """Redis dies under a running gateway: no request fails for it; the breaker works on local state."""
    url, process = own_redis
    with fake_openai("flaky") as flaky, fake_openai("steady") as steady:
        raw = two_provider_config(flaky, steady, tmp_path, redis_url=url, redis_prefix="outage:")
        raw["routing"]["health"]["cooldown_seconds"] = 1.0
        server = ServerThread(create_app(config_from_dict(raw, env={}))).start()
        try:
            assert ask(server.url, "L0").json()["model"] == "flaky-small"
            process.kill()
            process.wait()
            for _ in range(3):
                assert ask(server.url, "flaky-small", "[[fake:status=500]]").status_code == 500
            refused = ask(server.url, "flaky-small")
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "circuit_open"
            assert ask(server.url, "L0").json()["model"] == "steady-small"
            health = httpx.get(server.url + "/health").json()
            assert health["circuitsShared"] is False and health["circuits"]["models"]["flaky-small"]["state"] == "open"
            # Recovery on local state: the trial call goes through although Redis cannot be asked.
            wait_until(lambda: circuit(server.url, "flaky-small") == "half_open", 5, "half-open")
            assert ask(server.url, "flaky-small").status_code == 200
            assert circuit(server.url, "flaky-small") == "closed"
        finally:
            server.stop()


def test_sharing_resumes_when_redis_is_back_even_empty() -> None:
    """While Redis is down each board decides alone; once it is back (empty, as after a flush), they share again."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    process = redis_server(port)
    config = HealthConfig(failure_threshold=2, cooldown_seconds=30)

    async def scenario() -> None:
        nonlocal process
        (a, b), close = await _boards(url, "resume:", config)
        try:
            a.record("p", "m", False, error="500")
            await _until(lambda: "m:m" in b.circuits and b.circuits["m:m"].shared_failures == 1)
            process.kill()
            process.wait()
            a.record("p", "x", False, error="500")
            a.record("p", "x", False, error="500")
            assert a.state("p", "x") == "open"  # its own breaker, at once
            await asyncio.sleep(0.5)
            assert b.state("p", "x") == "closed" and not a.share.available  # type: ignore[union-attr]
            process = await asyncio.to_thread(redis_server, port)
            # The second failure of m opens it; in the new Redis that is the record's first version,
            # which B must not take for one it has already seen.
            a.record("p", "m", False, error="500")
            await _until(lambda: b.state("p", "m") == "open", 10)
            assert a.share.available  # type: ignore[union-attr]
        finally:
            await close()

    try:
        asyncio.run(scenario())
    finally:
        process.kill()
        process.wait()
