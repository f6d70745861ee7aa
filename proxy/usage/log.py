"""`UsageLog`: what the gateway holds to record usage and ask SQL of it.

Without Redis this process owns the DuckDB file: events go through the spool
straight into the store, and SQL runs on the store's connection. With Redis,
events go through the spool into a Redis Stream, one elected ingester (maybe
this process, maybe another worker or replica) writes DuckDB, and SQL asked
here is sent to that ingester. Either way `publish()` never blocks.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config import Config
from ..errors import GatewayError, ServiceUnavailable
from ..types import UsageEvent
from .ingest import Ingester, StreamKeys, StreamPublisher
from .records import event_record
from .results import QueryResult, SqlLimits, precheck_sql, query_answer
from .spool import Spool
from .writer import Retention, WriterProcess, WriterUnavailable


class UsageLog:
    def __init__(self, config: Config) -> None:
        usage = config.usage
        data_dir = Path(config.server.data_dir)
        self.path = data_dir / "usage.duckdb"
        self.limits = SqlLimits(usage.sql_max_rows, usage.sql_timeout_seconds, usage.sql_max_chars)
        self.keys = StreamKeys(config.redis_prefix)
        retention = Retention(
            usage.retention_days, data_dir / "usage-archive" if usage.archive else None, usage.retention_check_seconds
        )
        self.store: WriterProcess | None = None
        self.ingester: Ingester | None = None
        self.publisher: StreamPublisher | None = None
        self._redis: redis.Redis | None = None
        options = {
            "batch_size": usage.batch_size,
            "flush_interval": usage.flush_interval_seconds,
            "max_pending": usage.max_pending,
            "convert": event_record,
        }
        if config.redis_url:
            self._redis = redis.Redis.from_url(config.redis_url, socket_connect_timeout=2, health_check_interval=10)
            self.publisher = StreamPublisher(self._redis, self.keys)
            self.spool = Spool(self.publisher, data_dir / "usage-spill", name="stream", **options)  # type: ignore[arg-type]
            self.ingester = Ingester(
                self._redis,
                self.keys,
                self.path,
                lock_seconds=usage.ingester_lock_seconds,
                batch_size=usage.batch_size,
                limits=self.limits,
                retention=retention,
            )
        else:
            self.store = WriterProcess(self.path, self.limits, retention)
            self.spool = Spool(self.store.insert, data_dir / "usage-spill", name="direct", **options)  # type: ignore[arg-type]

    @property
    def mode(self) -> str:
        return "redis-stream" if self.ingester is not None else "direct"

    def publish(self, event: UsageEvent) -> None:
        self.spool.put(event)

    @property
    def healthy(self) -> bool:
        return self.spool.healthy and (self.ingester is None or self.ingester.healthy)

    def status(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "ingester": self.ingester is None or self.ingester.leading,
            "backlog": self.spool.backlog,
            "spilled": self.spool.spilled,
            "writer_pid": self._writer_pid(),
        }

    def _writer_pid(self) -> int | None:
        store = self.store if self.ingester is None else self.ingester.store
        return store.pid if store is not None else None

    async def query(self, sql: str, client: aioredis.Redis | None) -> QueryResult:
        """Run read-only SQL here if this process holds the file, else on the ingester."""
        precheck_sql(sql, self.limits)
        if self.store is not None:
            try:
                return await asyncio.to_thread(self.store.query, sql)
            except WriterUnavailable as error:
                raise ServiceUnavailable(str(error), code="usage_unavailable") from None
        assert self.ingester is not None
        if self.ingester.leading:
            try:
                return await asyncio.to_thread(self.ingester.query, sql)
            except GatewayError as error:
                if error.code != "not_ingester":
                    raise
        if client is None:
            raise ServiceUnavailable("the usage log is not reachable from this process", code="usage_unavailable")
        return await self._ask_ingester(sql, client)

    async def _ask_ingester(self, sql: str, client: aioredis.Redis) -> QueryResult:
        query_id = uuid.uuid4().hex
        wait = self.limits.timeout_seconds + 5
        try:
            await client.rpush(self.keys.sql, orjson.dumps({"id": query_id, "sql": sql}))
            reply = await client.blpop([self.keys.reply(query_id)], timeout=wait)
        except (RedisError, OSError) as error:
            raise ServiceUnavailable(
                f"cannot reach Redis to run the query: {error}", code="usage_unavailable"
            ) from None
        if reply is None:
            raise ServiceUnavailable(f"no usage ingester answered within {wait:g}s", code="usage_unavailable")
        return query_answer(orjson.loads(reply[1]))

    def close(self) -> None:
        """Flush everything (SIGTERM path): the spool to its sink, then the stream to DuckDB."""
        self.spool.close()
        if self.ingester is not None:
            self.ingester.close(self.publisher.last_id if self.publisher else None)
        if self.store is not None:
            self.store.close()
        if self._redis is not None:
            self._redis.close()
