"""The DuckDB file the db_* tools act on: `data_dir/workspace.duckdb`.

A file of its own (the usage log's file is held by the usage writer), opened
lazily with file access disabled, so no query can reach the file system. Reads
go through `sqlguard`; writes exist only when `mcp.db_write_enabled`, only into
`mcp.db_allowed_tables`, with identifiers checked against the table's real
columns and every value passed as a parameter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from ..config import McpConfig
from .safety import Refused
from .sqlguard import check_select, run_select


class WorkspaceDB:
    def __init__(self, path: Path, settings: Callable[[], McpConfig]) -> None:
        self.path = path
        # Called per query: the live settings, so a config reload applies at once.
        self._settings = settings
        self._db: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = duckdb.connect(
                str(self.path), config={"enable_external_access": False, "lock_configuration": True}
            )
        return self._db

    def tables(self) -> list[str]:
        with self._lock:
            rows = (
                self._connection()
                .execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1")
                .fetchall()
            )
        return [str(row[0]) for row in rows]

    def query(self, sql: str, params: list[Any]) -> tuple[list[str], list[list[Any]], bool]:
        with self._lock:
            db = self._connection()
            check_select(db, sql, self._tables_unlocked(db))
            return run_select(db, sql, params, self._settings().db_max_rows)

    def insert(self, table: str, row: dict[str, Any]) -> int:
        if not row:
            raise Refused("row must name at least one column")
        with self._lock:
            db = self._connection()
            name, columns = self._writable(db, table)
            cols = [self._column(columns, key, table) for key in row]
            sql = f"INSERT INTO {_quote(name)} ({', '.join(map(_quote, cols))}) VALUES ({', '.join('?' for _ in cols)})"
            return self._write(db, sql, list(row.values()))

    def update(self, table: str, values: dict[str, Any], where: dict[str, Any]) -> int:
        if not values:
            raise Refused("values must name at least one column to change")
        if not where:
            raise Refused("where must name at least one column: updating every row is not allowed")
        with self._lock:
            db = self._connection()
            name, columns = self._writable(db, table)
            sets = [f"{_quote(self._column(columns, key, table))} = ?" for key in values]
            conds = [f"{_quote(self._column(columns, key, table))} IS NOT DISTINCT FROM ?" for key in where]
            sql = f"UPDATE {_quote(name)} SET {', '.join(sets)} WHERE {' AND '.join(conds)}"
            return self._write(db, sql, [*values.values(), *where.values()])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- helpers --------------------------------------------------------------

    @staticmethod
    def _tables_unlocked(db: duckdb.DuckDBPyConnection) -> list[str]:
        rows = db.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()
        return [str(row[0]) for row in rows]

    def _writable(self, db: duckdb.DuckDBPyConnection, table: str) -> tuple[str, list[str]]:
        settings = self._settings()
        if not settings.db_write_enabled:
            raise Refused("database writes are disabled (set mcp.db_write_enabled: true to allow them)")
        if table not in settings.db_allowed_tables:
            allowed = ", ".join(settings.db_allowed_tables) or "none"
            raise Refused(f"table {table!r} is not writable; writable tables: {allowed} (mcp.db_allowed_tables)")
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' AND table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
        if not rows:
            raise Refused(f"table {table!r} does not exist in {self.path.name}")
        return table, [str(r[0]) for r in rows]

    @staticmethod
    def _column(columns: list[str], key: str, table: str) -> str:
        if key not in columns:
            raise Refused(f"table {table!r} has no column {key!r}; columns: {', '.join(columns)}")
        return key

    @staticmethod
    def _write(db: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> int:
        cursor = db.cursor()
        try:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            return int(row[0]) if row else 0
        except duckdb.Error as error:
            raise Refused(f"the write failed: {str(error).strip().splitlines()[0]}") from None
        finally:
            cursor.close()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
