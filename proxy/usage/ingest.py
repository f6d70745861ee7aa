"""Several workers and replicas, one DuckDB writer: events travel through a Redis Stream.

Every process publishes its usage events to `<prefix>usage:events` (XADD). One
process at a time holds the ingester lock `<prefix>usage:ingester` (SET NX with
a TTL, renewed while it lives); it reads the stream through the consumer group
`ingest`, writes batches to DuckDB, then acknowledges and deletes them. When it
dies the lock expires, another process takes over and first re-claims the
entries the dead one never acknowledged (XAUTOCLAIM); the store's idempotent
insert turns a re-delivered event into one row, never two.

The ingester is also the only process that can read the file, so it answers
the SQL that any worker is asked, over `<prefix>usage:sql` (a request list and
a reply key per query).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis
from redis.exceptions import RedisError, ResponseError

from ..errors import GatewayError
from ..types import JSON
from .results import QueryResult, SqlLimits, error_reply
from .writer import Retention, WriterProcess, WriterUnavailable

log = logging.getLogger("proxy.usage")

GROUP = "ingest"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class StreamKeys:
    def __init__(self, prefix: str) -> None:
        self.events = prefix + "usage:events"
        self.lock = prefix + "usage:ingester"
        self.sql = prefix + "usage:sql"

    def reply(self, query_id: str) -> str:
        return f"{self.sql}:{query_id}"


class StreamPublisher:
    """The spool's sink with Redis: one pipelined XADD per batch."""

    def __init__(self, client: redis.Redis, keys: StreamKeys) -> None:
        self.client = client
        self.keys = keys
        self.last_id: bytes | None = None

    def __call__(self, batch: list[JSON]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for record in batch:
            pipe.xadd(self.keys.events, {"e": orjson.dumps(record)})
        ids = pipe.execute()
        self.last_id = ids[-1]


class Ingester:
    def __init__(
        self,
        client: redis.Redis,
        keys: StreamKeys,
        path: Path,
        *,
        lock_seconds: float,
        batch_size: int,
        limits: SqlLimits,
        retention: Retention,
    ) -> None:
        self.client = client
        self.keys = keys
        self.path = path
        self.lock_ms = int(lock_seconds * 1000)
        self.batch_size = batch_size
        self.limits = limits
        self.retention = retention
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.store: WriterProcess | None = None
        self.healthy = True
        self._renewed = 0.0
        self._stop = threading.Event()
        self._store_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="usage-ingester", daemon=True)
        self._sql_thread = threading.Thread(target=self._serve_sql, name="usage-sql", daemon=True)
        self._thread.start()
        self._sql_thread.start()

    @property
    def leading(self) -> bool:
        return self.store is not None

    # -- leadership ------------------------------------------------------------

    def _try_lead(self) -> bool:
        if not self.client.set(self.keys.lock, self.consumer, nx=True, px=self.lock_ms):
            return False
        try:
            store = WriterProcess(self.path, self.limits, self.retention)
        except WriterUnavailable as error:  # still held by a process that has not let go yet
            log.info("usage: ingester lock taken but %s is busy (%s); retrying", self.path, error)
            self.client.eval(_RELEASE, 1, self.keys.lock, self.consumer)
            return False
        try:
            self.client.xgroup_create(self.keys.events, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                store.close()
                raise
        with self._store_lock:
            self.store = store
        self._renewed = time.monotonic()
        log.info("usage: this process (%s) is the usage ingester", self.consumer)
        self._reclaim()
        return True

    def _renew(self) -> bool:
        if time.monotonic() - self._renewed < self.lock_ms / 3000:
            return True
        if self.client.eval(_RENEW, 1, self.keys.lock, self.consumer, self.lock_ms):
            self._renewed = time.monotonic()
            return True
        log.warning("usage: lost the ingester lock; another process writes the usage log now")
        self._step_down(release=False)
        return False

    def _step_down(self, *, release: bool) -> None:
        with self._store_lock:
            store, self.store = self.store, None
        if store is not None:
            store.close()
        if release:
            try:
                self.client.eval(_RELEASE, 1, self.keys.lock, self.consumer)
            except RedisError:
                pass  # the lock expires by itself

    # -- ingesting -------------------------------------------------------------

    def _reclaim(self) -> None:
        """Take over what a previous ingester read but never acknowledged."""
        start = "0-0"
        while True:
            reply: Any = self.client.xautoclaim(self.keys.events, GROUP, self.consumer, 0, start, count=self.batch_size)
            start, entries = reply[0], reply[1]
            self._write(entries)
            if start in (b"0-0", "0-0") or not entries:
                return

    def _read(self, block_ms: int | None) -> int:
        reply: Any = self.client.xreadgroup(
            GROUP, self.consumer, {self.keys.events: ">"}, count=self.batch_size, block=block_ms
        )
        entries = reply[0][1] if reply else []
        self._write(entries)
        return len(entries)

    def _write(self, entries: list[Any]) -> None:
        entries = [(entry_id, fields) for entry_id, fields in entries if fields]
        if not entries or self.store is None:
            return
        self.store.insert([orjson.loads(fields[b"e"]) for _, fields in entries])
        ids = [entry_id for entry_id, _ in entries]
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(self.keys.events, GROUP, *ids)
        pipe.xdel(self.keys.events, *ids)
        pipe.execute()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.leading and not self._try_lead():
                    self._stop.wait(min(1.0, self.lock_ms / 4000))
                    continue
                if self._renew():
                    if not self.healthy:
                        self._reclaim()  # entries read before the error are still pending here
                    self._read(block_ms=200)
                self.healthy = True
            except (RedisError, OSError, WriterUnavailable) as error:
                if self.healthy:
                    log.warning("usage: ingester error (%s); retrying", error)
                self.healthy = False
                self._stop.wait(0.5)

    # -- SQL for the other workers ----------------------------------------------

    def _serve_sql(self) -> None:
        while not self._stop.is_set():
            if not self.leading:
                self._stop.wait(0.2)
                continue
            try:
                item = self.client.blpop([self.keys.sql], timeout=1)
            except (RedisError, OSError):
                self._stop.wait(0.5)
                continue
            if item is None:
                continue
            request = orjson.loads(item[1])
            reply: JSON
            try:
                reply = {"result": self.query(request["sql"]).as_json()}
            except GatewayError as error:
                reply = error_reply(error)
            pipe = self.client.pipeline(transaction=False)
            pipe.rpush(self.keys.reply(request["id"]), orjson.dumps(reply))
            pipe.expire(self.keys.reply(request["id"]), 60)
            pipe.execute()

    def query(self, sql: str) -> QueryResult:
        with self._store_lock:
            store = self.store
        if store is None:
            raise _not_ingester()
        try:
            return store.query(sql)
        except WriterUnavailable:
            raise _not_ingester() from None

    # -- shutdown ----------------------------------------------------------------

    def close(self, last_published: bytes | None, wait_seconds: float = 15.0) -> None:
        """Stop; first make sure this process's last event is in DuckDB (ingest it if no one else will)."""
        self._stop.set()
        self._thread.join()
        self._sql_thread.join()
        deadline = time.monotonic() + wait_seconds
        try:
            while time.monotonic() < deadline:
                if self.leading or self._try_lead():
                    while self._read(block_ms=None):
                        pass
                    break
                if last_published is None or not self.client.xrange(self.keys.events, last_published, last_published):
                    break  # the live ingester has it
                time.sleep(0.05)
            else:
                log.warning("usage: events remain in %s; the next ingester will write them", self.keys.events)
        except (RedisError, OSError, WriterUnavailable) as error:
            log.warning("usage: could not finish ingesting on shutdown (%s); events stay in Redis", error)
        self._step_down(release=True)


def _not_ingester() -> GatewayError:
    """Leadership moved (or the writer died) under a query: the caller asks the new ingester."""
    return GatewayError("this process no longer writes the usage log", code="not_ingester", status_code=503)
