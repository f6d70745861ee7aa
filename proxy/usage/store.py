"""The DuckDB file: one connection that writes usage rows and answers read-only SQL.

Exactly one process holds a DuckDB file for writing, so this object is only
ever built by the process that writes (the single gateway, or the elected
ingester when several workers share Redis). File access from SQL is switched
off on the connection (`enable_external_access = false`, locked), so a query
can reach nothing but this database.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ..types import JSON, UsageEvent
from .schema import migrate

log = logging.getLogger("proxy.usage")

FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(UsageEvent))
COLUMNS: tuple[str, ...] = tuple("ts" if name == "started_at" else name for name in FIELDS)

# Rows arrive as one list per column and are unnested into a staging table: one
# statement per batch (executemany costs milliseconds per row in DuckDB). The
# anti-join makes a batch idempotent, so an event delivered twice (an ingester
# that died between insert and acknowledge) is still one row.
_STAGE = "CREATE OR REPLACE TEMP TABLE _incoming AS SELECT * FROM usage LIMIT 0"
_FILL = f"INSERT INTO _incoming ({', '.join(COLUMNS)}) SELECT {', '.join(f'unnest(${i + 1})' for i in range(len(COLUMNS)))}"
_MERGE = """
    INSERT INTO usage BY NAME
    SELECT * FROM _incoming i
    WHERE NOT EXISTS (
        SELECT 1 FROM usage u
        WHERE u.ts >= (SELECT min(ts) FROM _incoming) AND u.request_id = i.request_id AND u.ts = i.ts
    )
"""


def event_record(event: UsageEvent) -> JSON:
    """An event as plain JSON-able values (for Redis, spill files and the store)."""
    return {name: getattr(event, name) for name in FIELDS}


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

    def _count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM usage").fetchone()
        return int(row[0]) if row else 0

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the writing connection for a reader thread (DuckDB is MVCC)."""
        return self._db.cursor()

    def close(self) -> None:
        with self._lock:
            self._db.close()
