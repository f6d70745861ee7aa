"""The conversations DuckDB file's schema, as numbered migrations (after simonw/llm).

The tables follow the seed's schema (conversations, messages, versioned
context summaries, TODO lists); rows are appended rather than updated where
history matters (summaries and TODO lists keep every version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

from ..migrations import Migrations

migration = Migrations()


@migration
def m001_conversations(db: duckdb.DuckDBPyConnection) -> None:
    db.execute(
        """
        CREATE TABLE conversations (
            id VARCHAR PRIMARY KEY,
            user_id VARCHAR,
            project_id VARCHAR,
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL,
            message_count BIGINT NOT NULL,
            metadata JSON
        )
        """
    )
    db.execute(
        """
        CREATE TABLE messages (
            conversation_id VARCHAR NOT NULL,
            seq BIGINT NOT NULL,
            role VARCHAR NOT NULL,
            content VARCHAR NOT NULL,
            metadata JSON,
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (conversation_id, seq)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE context_summaries (
            conversation_id VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            summary VARCHAR NOT NULL,
            through_seq BIGINT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (conversation_id, version)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE todo_lists (
            conversation_id VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            todo_data JSON NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (conversation_id, version)
        )
        """
    )


def migrate(db: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied."""
    return migration.apply(db)
