"""Editing the `mcp` section of config.yaml reaches a running gateway's /mcp, no restart.

A real MCP client holds one session across the edit and sees the new workspace
root, write permission, Redis key prefix and size limit; a client that connects
afterwards (the 2026-07-28 era) sees them too. The transport follows as well:
new allowed Hosts are accepted, and `http_enabled: false` closes /mcp, open
sessions included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import duckdb
import httpx
import redis

from tests.conftest import REDIS_URL, base_config, start_from_file, write_config
from tests.fakes import FakeUpstream
from tests.mcp_support import http_client, run, text

TOKEN = "aigw-admin-test-token"


def test_mcp_settings_follow_a_config_reload(tmp_path: Path, upstream: FakeUpstream, redis_prefix: str) -> None:
    first, second = tmp_path / "ws-first", tmp_path / "ws-second"
    for root in (first, second):
        root.mkdir()
        (root / f"{root.name}.txt").write_text(f"hello from {root.name}\n")
    data = tmp_path / "data"
    data.mkdir()
    with duckdb.connect(str(data / "workspace.duckdb")) as db:
        db.execute("CREATE TABLE notes (id INTEGER, body VARCHAR)")

    raw = base_config(
        upstream.url,
        None,
        data,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        mcp={"roots": [str(first)]},
        server={"admin_token": TOKEN},
    )
    path = tmp_path / "config.yaml"
    server = start_from_file(path, raw)
    direct = redis.Redis.from_url(REDIS_URL)

    async def calls(client: Any) -> dict[str, Any]:
        return {
            "first": await client.call_tool("fs_read", {"path": "ws-first.txt"}),
            "second": await client.call_tool("fs_read", {"path": "ws-second.txt"}),
            "insert": await client.call_tool("db_insert", {"table": "notes", "row": {"id": 1, "body": "hi"}}),
            "redis": await client.call_tool("redis_set", {"key": "k", "value": "v"}),
        }

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with http_client(server.url, TOKEN, "legacy") as client:
            before = await calls(client)
            await anyio.sleep(1.1)  # mtime resolution on some filesystems
            raw["mcp"] = {
                "roots": [str(second)],
                "db_write_enabled": True,
                "db_allowed_tables": ["notes"],
                "redis_key_prefix": "scratch:",
                "max_read_bytes": 5,
            }
            write_config(path, raw)
            deadline = time.monotonic() + 15
            while (await client.call_tool("fs_read", {"path": "ws-second.txt"})).is_error:
                assert time.monotonic() < deadline, "the new mcp.roots never reached the open session"
                await anyio.sleep(0.2)
            return before, await calls(client)

    async def later() -> Any:
        async with http_client(server.url, TOKEN, "2026-07-28") as client:
            return await client.call_tool("fs_read", {"path": "ws-second.txt"})

    try:
        before, after = run(scenario)
        fresh = run(later)
        assert before["first"].structured_content["content"] == "hello from ws-first\n"
        assert before["second"].is_error
        assert "writes are disabled" in text(before["insert"])
        assert direct.get(redis_prefix + "mcp:k") == b"v"

        assert after["first"].is_error and "is not a file in the workspace" in text(after["first"])
        assert after["second"].structured_content == {  # the new root, and the new read limit
            "path": "ws-second.txt",
            "content": "hello",
            "size": 21,
            "truncated": True,
        }
        assert after["insert"].structured_content == {"table": "notes", "rows_affected": 1}
        assert direct.get(redis_prefix + "scratch:k") == b"v"
        assert fresh.structured_content["content"] == "hello"
    finally:
        direct.close()
        server.stop()


def _initialize(url: str, host: str | None = None) -> httpx.Response:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {TOKEN}"}
    return httpx.post(url + "/mcp", json=body, headers={**headers, **({"host": host} if host else {})}, timeout=10)


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_mcp_transport_switches_follow_a_config_reload(tmp_path: Path, upstream: FakeUpstream) -> None:
    raw = base_config(
        upstream.url, None, tmp_path / "data", mcp={"roots": [str(tmp_path)]}, server={"admin_token": TOKEN}
    )
    path = tmp_path / "config.yaml"
    server = start_from_file(path, raw)
    try:
        assert _initialize(server.url, "tools.example:80").status_code == 421  # not an allowed Host yet

        time.sleep(1.1)  # mtime resolution on some filesystems
        raw["mcp"] = {"roots": [str(tmp_path)], "allowed_hosts": ["tools.example:*"]}
        write_config(path, raw)
        _wait_for(
            lambda: _initialize(server.url, "tools.example:80").status_code == 200,
            "the new mcp.allowed_hosts never reached /mcp",
        )
        assert _initialize(server.url, "other.example:80").status_code == 421

        async def session_across_the_switch() -> tuple[Any, BaseException | None]:
            async with http_client(server.url, TOKEN, "legacy") as client:
                listed = await client.call_tool("fs_list", {})
                await anyio.sleep(1.1)
                raw["mcp"] = {**raw["mcp"], "http_enabled": False}
                write_config(path, raw)
                await anyio.to_thread.run_sync(
                    lambda: _wait_for(lambda: _initialize(server.url).status_code == 404, "/mcp stayed open")
                )
                try:
                    await client.call_tool("fs_list", {})
                except Exception as error:  # the SDK surfaces the 404 as its own error type
                    return listed, error
                return listed, None

        listed, refused = run(session_across_the_switch)
        assert not listed.is_error
        assert refused is not None  # the open session is closed too, not only new ones
        closed = _initialize(server.url)
        assert closed.json()["error"]["message"] == "MCP over HTTP is disabled (mcp.http_enabled: false)"
    finally:
        server.stop()
