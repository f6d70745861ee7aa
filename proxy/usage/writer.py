"""The single DuckDB writer: events in through a queue, rows out in batches.

Requests only append to a queue (no I/O on the event loop); one thread owns the
DuckDB connection and writes a batch whenever rows are waiting. `close()`
drains the queue before returning, so a clean shutdown loses nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ..types import UsageEvent
from .schema import migrate

log = logging.getLogger("proxy.usage")

COLUMNS: tuple[str, ...] = tuple(
    "ts" if f.name == "started_at" else f.name for f in dataclasses.fields(UsageEvent)
)
# One statement per batch, one list parameter per column: DuckDB's executemany
# runs the statement once per row (about 2-6 ms a row, which capped the whole
# gateway near 400 req/s); UNNEST-ing column lists costs ~20-40 us a row.
_INSERT = f"INSERT INTO usage ({', '.join(COLUMNS)}) SELECT {', '.join('UNNEST(?)' for _ in COLUMNS)}"
_TS = COLUMNS.index("ts")
_STOP = object()


def event_row(event: UsageEvent) -> list[Any]:
    row = [getattr(event, f.name) for f in dataclasses.fields(UsageEvent)]
    row[_TS] = datetime.fromtimestamp(event.started_at, UTC)
    return row


class UsageWriter:
    """Owns the DuckDB file for writing; thread-safe `publish()`."""

    def __init__(
        self, path: Path, *, batch_size: int = 500, flush_interval: float = 0.25, min_interval: float = 0.1
    ) -> None:
        self.path = path
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        # A DuckDB statement costs ~1 ms of CPU whatever its size: under load,
        # wait this long between writes so rows arrive in batches, not one by one.
        self.min_interval = min_interval
        self._last_write = 0.0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = duckdb.connect(str(path))
        migrate(self._db)
        self.written = 0
        self.healthy = True
        self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
        self._thread.start()

    def publish(self, event: UsageEvent) -> None:
        self._queue.put(event)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self.flush_interval)
            except queue.Empty:
                continue
            stop = first is _STOP
            wait = self._last_write + self.min_interval - time.monotonic()
            if wait > 0 and not stop:
                time.sleep(wait)
            batch = [] if stop else [first]
            while len(batch) < self.batch_size:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    continue
                batch.append(item)
            if batch:
                self._write(batch)
                self._last_write = time.monotonic()
            if stop and self._queue.empty():
                return

    def _write(self, batch: list[UsageEvent]) -> None:
        rows = [event_row(event) for event in batch]
        try:
            self._db.execute(_INSERT, [list(column) for column in zip(*rows, strict=True)])
            self.written += len(rows)
            self.healthy = True
        except duckdb.Error:
            self.healthy = False
            log.exception("usage batch of %d rows could not be written", len(rows))

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Read through a cursor of the writer's own connection (DuckDB is MVCC)."""
        cursor = self._db.cursor()
        try:
            return cursor.execute(sql, params or []).fetchall()
        finally:
            cursor.close()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        self._db.close()
