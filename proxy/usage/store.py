"""The DuckDB file: one connection that writes usage rows and answers read-only SQL.

Exactly one process holds a DuckDB file for writing, so this object is only
ever built by the process that writes (the single gateway, or the elected
ingester when several workers share Redis). File access from SQL is switched
off on the connection (`enable_external_access = false`, locked), so a query
can reach nothing but this database.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from ..types import JSON
from .records import COLUMNS, FIELDS
from .schema import migrate

log = logging.getLogger("proxy.usage")


# Rows arrive as one list per column and are unnested into a staging table: one
# statement per batch (executemany costs milliseconds per row in DuckDB). The
# anti-join makes a batch idempotent, so an event delivered twice (an ingester
# that died between insert and acknowledge) is still one row.
_STAGE = "CREATE OR REPLACE TEMP TABLE _incoming AS SELECT * FROM usage LIMIT 0"
_FILL = (
    f"INSERT INTO _incoming ({', '.join(COLUMNS)}) SELECT {', '.join(f'unnest(${i + 1})' for i in range(len(COLUMNS)))}"
)
_MERGE = """
    INSERT INTO usage BY NAME
    SELECT * FROM _incoming i
    WHERE NOT EXISTS (
        SELECT 1 FROM usage u
        WHERE u.ts >= (SELECT min(ts) FROM _incoming) AND u.request_id = i.request_id AND u.ts = i.ts
    )
"""


def _columns(records: list[JSON]) -> list[list[Any]]:
    columns: list[list[Any]] = []
    for name in FIELDS:
        if name == "started_at":
            columns.append([datetime.fromtimestamp(float(r["started_at"]), UTC) for r in records])
        elif name == "route_reasons":
            columns.append([list(r.get(name) or []) for r in records])
        else:
            columns.append([r.get(name) for r in records])
    return columns


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class UsageStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(str(path))
        self._db.execute("SET enable_external_access = false")
        self._lock = threading.Lock()
        migrate(self._db)
        self._db.execute("SET lock_configuration = true")
        self.written = 0

    def insert(self, records: list[JSON]) -> int:
        """Write a batch in one transaction; returns the rows that were new."""
        if not records:
            return 0
        with self._lock:
            before = self._count()
            self._db.execute("BEGIN")
            try:
                self._db.execute(_STAGE)
                self._db.execute(_FILL, _columns(records))
                self._db.execute(_MERGE)
                self._db.execute("COMMIT")
            except duckdb.Error:
                self._db.execute("ROLLBACK")
                raise
            added = self._count() - before
        self.written += added
        return added

    def prune(self, days: int, archive_dir: Path | None) -> JSON:
        """Move whole UTC days older than `days` out of the log: to Parquet when `archive_dir` is set.

        A day is archived before it is deleted. When its file already exists (a
        run that archived but did not delete, or late rows) the file is merged,
        keyed on (request_id, ts) like inserts, so no run loses or doubles a row.
        """
        cutoff = datetime.combine(datetime.now(UTC).date() - timedelta(days=days), datetime.min.time(), UTC)
        cursor = self._db.cursor()
        days_found = [
            row[0]
            for row in cursor.execute(
                "SELECT DISTINCT CAST(timezone('UTC', ts) AS DATE) AS day FROM usage WHERE ts < ? ORDER BY day",
                [cutoff],
            ).fetchall()
        ]
        files: list[str] = []
        deleted = archived = 0
        for day in days_found:
            start = datetime.combine(day, datetime.min.time(), UTC)
            window = [start, start + timedelta(days=1)]
            if archive_dir is not None:
                path, count = self._archive_day(cursor, day, window, archive_dir)
                files.append(str(path))
                archived += count
            with self._lock:
                row = self._db.execute("DELETE FROM usage WHERE ts >= ? AND ts < ? RETURNING 1", window).fetchall()
                deleted += len(row)
        cursor.close()
        if deleted:
            with self._lock:
                self._db.execute("CHECKPOINT")
        return {"archived": archived, "deleted": deleted, "files": files}

    def _archive_day(
        self, cursor: duckdb.DuckDBPyConnection, day: date, window: list[datetime], archive_dir: Path
    ) -> tuple[Path, int]:
        # This connection may not touch files, so the rows go through a private
        # in-memory database that may: it writes the Parquet file and nothing else.
        rows = cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM usage WHERE ts >= ? AND ts < ?", window).fetchall()
        table_sql = cursor.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'usage'").fetchone()
        archive_dir.mkdir(parents=True, exist_ok=True)
        path = archive_dir / f"usage-{day.isoformat()}.parquet"
        partial = path.with_suffix(".parquet.partial")
        with duckdb.connect(":memory:") as scratch:
            scratch.execute("SET TimeZone = 'UTC'")
            scratch.execute(str(table_sql[0]) if table_sql else "")
            if rows:
                columns = [list(column) for column in zip(*rows, strict=True)]
                scratch.execute(
                    f"INSERT INTO usage ({', '.join(COLUMNS)}) "
                    f"SELECT {', '.join(f'unnest(${i + 1})' for i in range(len(COLUMNS)))}",
                    columns,
                )
            if path.exists():
                scratch.execute(f"""
                    INSERT INTO usage BY NAME SELECT * FROM read_parquet({_quote(path)}) a
                    WHERE NOT EXISTS (SELECT 1 FROM usage u WHERE u.request_id = a.request_id AND u.ts = a.ts)
                """)
            count = scratch.execute("SELECT count(*) FROM usage").fetchone()
            scratch.execute(
                f"COPY (SELECT * FROM usage ORDER BY ts) TO {_quote(partial)} (FORMAT parquet, COMPRESSION zstd)"
            )
        os.replace(partial, path)
        return path, int(count[0]) if count else 0

    def _count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM usage").fetchone()
        return int(row[0]) if row else 0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the writing connection for a reader thread (DuckDB is MVCC)."""
        return self._db.cursor()

    def close(self) -> None:
        with self._lock:
            self._db.close()
