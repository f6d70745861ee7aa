"""DuckDB schema as numbered migrations, recorded in `_migrations` (after simonw/llm)."""

from __future__ import annotations

from collections.abc import Callable

import duckdb

Migration = Callable[[duckdb.DuckDBPyConnection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(function: Migration) -> Migration:
    MIGRATIONS.append((function.__name__, function))
    return function


@migration
def m001_usage(db: duckdb.DuckDBPyConnection) -> None:
    db.execute(
        """
        CREATE TABLE usage (
            ts TIMESTAMPTZ NOT NULL,
            request_id VARCHAR NOT NULL,
            endpoint VARCHAR,
            project VARCHAR,
            token_id VARCHAR,
            client VARCHAR,
            conversation_id VARCHAR,
            task VARCHAR,
            complexity VARCHAR,
            tier VARCHAR,
            requested_model VARCHAR,
            routed_model VARCHAR,
            provider VARCHAR,
            input_tokens BIGINT,
            output_tokens BIGINT,
            cached_tokens BIGINT,
            cost_usd DECIMAL(18, 9),
            cost_estimated BOOLEAN,
            latency_ms DOUBLE,
            ttft_ms DOUBLE,
            status INTEGER,
            error_type VARCHAR,
            cache_hit BOOLEAN,
            stream BOOLEAN,
            escalated_from VARCHAR,
            cross_check VARCHAR,
            route_reasons VARCHAR[]
        )
        """
    )


@migration
def m002_cache_saved(db: duckdb.DuckDBPyConnection) -> None:
    """What a cache hit would have cost without the cache (its own cost is $0)."""
    db.execute("ALTER TABLE usage ADD COLUMN cache_saved_usd DECIMAL(18, 9) DEFAULT 0")


def migrate(db: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied."""
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for name, function in MIGRATIONS:
        if name in done:
            continue
        db.execute("BEGIN")
        function(db)
        db.execute("INSERT INTO _migrations (name) VALUES (?)", [name])
        db.execute("COMMIT")
        applied.append(name)
    return applied
