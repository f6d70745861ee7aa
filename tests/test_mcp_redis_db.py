"""redis_* confined to their key prefix; db_* read-only unless enabled, parameterised always."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import redis

from tests.conftest import REDIS_URL, base_config
from tests.fakes import FakeUpstream
from tests.mcp_support import http_client, run, text

TOKEN = "aigw-admin-test-token"


async def call_all(url: str, calls: list[tuple[str, dict[str, Any]]], mode: str = "legacy") -> list[Any]:
    async with http_client(url, TOKEN, mode) as client:
        return [await client.call_tool(name, args) for name, args in calls]


def start(start_gateway: Any, upstream: FakeUpstream, data_dir: Path, **overrides: Any) -> str:
    raw = base_config(upstream.url, None, data_dir, **overrides, server={"admin_token": TOKEN})
    return str(start_gateway(raw).url)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_redis_tools_stay_inside_their_prefix(
    start_gateway: Any, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str, mode: str
) -> None:
    direct = redis.Redis.from_url(REDIS_URL)
    direct.set(redis_prefix + "gateway-state", "do not touch")
    url = start(
        start_gateway,
        upstream,
        tmp_path,
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        mcp={"redis_key_prefix": "tools:", "redis_max_ttl_seconds": 600},
    )
    calls: list[tuple[str, dict[str, Any]]] = [
        ("redis_set", {"key": "greeting", "value": "hello", "ttl_seconds": 120}),
        ("redis_get", {"key": "greeting"}),
        ("redis_get", {"key": "missing"}),
        # Names that try to reach the gateway's own keys land inside the tools' prefix.
        ("redis_get", {"key": "../gateway-state"}),
        ("redis_set", {"key": redis_prefix + "gateway-state", "value": "pwned"}),
        ("redis_del", {"key": redis_prefix + "gateway-state"}),
        ("redis_del", {"key": "*"}),
        ("redis_set", {"key": "bad\r\nFLUSHALL", "value": "x"}),
        ("redis_set", {"key": "", "value": "x"}),
        ("redis_set", {"key": "long-ttl", "value": "x", "ttl_seconds": 601}),
        ("redis_del", {"key": "greeting"}),
        ("redis_get", {"key": "greeting"}),
    ]
    (stored, got, missing, traversal, overwrite, delete_other, delete_glob, crlf, empty, long_ttl, deleted, gone) = run(
        lambda: call_all(url, calls, mode)
    )
    try:
        assert stored.structured_content == {"key": "greeting", "ttl_seconds": 120}
        assert got.structured_content["value"] == "hello" and 0 < got.structured_content["ttl_seconds"] <= 120
        assert direct.get(redis_prefix + "tools:greeting") is None  # deleted below
        assert missing.structured_content["value"] is None
        assert traversal.structured_content["value"] is None
        assert not overwrite.is_error and delete_other.structured_content["deleted"] is True
        assert direct.get(redis_prefix + "gateway-state") == b"do not touch"
        assert delete_glob.structured_content["deleted"] is False
        assert crlf.is_error and "control characters" in text(crlf)
        assert empty.is_error and long_ttl.is_error and "at most 600" in text(long_ttl)
        assert deleted.structured_content["deleted"] is True and gone.structured_content["value"] is None
        keys = sorted(k.decode() for k in direct.scan_iter(match=redis_prefix + "*"))
        # Besides the gateway's own usage stream and worker stats, only the key set directly above exists.
        own = (redis_prefix + "usage:", redis_prefix + "stats:worker:")
        assert [k for k in keys if not k.startswith(own)] == [redis_prefix + "gateway-state"]
    finally:
        direct.close()


def test_redis_without_redis_is_a_tool_error(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path) -> None:
    url = start(start_gateway, upstream, tmp_path)
    (result,) = run(lambda: call_all(url, [("redis_get", {"key": "x"})]))
    assert result.is_error and "REDIS_URL" in text(result)


@pytest.fixture
def workspace_db(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    with duckdb.connect(str(data / "workspace.duckdb")) as db:
        db.execute("CREATE TABLE notes (id INTEGER, body VARCHAR)")
        db.execute("INSERT INTO notes VALUES (1, 'first')")
        db.execute("CREATE TABLE secrets (v VARCHAR)")
        db.execute("INSERT INTO secrets VALUES ('s3cret')")
    return data


DB_ESCAPES: list[tuple[str, dict[str, Any], str]] = [
    ("db_query", {"sql": "DELETE FROM notes"}, "only SELECT"),
    ("db_query", {"sql": "UPDATE notes SET body = 'x'"}, "only SELECT"),
    ("db_query", {"sql": "SELECT 1; DROP TABLE notes"}, "exactly one statement"),
    ("db_query", {"sql": "DROP TABLE notes"}, "only SELECT"),
    ("db_query", {"sql": "CREATE TABLE t AS SELECT 1"}, "only SELECT"),
    ("db_query", {"sql": "COPY notes TO '/tmp/aigw-notes.csv'"}, "only SELECT"),
    ("db_query", {"sql": "ATTACH '/tmp/aigw-other.duckdb' AS o"}, "only SELECT"),
    ("db_query", {"sql": "SELECT * FROM read_csv('/etc/passwd')"}, "table functions"),
    ("db_query", {"sql": "SELECT * FROM '/etc/passwd'"}, "not readable here"),
    ("db_query", {"sql": "SELECT read_text('/etc/passwd')"}, "not allowed"),
    ("db_query", {"sql": "PRAGMA database_list"}, "only SELECT"),
    ("db_query", {"sql": "SELECT * FROM nowhere"}, "not readable here"),
    ("db_insert", {"table": "secrets", "row": {"v": "x"}}, "not writable"),
    ("db_insert", {"table": "notes", "row": {"body) VALUES ('x'); DROP TABLE notes; --": "x"}}, "has no column"),
    ("db_update", {"table": "notes", "values": {"body": "all"}, "where": {}}, "updating every row is not allowed"),
    ("db_update", {"table": "secrets", "values": {"v": "x"}, "where": {"v": "s3cret"}}, "not writable"),
    ("db_update", {"table": "notes; DROP TABLE notes", "values": {"body": "x"}, "where": {"id": 1}}, "not writable"),
]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_db_tools_refuse_writes_and_injection(
    start_gateway: Any, upstream: FakeUpstream, workspace_db: Path, mode: str
) -> None:
    url = start(
        start_gateway,
        upstream,
        workspace_db,
        mcp={"db_write_enabled": True, "db_allowed_tables": ["notes"], "db_max_rows": 2},
    )
    injection = "x'); DROP TABLE notes; --"
    calls: list[tuple[str, dict[str, Any]]] = [(name, args) for name, args, _ in DB_ESCAPES] + [
        ("db_insert", {"table": "notes", "row": {"id": 2, "body": injection}}),
        ("db_insert", {"table": "notes", "row": {"id": 3, "body": "third"}}),
        ("db_update", {"table": "notes", "values": {"body": "changed"}, "where": {"body": "' OR 1=1 --"}}),
        ("db_update", {"table": "notes", "values": {"body": "changed"}, "where": {"id": 3}}),
        ("db_query", {"sql": "SELECT id, body FROM notes WHERE body = ? ORDER BY id", "params": [injection]}),
        ("db_query", {"sql": "WITH n AS (SELECT * FROM notes) SELECT id, body FROM n ORDER BY id"}),
    ]
    results = run(lambda: call_all(url, calls, mode))
    for (name, args, expected), result in zip(DB_ESCAPES, results, strict=False):
        assert result.is_error, (name, args, result)
        assert expected in text(result), (name, args, text(result))
        assert "s3cret" not in text(result) and "root:" not in text(result)
    inserted, third, no_match, updated, literal, everything = results[len(DB_ESCAPES) :]
    assert inserted.structured_content == {"table": "notes", "rows_affected": 1}
    assert third.structured_content["rows_affected"] == 1
    assert no_match.structured_content["rows_affected"] == 0
    assert updated.structured_content["rows_affected"] == 1
    assert literal.structured_content == {"columns": ["id", "body"], "rows": [[2, injection]], "truncated": False}
    assert everything.structured_content["rows"] == [[1, "first"], [2, injection]]
    assert everything.structured_content["truncated"] is True
    assert not Path("/tmp/aigw-notes.csv").exists() and not Path("/tmp/aigw-other.duckdb").exists()


def test_db_writes_are_off_by_default(start_gateway: Any, upstream: FakeUpstream, workspace_db: Path) -> None:
    url = start(start_gateway, upstream, workspace_db)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("db_insert", {"table": "notes", "row": {"id": 9, "body": "x"}}),
        ("db_update", {"table": "notes", "values": {"body": "x"}, "where": {"id": 1}}),
        ("db_query", {"sql": "SELECT count(*) AS n FROM notes"}),
    ]
    insert, update, count = run(lambda: call_all(url, calls))
    for result in (insert, update):
        assert result.is_error and "writes are disabled" in text(result)
    assert count.structured_content["rows"] == [[1]]
