"""The cold tier: every conversation in `data_dir/conversations.duckdb`.

Writes go through one thread fed by a queue, in batches, off the event loop
(the usage log's pattern; this file has its own writer because DuckDB allows
one writing connection per file). Reads run in worker threads on cursors of
the same connection. `flush()` waits until everything queued so far is on
disk, so a conversation rebuilt after a hot-tier miss sees its latest turn.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from .model import Conversation, Message, Summary, Todo
from .schema import migrate

log = logging.getLogger("proxy.conversations")

_UPSERT_CONVERSATION = """
INSERT INTO conversations (id, user_id, project_id, created_at, updated_at, message_count, metadata)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, project_id = excluded.project_id,
    updated_at = excluded.updated_at, message_count = excluded.message_count, metadata = excluded.metadata
"""
_INSERT_MESSAGE = (
    "INSERT OR IGNORE INTO messages (conversation_id, seq, role, content, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_SUMMARY = (
    "INSERT OR IGNORE INTO context_summaries (conversation_id, version, summary, through_seq, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_INSERT_TODOS = "INSERT OR IGNORE INTO todo_lists (conversation_id, version, todo_data, created_at) VALUES (?, ?, ?, ?)"


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _seconds(value: datetime) -> float:
    return value.timestamp()


@dataclass(slots=True)
class _Batch:
    conversations: dict[str, list[Any]]
    messages: list[list[Any]]
    summaries: list[list[Any]]
    todos: list[list[Any]]
    barriers: list[concurrent.futures.Future[None]]


_STOP = object()


class ColdStore:
    """Owns `conversations.duckdb`: thread-safe `save_*()` enqueue, async reads."""

    def __init__(self, path: Path, *, batch_size: int = 500, flush_interval: float = 0.2) -> None:
        self.path = path
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(str(path))
        migrate(self._db)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.healthy = True
        self._thread = threading.Thread(target=self._run, name="conversations-writer", daemon=True)
        self._thread.start()

    # -- writes (enqueue only) -------------------------------------------------

    def save_conversation(self, conversation: Conversation) -> None:
        row = [
            conversation.id,
            conversation.user_id,
            conversation.project_id,
            _ts(conversation.created_at),
            _ts(conversation.updated_at),
            conversation.message_count,
            orjson.dumps(conversation.metadata).decode(),
        ]
        self._queue.put(("conversation", row))

    def save_message(self, conversation_id: str, message: Message) -> None:
        row = [
            conversation_id,
            message.seq,
            message.role,
            message.content,
            orjson.dumps(message.metadata).decode(),
            _ts(message.created_at),
        ]
        self._queue.put(("message", row))

    def save_summary(self, conversation_id: str, summary: Summary) -> None:
        row = [conversation_id, summary.version, summary.text, summary.through_seq, _ts(summary.created_at)]
        self._queue.put(("summary", row))

    def save_todos(self, conversation_id: str, version: int, todos: list[Todo]) -> None:
        data = orjson.dumps([t.to_json() for t in todos]).decode()
        self._queue.put(("todos", [conversation_id, version, data, _ts(datetime.now(UTC).timestamp())]))

    async def flush(self) -> None:
        """Return once every write queued before this call is committed."""
        barrier: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put(("barrier", barrier))
        await asyncio.wrap_future(barrier)

    # -- the writer thread -----------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.flush_interval)
            except queue.Empty:
                continue
            batch = _Batch({}, [], [], [], [])
            stop = first is _STOP
            if not stop:
                self._add(batch, first)
            count = 1
            while count < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    continue
                self._add(batch, item)
                count += 1
            self._write(batch)
            if stop and self._queue.empty():
                return

    @staticmethod
    def _add(batch: _Batch, item: tuple[str, Any]) -> None:
        kind, payload = item
        if kind == "conversation":
            batch.conversations[payload[0]] = payload  # the latest state of each wins
        elif kind == "message":
            batch.messages.append(payload)
        elif kind == "summary":
            batch.summaries.append(payload)
        elif kind == "todos":
            batch.todos.append(payload)
        else:
            batch.barriers.append(payload)

    def _write(self, batch: _Batch) -> None:
        try:
            if batch.conversations or batch.messages or batch.summaries or batch.todos:
                self._db.execute("BEGIN")
                if batch.conversations:
                    self._db.executemany(_UPSERT_CONVERSATION, list(batch.conversations.values()))
                if batch.messages:
                    self._db.executemany(_INSERT_MESSAGE, batch.messages)
                if batch.summaries:
                    self._db.executemany(_INSERT_SUMMARY, batch.summaries)
                if batch.todos:
                    self._db.executemany(_INSERT_TODOS, batch.todos)
                self._db.execute("COMMIT")
            self.healthy = True
        except duckdb.Error:
            self.healthy = False
            log.exception("conversation batch could not be written")
            try:
                self._db.execute("ROLLBACK")
            except duckdb.Error:
                pass
        finally:
            for barrier in batch.barriers:
                barrier.set_result(None)

    # -- reads (worker threads, cursors) ---------------------------------------

    def _query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cursor = self._db.cursor()
        try:
            return cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()

    def _load(self, conversation_id: str) -> Conversation | None:
        rows = self._query(
            "SELECT user_id, project_id, created_at, updated_at, message_count, metadata FROM conversations WHERE id = ?",
            [conversation_id],
        )
        if not rows:
            return None
        user_id, project_id, created_at, updated_at, message_count, metadata = rows[0]
        conversation = Conversation(
            conversation_id,
            user_id=user_id,
            project_id=project_id,
            created_at=_seconds(created_at),
            updated_at=_seconds(updated_at),
            message_count=int(message_count),
            metadata=orjson.loads(metadata) if metadata else {},
        )
        summaries = self._query(
            "SELECT summary, version, through_seq, created_at FROM context_summaries "
            "WHERE conversation_id = ? ORDER BY version DESC LIMIT 1",
            [conversation_id],
        )
        through = 0
        if summaries:
            text, version, through, created = summaries[0]
            conversation.summary = Summary(text, int(version), int(through), _seconds(created))
        messages = self._query(
            "SELECT seq, role, content, metadata, created_at FROM messages "
            "WHERE conversation_id = ? AND seq > ? ORDER BY seq",
            [conversation_id, through],
        )
        conversation.recent = [
            Message(int(seq), role, content, _seconds(created), orjson.loads(meta) if meta else {})
            for seq, role, content, meta, created in messages
        ]
        todos = self._query(
            "SELECT version, todo_data FROM todo_lists WHERE conversation_id = ? ORDER BY version DESC LIMIT 1",
            [conversation_id],
        )
        if todos:
            conversation.todos_version = int(todos[0][0])
            conversation.todos = [Todo.from_json(item) for item in orjson.loads(todos[0][1])]
        return conversation

    async def load(self, conversation_id: str) -> Conversation | None:
        """The conversation as last committed, or None if it never existed."""
        await self.flush()
        return await asyncio.to_thread(self._load, conversation_id)

    async def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._query, sql, params or [])

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        self._db.close()
