"""`aigw serve --workers 3` with Redis: every answered request is exactly one DuckDB row, SIGTERM included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import redis
import yaml

from tests.conftest import REDIS_URL, base_config
from tests.fakes import FakeUpstream, free_port

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "workers-admin-token"
pytestmark = pytest.mark.slow


@contextmanager
def serve_workers(
    tmp_path: Path, upstream: FakeUpstream, prefix: str, workers: int = 3, lock_seconds: float = 10
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    raw = base_config(
        upstream.url,
        None,
        tmp_path / "data",
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        server={"data_dir": str(tmp_path / "data"), "admin_token": ADMIN},
        usage={"ingester_lock_seconds": lock_seconds},
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--config",
            str(config_path),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.time() < deadline, "gateway did not start"
            time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def ask(url: str, index: int, stream: bool, delay: float = 0) -> str | None:
    """One request on its own connection (so the kernel spreads them over workers); its id if it was answered."""
    directive = f" [[fake:delay={delay}]]" if delay else ""
    body: dict[str, Any] = {
        "model": "cheap-mini",
        "stream": stream,
        "messages": [{"role": "user", "content": f"request {index}{directive}"}],
    }
    try:
        response = httpx.post(url + "/v1/chat/completions", json=body, timeout=60)
    except httpx.HTTPError:
        return None  # refused while shutting down: never answered, so no row is owed
    if response.status_code != 200 or (stream and not response.text.endswith("data: [DONE]\n\n")):
        return None
    return response.headers["x-request-id"]


def stored_ids(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as db:
        return [row[0] for row in db.execute("SELECT request_id FROM usage").fetchall()]


def test_workers_write_each_request_exactly_once_even_through_sigterm(
    redis_prefix: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """One gateway run (worker start-up is the slow part): N concurrent requests, then SIGTERM under load."""
    n = 60
    with serve_workers(tmp_path, upstream, redis_prefix) as (url, process):
        with ThreadPoolExecutor(max_workers=20) as pool:
            ids = list(pool.map(lambda i: ask(url, i, stream=i % 2 == 0), range(n)))
        assert None not in ids and len(set(ids)) == n
        # Any worker answers SQL: the ingester runs it, wherever it is.
        deadline = time.time() + 30
        while True:
            answer = httpx.post(
                url + "/v1/admin/sql",
                headers={"authorization": f"Bearer {ADMIN}"},
                timeout=30,
                json={"sql": "SELECT count(*), count(DISTINCT request_id) FROM usage"},
            ).json()
            if answer["rows"] == [[n, n]] or time.time() > deadline:
                break
            time.sleep(0.2)
        assert answer["rows"] == [[n, n]]

        # Now under load: requests in flight upstream when SIGTERM arrives.
        with ThreadPoolExecutor(max_workers=40) as pool:
            futures = [pool.submit(ask, url, n + i, i % 2 == 0, 0.5) for i in range(80)]
            time.sleep(0.8)
            process.send_signal(signal.SIGTERM)
            late = [future.result() for future in futures]
        process.communicate(timeout=60)
    assert process.returncode == 0
    answered = [i for i in late if i]
    assert len(answered) >= 20, f"only {len(answered)} requests were answered before the shutdown"
    stored = stored_ids(tmp_path / "data" / "usage.duckdb")
    assert len(stored) == len(set(stored))  # no duplicates
    assert set(ids) | set(answered) <= set(stored)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert client.xlen(redis_prefix + "usage:events") == 0  # nothing left behind in the stream
    finally:
        client.close()


def test_another_process_takes_over_when_the_ingester_dies(
    redis_prefix: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """kill -9 the ingester: its lock expires, a survivor ingests the rest; every request is one row."""
    from proxy import config_from_dict, create_app
    from tests.fakes import ServerThread

    with serve_workers(tmp_path / "a", upstream, redis_prefix, workers=1, lock_seconds=4) as (url_a, process):
        wait_ingester(url_a)
        raw = base_config(
            upstream.url,
            None,
            tmp_path / "b",
            redis_url=REDIS_URL,
            redis_prefix=redis_prefix,
            server={"data_dir": str(tmp_path / "b"), "admin_token": ADMIN},
            usage={"ingester_lock_seconds": 4},
        )
        survivor = ServerThread(create_app(config_from_dict(raw, env={}))).start()
        try:
            ids = [ask(survivor.url, i, stream=False) for i in range(10)]
            deadline = time.time() + 30
            while len(stored_ids_via(url_a)) < 10:  # the first ten are in A's file (a row is never moved)
                assert time.time() < deadline
                time.sleep(0.2)
            wait_ingester(url_a)
            process.kill()  # no shutdown, no lock release
            process.wait()
            ids += [ask(survivor.url, 10 + i, stream=i % 2 == 0) for i in range(10)]
            assert None not in ids
            wait_ingester(survivor.url)
            deadline = time.time() + 30
            while True:
                taken_over = stored_ids_via(survivor.url)
                before = stored_ids(tmp_path / "a" / "data" / "usage.duckdb")
                if len(before) + len(taken_over) >= 20 or time.time() > deadline:
                    break
                time.sleep(0.2)
        finally:
            survivor.stop()
    # Every request has its row, none twice in a file (the two files are the two hosts' data dirs).
    assert set(before) | set(taken_over) == set(ids)
    assert len(before) == len(set(before)) and len(taken_over) == len(set(taken_over)) and len(taken_over) >= 10


def stored_ids_via(url: str) -> list[str]:
    answer = httpx.post(
        url + "/v1/admin/sql",
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=30,
        json={"sql": "SELECT request_id FROM usage"},
    ).json()
    return [row[0] for row in answer["rows"]]


def wait_ingester(url: str) -> None:
    """The gateway at `url` holds the ingester lock (its thread takes it soon after start-up)."""
    deadline = time.time() + 30
    while not httpx.get(url + "/health").json()["usage"]["ingester"]:
        assert time.time() < deadline, f"{url} never became the usage ingester"
        time.sleep(0.2)
