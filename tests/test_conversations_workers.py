"""Several gateway processes on one Redis and one data_dir share conversations.

DuckDB lets one process hold `conversations.duckdb`; the others send their
writes and reads through Redis (see proxy/conversations/cold.py). Two real
`aigw serve` processes stand in for workers or replicas.
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import redis
import yaml

from tests.conftest import REDIS_URL, base_config
from tests.fakes import FakeUpstream
from tests.replicas import clean_env
from tests.test_serve import aigw_serve


def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_two_processes_share_one_conversation(upstream: FakeUpstream, tmp_path: Path, redis_prefix: str) -> None:
    data_dir = tmp_path / "data"
    raw = base_config(
        upstream.url, None, data_dir, redis_url=REDIS_URL, redis_prefix=redis_prefix, usage={"enabled": False}
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = clean_env(AIGW_CONFIG=str(config))
    client = redis.Redis.from_url(REDIS_URL)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with aigw_serve(tmp_path / "a", env=env) as (first, _), aigw_serve(tmp_path / "b", env=env) as (second, _):
        urls = [first, second]

        def send(index: int) -> int:
            response = httpx.post(
                urls[index % 2] + "/v1/chat",
                timeout=30,
                json={"conversationId": "conv-multi", "message": f"turn {index}"},
            )
            return response.status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            assert list(pool.map(send, range(6))) == [200] * 6
        sizes = [len(r["body"]["messages"]) for r in upstream.requests]
        assert sizes == [1, 3, 5, 7, 9, 11]  # one turn at a time across both processes

        contexts = [httpx.get(url + "/v1/context/conv-multi").json() for url in urls]
        assert contexts[0] == contexts[1]
        assert [m["seq"] for m in contexts[0]["messages"]] == list(range(1, 13))

        # Empty Redis once the writes have reached DuckDB; both processes rebuild the same conversation.
        _wait_for(lambda: client.xlen(redis_prefix + "conv:cold:ops") == 0)
        client.delete(*client.keys(redis_prefix + "*"))
        rebuilt = [httpx.get(url + "/v1/context/conv-multi", timeout=15).json() for url in reversed(urls)]
        assert rebuilt == [contexts[0], contexts[0]]

    # Both stopped: everything is in the file.
    db = duckdb.connect(str(data_dir / "conversations.duckdb"), read_only=True)
    try:
        assert db.execute(
            "SELECT count(*), max(seq) FROM messages WHERE conversation_id = 'conv-multi'"
        ).fetchone() == (12, 12)
        assert db.execute("SELECT message_count FROM conversations WHERE id = 'conv-multi'").fetchone() == (12,)
    finally:
        db.close()
    client.close()


def test_another_process_takes_over_the_file(upstream: FakeUpstream, tmp_path: Path, redis_prefix: str) -> None:
    data_dir = tmp_path / "data"
    raw = base_config(
        upstream.url, None, data_dir, redis_url=REDIS_URL, redis_prefix=redis_prefix, usage={"enabled": False}
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = clean_env(AIGW_CONFIG=str(config))
    client = redis.Redis.from_url(REDIS_URL)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    owner_process = aigw_serve(tmp_path / "a", env=env)
    owner, _ = owner_process.__enter__()
    try:
        assert httpx.post(owner + "/v1/chat", json={"conversationId": "conv-hand", "message": "one"}).status_code == 200
        with aigw_serve(tmp_path / "b", env=env) as (other, _):
            assert (
                httpx.post(other + "/v1/chat", json={"conversationId": "conv-hand", "message": "two"}).status_code
                == 200
            )
            owner_process.__exit__(None, None, None)  # the file's holder stops; the other takes the file over
            owner_process = None
            assert (
                httpx.post(other + "/v1/chat", json={"conversationId": "conv-hand", "message": "three"}).status_code
                == 200
            )
            _wait_for(lambda: client.xlen(redis_prefix + "conv:cold:ops") == 0)
            client.delete(*client.keys(redis_prefix + "*"))
            context = httpx.get(other + "/v1/context/conv-hand", timeout=15)
            assert context.status_code == 200, context.text
            assert [m["content"] for m in context.json()["messages"][::2]] == ["one", "two", "three"]
    finally:
        if owner_process is not None:
            owner_process.__exit__(None, None, None)
    client.close()
