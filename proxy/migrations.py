"""Numbered DuckDB schema migrations recorded in `_migrations` (after simonw/llm).

Each DuckDB file (the usage log, the conversations store) keeps its own list;
this is the one runner they share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported by whoever opens a database; gateway workers may never need DuckDB
    import duckdb

Migration = Callable[["duckdb.DuckDBPyConnection"], None]


class Migrations:
    def __init__(self) -> None:
        self.steps: list[tuple[str, Migration]] = []

    def __call__(self, function: Migration) -> Migration:
        """Register a migration; used as a decorator, in order."""
        self.steps.append((function.__name__, function))
        return function

    def apply(self, db: duckdb.DuckDBPyConnection) -> list[str]:
        """Apply the migrations not yet recorded; return the names applied."""
        db.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (name VARCHAR PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())"
        )
        done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
        applied = []
        for name, function in self.steps:
            if name in done:
                continue
            db.execute("BEGIN")
            function(db)
            db.execute("INSERT INTO _migrations (name) VALUES (?)", [name])
            db.execute("COMMIT")
            applied.append(name)
        return applied
