"""The usage writer process: retention with Parquet archives, restart after a crash, SQL through it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson
import pytest

from proxy.errors import GatewayError
from proxy.types import UsageEvent
from proxy.usage.records import event_record
from proxy.usage.results import SqlLimits, query_answer
from proxy.usage.store import UsageStore
from proxy.usage.writer import _CHILD_MAIN, Retention, WriterProcess
from tests.fakes import FakeUpstream, ServerThread
from tests.test_usage import ADMIN, config, rows, wait_rows

Start = Callable[[dict[str, Any]], ServerThread]


def event(request_id: str, days_ago: float) -> dict[str, Any]:
    started = (datetime.now(UTC) - timedelta(days=days_ago)).timestamp()
    return event_record(
        UsageEvent(
            request_id=request_id,
            started_at=started,
            endpoint="chat",
            cost_usd=0.001,
            routed_model="cheap-mini",
            route_reasons=["seeded"],
        )
    )


def seed(path: Path, records: list[dict[str, Any]]) -> None:
    store = UsageStore(path)
    try:
        store.insert(records)
    finally:
        store.close()


def archived(path: Path) -> list[str]:
    with duckdb.connect() as db:
        return [
            r[0]
            for r in db.execute("SELECT request_id FROM read_parquet(?) ORDER BY request_id", [str(path)]).fetchall()
        ]


def test_gateway_prunes_old_days_into_parquet(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed(data / "usage.duckdb", [event("old-a", 40), event("old-b", 40), event("older", 100), event("recent", 2)])
    server = start_gateway(config(upstream, data, usage={"retention_days": 30}))
    response = httpx.post(
        server.url + "/v1/chat/completions",
        timeout=20,
        json={"model": "cheap-mini", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200
    wait_rows(server, 2)  # "recent" and the request just made; the old days have left
    kept = [r[0] for r in rows(server, "SELECT request_id FROM usage ORDER BY ts")]
    assert kept[0] == "recent" and kept[1] == response.headers["x-request-id"]
    files = sorted((data / "usage-archive").glob("*.parquet"))
    assert len(files) == 2, files
    days = {f.name: archived(f) for f in files}
    old_day = (datetime.now(UTC) - timedelta(days=40)).date().isoformat()
    assert days[f"usage-{old_day}.parquet"] == ["old-a", "old-b"]
    assert sorted(sum(days.values(), [])) == ["old-a", "old-b", "older"]
    assert not list((data / "usage-archive").glob("*.partial"))


def test_archive_merges_a_day_seen_twice_and_drop_mode(tmp_path: Path) -> None:
    path = tmp_path / "usage.duckdb"
    archive = tmp_path / "archive"
    writer = WriterProcess(path, SqlLimits(), Retention(days=30, archive_dir=archive, check_seconds=3600))
    try:
        writer.insert([event("first", 45)])
        assert writer.prune()["deleted"] >= 1
        # A late row for the same day: the day's file gains it, the earlier row stays once.
        writer.insert([event("late", 45)])
        result = writer.prune()
        assert result["deleted"] == 1 and result["archived"] == 2
        (file,) = archive.glob("*.parquet")
        assert archived(file) == ["first", "late"]
        assert writer.query("SELECT count(*) FROM usage").rows == [[0]]
    finally:
        writer.close()
    dropper = WriterProcess(path, SqlLimits(), Retention(days=30, archive_dir=None, check_seconds=3600))
    try:
        dropper.insert([event("gone", 60), event("kept", 1)])
        assert dropper.prune() == {"archived": 0, "deleted": 1, "files": []}
        assert dropper.query("SELECT request_id FROM usage").rows == [["kept"]]
    finally:
        dropper.close()
    assert len(list(archive.glob("*.parquet"))) == 1


def test_writer_refuses_unsafe_sql_and_reports_a_busy_file(tmp_path: Path) -> None:
    path = tmp_path / "usage.duckdb"
    writer = WriterProcess(path, SqlLimits(max_rows=2), Retention())
    try:
        writer.insert([event(f"r{i}", 0) for i in range(3)])
        result = writer.query("SELECT request_id FROM usage ORDER BY request_id")
        assert result.rows == [["r0"], ["r1"]] and result.truncated
        for bad in ("DELETE FROM usage", f"SELECT * FROM read_csv('{path}')", "COPY usage TO 'x.csv'"):
            with pytest.raises(GatewayError) as refused:
                writer.query(bad)
            assert refused.value.status_code == 400 and refused.value.code in ("read_only", "invalid_sql")
        with pytest.raises(Exception, match="cannot open"):
            WriterProcess(path, SqlLimits(), Retention(), start_timeout=30)
    finally:
        writer.close()


def test_a_killed_writer_is_restarted_and_no_row_is_lost(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_gateway(config(upstream, tmp_path / "data"))

    def ask(n: int) -> None:
        for index in range(n):
            response = httpx.post(
                server.url + "/v1/chat/completions",
                timeout=20,
                json={"model": "cheap-mini", "messages": [{"role": "user", "content": f"q{index}"}]},
            )
            assert response.status_code == 200

    ask(5)
    wait_rows(server, 5)
    pid = httpx.get(server.url + "/health").json()["usage"]["writer_pid"]
    assert isinstance(pid, int)
    os.kill(pid, signal.SIGKILL)
    ask(5)
    wait_rows(server, 10)
    deadline = time.monotonic() + 10
    while (new_pid := httpx.get(server.url + "/health").json()["usage"]["writer_pid"]) == pid:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert new_pid != pid and rows(server, "SELECT count(DISTINCT request_id) FROM usage") == [[10]]
    headers = {"authorization": f"Bearer {ADMIN}"}
    assert httpx.get(server.url + "/health", headers=headers).json()["usage"]["backlog"] == 0


def test_both_channels_finding_the_writer_dead_restart_it_once(tmp_path: Path) -> None:
    import threading

    writer = WriterProcess(tmp_path / "usage.duckdb", SqlLimits(), Retention())
    try:
        writer.insert([event("before", 0)])
        first = writer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        results: list[object] = []

        def insert() -> None:
            results.append(writer.insert([event("after", 0)]))

        def query() -> None:
            results.append(writer.query("SELECT count(*) FROM usage").rows[0][0])

        threads = [threading.Thread(target=insert), threading.Thread(target=query)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert 1 in results and len(results) == 2  # the insert added its row; the query answered
        assert writer.pid not in (None, first)
        assert writer.query("SELECT request_id FROM usage ORDER BY request_id").rows == [["after"], ["before"]]
    finally:
        writer.close()


def spawn_writer(path: Path, *options: str) -> tuple[subprocess.Popen[str], Connection, Connection]:
    """The writer child on socketpairs of the test's own, as `WriterProcess` starts it, stderr captured."""
    write_parent, write_child = socket.socketpair()
    read_parent, read_child = socket.socketpair()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD_MAIN,
            "--db",
            str(path),
            "--write-fd",
            str(write_child.fileno()),
            "--read-fd",
            str(read_child.fileno()),
            *options,
        ],
        pass_fds=(write_child.fileno(), read_child.fileno()),
        stderr=subprocess.PIPE,
        text=True,
    )
    write_child.close()
    read_child.close()
    write, read = Connection(write_parent.detach()), Connection(read_parent.detach())
    assert write.poll(60) and orjson.loads(write.recv_bytes())["ready"]
    return child, write, read


def test_a_writer_whose_worker_dies_mid_batch_keeps_the_batch_and_exits_quietly(tmp_path: Path) -> None:
    """The worker is killed between sending a batch and reading the reply (as when its process is SIGKILLed)."""
    path = tmp_path / "usage.duckdb"
    child, write, read = spawn_writer(path)
    write.send_bytes(orjson.dumps({"op": "insert", "records": [event(f"r{i}", 0) for i in range(500)]}))
    write.close()  # gone before the reply: the child's send fails
    read.close()
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0 and "Traceback" not in stderr, stderr
    with duckdb.connect(str(path), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM usage").fetchone() == (500,)


def test_a_writer_closed_while_it_prunes_finishes_the_prune_first(tmp_path: Path) -> None:
    """A short-lived ingester (one taking over only to flush at shutdown) closes during the start-up prune."""
    path = tmp_path / "usage.duckdb"
    seed(path, [event(f"d{day}-{i}", day + 3) for day in range(30) for i in range(40)] + [event("today", 0)])
    archive = tmp_path / "archive"
    child, write, read = spawn_writer(path, "--retention-days", "1", "--archive-dir", str(archive))
    write.send_bytes(orjson.dumps({"op": "close"}))
    assert orjson.loads(write.recv_bytes()) == {"closed": True}
    write.close()
    read.close()
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0 and "Traceback" not in stderr, stderr
    with duckdb.connect(str(path), read_only=True) as db:
        kept = {row[0] for row in db.execute("SELECT request_id FROM usage").fetchall()}
    moved = [name for day_file in sorted(archive.glob("*.parquet")) for name in archived(day_file)]
    assert "today" in kept and len(kept) + len(moved) == 1201 and not kept & set(moved)


def test_a_writer_failure_reaches_the_caller_as_a_503_not_a_crash() -> None:
    """A reply whose error is the writer's own message (not a refused query's OpenAI shape)."""
    with pytest.raises(GatewayError) as failed:
        query_answer({"error": "connection is busy"})
    assert failed.value.status_code == 503 and failed.value.code == "usage_unavailable"
    assert "connection is busy" in failed.value.body()["error"]["message"]
