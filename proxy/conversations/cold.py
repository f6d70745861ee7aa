"""The cold tier: every conversation in `data_dir/conversations.duckdb`.

DuckDB lets one process write a file, so there are two ways in:

- `LocalCold` (no Redis, one worker): a writer thread fed by a queue writes
  batches off the event loop; reads run in worker threads on cursors.
- `SharedCold` (Redis, any number of workers and replicas on one data_dir):
  the process that holds the DuckDB file's lock (the OS releases it when that
  process dies; another then takes over) writes its own changes directly and
  applies the others', which they send to the Redis Stream
  `<prefix>conv:cold:ops`; it also answers the reads sent to
  `<prefix>conv:cold:reads`, after applying everything sent before them.
  Writes are idempotent and order-tolerant (see `colddb`), so a batch
  re-applied after a crash changes nothing. A non-owner's writes wait in
  Redis for at most a tick (~50 ms) before they are in DuckDB.

Either way `flush()` waits until this process's queued writes have left it,
and `load()` sees every write flushed before it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import orjson
import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..errors import ServiceUnavailable
from .colddb import ColdDB, ColdStoreBusy, ColdStoreError, Op, conversation_op, message_op, summary_op, todos_op
from .model import Conversation, Message, Summary, Todo, decode, encode

log = logging.getLogger("proxy.conversations")

_STOP = object()
Barrier = concurrent.futures.Future[None]


class ColdTier(Protocol):
    healthy: bool

    def save_conversation(self, conversation: Conversation) -> None: ...

    def save_message(self, conversation_id: str, message: Message) -> None: ...

    def save_summary(self, conversation_id: str, summary: Summary) -> None: ...

    def save_todos(self, conversation_id: str, version: int, todos: list[Todo]) -> None: ...

    async def flush(self) -> None: ...

    async def load(self, conversation_id: str) -> Conversation | None: ...

    def close(self) -> None: ...


class _Queued:
    """The enqueue side both modes share: `save_*()` never blocks the event loop."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.healthy = True
        # Queued-but-not-yet-stored operations per conversation: a read waits
        # for the writer only when its conversation has some.
        self._pending: dict[str, int] = {}
        self._pending_lock = threading.Lock()

    def _put(self, op: Op) -> None:
        with self._pending_lock:
            self._pending[op[1][0]] = self._pending.get(op[1][0], 0) + 1
        self._queue.put(op)

    def _stored(self, ops: list[Op]) -> None:
        with self._pending_lock:
            for _, row in ops:
                left = self._pending.get(row[0], 0) - 1
                if left > 0:
                    self._pending[row[0]] = left
                else:
                    self._pending.pop(row[0], None)

    def save_conversation(self, conversation: Conversation) -> None:
        self._put(conversation_op(conversation))

    def save_message(self, conversation_id: str, message: Message) -> None:
        self._put(message_op(conversation_id, message))

    def save_summary(self, conversation_id: str, summary: Summary) -> None:
        self._put(summary_op(conversation_id, summary))

    def save_todos(self, conversation_id: str, version: int, todos: list[Todo]) -> None:
        self._put(todos_op(conversation_id, version, todos, time.time()))

    async def flush(self) -> None:
        barrier: Barrier = concurrent.futures.Future()
        self._queue.put(barrier)
        await asyncio.wrap_future(barrier)

    async def settle(self, conversation_id: str) -> None:
        """Wait for the writer only if this conversation has writes still queued here."""
        with self._pending_lock:
            waiting = conversation_id in self._pending
        if waiting:
            await self.flush()

    def _take(self, limit: int, wait: float) -> tuple[list[Op], list[Barrier], bool]:
        """Up to `limit` queued ops (waiting up to `wait` for the first), the barriers among them, and stop."""
        ops: list[Op] = []
        barriers: list[Barrier] = []
        stop = False
        try:
            item = self._queue.get(timeout=wait)
        except queue.Empty:
            return ops, barriers, stop
        while True:
            if item is _STOP:
                stop = True
            elif isinstance(item, concurrent.futures.Future):
                barriers.append(item)
            else:
                ops.append(item)
            if len(ops) >= limit:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return ops, barriers, stop


class LocalCold(_Queued):
    def __init__(self, path: Path, *, batch_size: int = 500, flush_interval: float = 0.2) -> None:
        super().__init__()
        self.path = path
        self._db: ColdDB | None = None  # opened on first use: most gateways never store a conversation
        self._open_lock = threading.Lock()
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._thread = threading.Thread(target=self._run, name="conversations-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            ops, barriers, stop = self._take(self.batch_size, self.flush_interval)
            try:
                if ops:
                    self.db.write(ops)
                self.healthy = True
            except ColdStoreError:
                self.healthy = False
                log.exception("conversation batch of %d writes could not be stored", len(ops))
            self._stored(ops)
            for barrier in barriers:
                barrier.set_result(None)
            if stop and self._queue.empty():
                return

    async def load(self, conversation_id: str) -> Conversation | None:
        await self.settle(conversation_id)
        return await asyncio.to_thread(self.db.load, conversation_id)

    @property
    def db(self) -> ColdDB:
        with self._open_lock:
            if self._db is None:
                self._db = ColdDB(self.path)
            return self._db

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        if self._db is not None:
            self._db.close()


class SharedCold(_Queued):
    def __init__(
        self,
        path: Path,
        redis_url: str,
        client: aioredis.Redis,
        prefix: str,
        *,
        batch_size: int = 500,
        tick: float = 0.05,
        read_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        self.path = path
        self.client = client
        self.sync = redis.Redis.from_url(redis_url, socket_connect_timeout=2, health_check_interval=10)
        self.ops_key = f"{prefix}conv:cold:ops"
        self.reads_key = f"{prefix}conv:cold:reads"
        self.reply_prefix = f"{prefix}conv:cold:reply:"
        self.batch_size = batch_size
        self.tick = tick
        self.read_timeout = read_timeout
        self.db: ColdDB | None = None
        self._db_lock = threading.Lock()  # the writer and the reads thread share the file
        self._closing = threading.Event()
        self._tried_at = 0.0
        self._thread = threading.Thread(target=self._run, name="conversations-cold", daemon=True)
        self._reads = threading.Thread(target=self._serve_reads, name="conversations-reads", daemon=True)
        self._thread.start()
        self._reads.start()

    @property
    def owning(self) -> bool:
        return self.db is not None

    def _run(self) -> None:
        """One thread: our writes (to the file if we own it, else to the stream), then the owner's duties."""
        while True:
            ops, barriers, stop = self._take(self.batch_size, self.tick)
            if self.db is None and time.monotonic() - self._tried_at > 1.0:
                self._try_own()
            self._store(ops)
            for barrier in barriers:
                barrier.set_result(None)
            if self.db is not None:
                try:
                    with self._db_lock:
                        self._apply()
                    self.healthy = True
                except (RedisError, OSError, ColdStoreError):
                    if self.healthy:
                        log.warning("conversation store owner hit an error; retrying", exc_info=True)
                    self.healthy = False
            if stop and self._queue.empty():
                break
        self._closing.set()
        self._reads.join()
        if self.db is not None:
            try:
                while self._apply():
                    pass
            except (RedisError, OSError, ColdStoreError):
                log.warning("conversation writes left in Redis for the next owner", exc_info=True)
            self.db.close()
            self.db = None

    def _try_own(self) -> None:
        self._tried_at = time.monotonic()
        try:
            self.db = ColdDB(self.path)
        except ColdStoreBusy:
            return  # another process holds the file; it applies what we send
        except ColdStoreError as error:  # e.g. a migration racing another owner: try again in a second
            log.info("cannot open %s yet (%s); retrying", self.path, error)
            return
        log.info("this process owns %s", self.path)

    def _store(self, ops: list[Op]) -> None:
        """Our writes: straight into the file we own, else into the stream (held and retried if Redis is away)."""
        while ops:
            try:
                if self.db is not None:
                    with self._db_lock:
                        self.db.write(ops)
                else:
                    pipe = self.sync.pipeline(transaction=False)
                    for op in ops:
                        pipe.xadd(self.ops_key, {"op": orjson.dumps(op)})
                    pipe.execute()
                self.healthy = True
                self._stored(ops)
                return
            except (RedisError, OSError, ColdStoreError):
                if self.healthy:
                    log.warning("%d conversation writes could not be stored yet; retrying", len(ops), exc_info=True)
                self.healthy = False
                time.sleep(0.5)

    def _apply(self) -> int:
        """Write a batch of the other processes' operations; writes are idempotent, so a crash here is harmless."""
        assert self.db is not None
        entries: Any = self.sync.xrange(self.ops_key, count=self.batch_size)
        if not entries:
            return 0
        ops: list[Op] = [(kind, row) for kind, row in (orjson.loads(fields[b"op"]) for _, fields in entries)]
        self.db.write(ops)
        self.sync.xdel(self.ops_key, *[entry_id for entry_id, _ in entries])
        return len(entries)

    def _load_current(self, conversation_id: str) -> Conversation | None:
        """Read after applying everything the other processes sent before now."""
        with self._db_lock:
            assert self.db is not None
            while self._apply():
                pass
            return self.db.load(conversation_id)

    def _serve_reads(self) -> None:
        """The owner answers the other processes' reads as they arrive (BLPOP, no polling)."""
        while not self._closing.is_set():
            if self.db is None:
                self._closing.wait(0.2)
                continue
            try:
                request = self.sync.blpop([self.reads_key], timeout=0.5)
                if request is None:
                    continue
                body = orjson.loads(request[1])
                found = self._load_current(str(body["id"]))
                pipe = self.sync.pipeline(transaction=True)
                pipe.rpush(str(body["reply"]), b"null" if found is None else encode(found))
                pipe.expire(str(body["reply"]), 60)
                pipe.execute()
            except (RedisError, OSError, ColdStoreError):
                log.warning("conversation store could not answer a read; retrying", exc_info=True)
                self._closing.wait(0.5)

    # -- reads from any process --------------------------------------------------

    async def load(self, conversation_id: str) -> Conversation | None:
        await self.settle(conversation_id)  # our own writes are stored or in the stream before the read
        if self.db is not None:
            return await asyncio.to_thread(self._load_current, conversation_id)
        reply_key = self.reply_prefix + uuid.uuid4().hex
        await self.client.rpush(self.reads_key, orjson.dumps({"id": conversation_id, "reply": reply_key}))
        reply = await self.client.blpop([reply_key], timeout=self.read_timeout)
        if reply is None:
            raise ServiceUnavailable(
                "the conversation store did not answer (no gateway process holds conversations.duckdb)",
                code="conversation_store_unavailable",
            )
        raw = reply[1]
        return None if raw in (b"null", "null") else decode(raw)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        self.sync.close()
