"""`conversations.duckdb`: the tables, one batched write, one conversation read.

Synchronous and owned by one thread at a time (the cold tier's writer).
Writes are idempotent and order-tolerant: messages, summary versions and TODO
versions are keyed and inserted once, and a conversation row only moves
forward in time, so a batch replayed after a crash changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .model import Conversation, Message, Summary, Todo
from .schema import migrate

if TYPE_CHECKING:
    import duckdb

# An operation as queued (and, across workers, sent through Redis): a kind and
# a JSON-able row whose timestamps are epoch seconds.
Op = tuple[str, list[Any]]

_UPSERT_CONVERSATION = """
INSERT INTO conversations (id, user_id, project_id, created_at, updated_at, message_count, metadata)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, project_id = excluded.project_id,
    updated_at = excluded.updated_at, message_count = excluded.message_count, metadata = excluded.metadata
WHERE excluded.message_count > conversations.message_count
   OR (excluded.message_count = conversations.message_count AND excluded.updated_at >= conversations.updated_at)
"""
_INSERTS = {
    "message": "INSERT OR IGNORE INTO messages (conversation_id, seq, role, content, metadata, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "summary": "INSERT OR IGNORE INTO context_summaries (conversation_id, version, summary, through_seq, created_at) "
    "VALUES (?, ?, ?, ?, ?)",
    "todos": "INSERT OR IGNORE INTO todo_lists (conversation_id, version, todo_data, created_at) VALUES (?, ?, ?, ?)",
}
# Position of the timestamp columns in each kind's row.
_TIMES = {"conversation": (3, 4), "message": (5,), "summary": (4,), "todos": (3,)}


def conversation_op(conversation: Conversation) -> Op:
    return (
        "conversation",
        [
            conversation.id,
            conversation.user_id,
            conversation.project_id,
            conversation.created_at,
            conversation.updated_at,
            conversation.message_count,
            orjson.dumps(conversation.metadata).decode(),
        ],
    )


def message_op(conversation_id: str, message: Message) -> Op:
    return (
        "message",
        [
            conversation_id,
            message.seq,
            message.role,
            message.content,
            orjson.dumps(message.metadata).decode(),
            message.created_at,
        ],
    )


def summary_op(conversation_id: str, summary: Summary) -> Op:
    return ("summary", [conversation_id, summary.version, summary.text, summary.through_seq, summary.created_at])


def todos_op(conversation_id: str, version: int, todos: list[Todo], at: float) -> Op:
    return ("todos", [conversation_id, version, orjson.dumps([t.to_json() for t in todos]).decode(), at])


def _row(op: Op) -> list[Any]:
    kind, row = op
    row = list(row)
    for index in _TIMES[kind]:
        row[index] = datetime.fromtimestamp(float(row[index]), UTC)
    return row


def _seconds(value: datetime) -> float:
    return value.timestamp()


class ColdStoreError(Exception):
    """DuckDB failed; the callers retry or report (they never import DuckDB themselves)."""


class ColdStoreBusy(ColdStoreError):
    """Another process holds the file."""


class ColdDB:
    def __init__(self, path: Path) -> None:
        # Imported here: a worker that never stores a conversation never loads DuckDB (~30 MiB).
        import duckdb

        self._errors: type[Exception] = duckdb.Error
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.db: duckdb.DuckDBPyConnection = duckdb.connect(str(path))
            migrate(self.db)
        except duckdb.IOException as error:
            raise ColdStoreBusy(str(error)) from error
        except duckdb.Error as error:
            raise ColdStoreError(str(error)) from error

    def write(self, ops: list[Op]) -> None:
        """Apply a batch in one transaction, in order."""
        if not ops:
            return
        try:
            self._write(ops)
        except self._errors as error:
            raise ColdStoreError(str(error)) from error

    def _write(self, ops: list[Op]) -> None:
        by_kind: dict[str, list[list[Any]]] = {}
        latest: dict[str, list[Any]] = {}
        for op in ops:
            if op[0] == "conversation":
                latest[op[1][0]] = _row(op)  # within a batch the last state of each wins
            else:
                by_kind.setdefault(op[0], []).append(_row(op))
        self.db.execute("BEGIN")
        try:
            if latest:
                self.db.executemany(_UPSERT_CONVERSATION, list(latest.values()))
            for kind, rows in by_kind.items():
                self.db.executemany(_INSERTS[kind], rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cursor = self.db.cursor()
        try:
            return cursor.execute(sql, params).fetchall()
        except self._errors as error:
            raise ColdStoreError(str(error)) from error
        finally:
            cursor.close()

    def load(self, conversation_id: str) -> Conversation | None:
        rows = self.query(
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
        summaries = self.query(
            "SELECT summary, version, through_seq, created_at FROM context_summaries "
            "WHERE conversation_id = ? ORDER BY version DESC LIMIT 1",
            [conversation_id],
        )
        through = 0
        if summaries:
            text, version, through, created = summaries[0]
            conversation.summary = Summary(text, int(version), int(through), _seconds(created))
        messages = self.query(
            "SELECT seq, role, content, metadata, created_at FROM messages "
            "WHERE conversation_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
            [conversation_id, through, conversation.message_count],
        )
        conversation.recent = [
            Message(int(seq), role, content, _seconds(created), orjson.loads(meta) if meta else {})
            for seq, role, content, meta, created in messages
        ]
        todos = self.query(
            "SELECT version, todo_data FROM todo_lists WHERE conversation_id = ? ORDER BY version DESC LIMIT 1",
            [conversation_id],
        )
        if todos:
            conversation.todos_version = int(todos[0][0])
            conversation.todos = [Todo.from_json(item) for item in orjson.loads(todos[0][1])]
        return conversation

    def close(self) -> None:
        self.db.close()
