"""SIGTERM while streams are in flight: they finish, usage is flushed, exit 0."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx

from tests.fakes import fake_openai, free_port
from tests.replicas import clean_env

STREAMS = 50


async def _stream(client: httpx.AsyncClient, url: str, started: asyncio.Event, counter: list[int]) -> str:
    body = {
        "model": "auto",
        "stream": True,
        "messages": [{"role": "user", "content": "slow [[fake:chunks=20,chunk_delay=0.1]]"}],
    }
    last = ""
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if not line:
                continue
            if last == "":
                counter[0] += 1
                if counter[0] == STREAMS:
                    started.set()
            last = line
    return last


async def _run_streams(url: str, process: subprocess.Popen[str]) -> list[str]:
    started = asyncio.Event()
    counter = [0]
    limits = httpx.Limits(max_connections=STREAMS + 5)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        tasks = [asyncio.create_task(_stream(client, url, started, counter)) for _ in range(STREAMS)]
        await asyncio.wait_for(started.wait(), timeout=60)
        process.send_signal(signal.SIGTERM)
        return await asyncio.gather(*tasks)


def test_sigterm_lets_streams_finish_and_flushes_usage(tmp_path: Path) -> None:
    with fake_openai("ollama") as upstream:
        upstream.models = [{"id": "llama3.2", "object": "model"}]
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=clean_env(OSS_MODEL_ENDPOINT=upstream.url),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 20
        while True:
            try:
                httpx.get(url + "/health", timeout=0.5)
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.time() < deadline
                time.sleep(0.1)
        endings = asyncio.run(_run_streams(url, process))
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    for ending in endings:
        assert ending == "data: [DONE]" or ending.startswith('data: {"error"'), ending
    assert endings.count("data: [DONE]") == STREAMS
    with duckdb.connect(str(tmp_path / "data" / "usage.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT count(*), count(*) FILTER (WHERE status = 200) FROM usage").fetchone()
    assert rows == (STREAMS, STREAMS)
