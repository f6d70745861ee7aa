"""The usage log's writer process: the one process that opens the DuckDB file.

Why a process and not a thread: DuckDB's Python binding holds the GIL while it
converts a batch, and a writer thread inside a gateway worker made the event
loop wait for it (the usage benchmark showed +3.6 ms at p99). In its own
process DuckDB, its memory and its CPU are off the worker; the worker only
serialises a batch with orjson and hands it over a socketpair.

The worker side is `WriterProcess`: `insert()` for the spool's drain thread,
`query()` for read-only SQL, `close()` on shutdown. It starts the child lazily
again if it died. The child (`proxy.usage.writer.main`) serves two
channels, one for writes and one for queries, so a slow query never holds up
ingestion, and prunes the log to its retention window (archiving old days to
Parquet first) at start and then every `check_seconds`.

Messages are orjson objects framed by `multiprocessing.connection`:
    -> {"op": "insert", "records": [...]}       <- {"added": n}
    -> {"op": "query", "sql": "..."}             <- {"result": {...}} | {"error": {...}, "status": n}
    -> {"op": "prune"}                           <- {"archived": n, "files": [...]}
    -> {"op": "close"}                           <- {"closed": true}
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from ..errors import GatewayError, ServiceUnavailable
from ..types import JSON
from .results import QueryResult, SqlLimits, error_reply, query_answer

log = logging.getLogger("proxy.usage")


# `-c`, not `-m proxy.usage.writer`: runpy would find the module already
# imported by `proxy.usage` and warn.
_CHILD_MAIN = "import sys; from proxy.usage.writer import main; sys.exit(main())"


class WriterUnavailable(Exception):
    """The writer process could not be started or stopped answering."""


@dataclass(frozen=True, slots=True)
class Retention:
    """How long rows stay in DuckDB; older days go to Parquet files (or are dropped) first."""

    days: int | None = None
    archive_dir: Path | None = None
    check_seconds: float = 3600.0


# -- the worker's side ------------------------------------------------------------


class WriterProcess:
    def __init__(self, path: Path, limits: SqlLimits, retention: Retention, *, start_timeout: float = 60.0) -> None:
        self.path = path
        self.limits = limits
        self.retention = retention
        self.start_timeout = start_timeout
        self.written = 0
        self._closed = False
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._restart_lock = threading.Lock()
        self._generation = 0  # children started so far, less one
        self._process: subprocess.Popen[bytes] | None = None
        self._write: Connection | None = None
        self._read: Connection | None = None
        with self._write_lock:
            self._start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _start(self) -> None:
        """Spawn the child and wait until it holds the file (or says why it cannot)."""
        write_parent, write_child = socket.socketpair()
        read_parent, read_child = socket.socketpair()
        command = [
            sys.executable,
            "-c",
            _CHILD_MAIN,
            "--db",
            str(self.path),
            "--write-fd",
            str(write_child.fileno()),
            "--read-fd",
            str(read_child.fileno()),
            "--max-rows",
            str(self.limits.max_rows),
            "--timeout",
            str(self.limits.timeout_seconds),
            "--max-chars",
            str(self.limits.max_chars),
            "--check-seconds",
            str(self.retention.check_seconds),
        ]
        if self.retention.days is not None:
            command += ["--retention-days", str(self.retention.days)]
        if self.retention.archive_dir is not None:
            command += ["--archive-dir", str(self.retention.archive_dir)]
        # Its own session: a Ctrl-C meant for the gateway must not kill the writer
        # before the gateway has flushed its last events into it.
        process = subprocess.Popen(
            command,
            pass_fds=(write_child.fileno(), read_child.fileno()),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        write_child.close()
        read_child.close()
        write = Connection(write_parent.detach())
        read = Connection(read_parent.detach())
        try:
            if not write.poll(self.start_timeout):
                raise WriterUnavailable(f"the usage writer did not start within {self.start_timeout:g}s")
            hello = orjson.loads(write.recv_bytes())
        except (EOFError, OSError):
            hello = {"error": f"the usage writer exited with {process.wait()}"}
        except WriterUnavailable:
            process.kill()
            process.wait()
            write.close()
            read.close()
            raise
        if "error" in hello:
            write.close()
            read.close()
            process.wait()
            raise WriterUnavailable(str(hello["error"]))
        self._process, self._write, self._read = process, write, read
        # If this handle is dropped without close() (a gateway that failed to
        # start), the child still gets EOF and is reaped, not left running.
        self._finalizer = weakref.finalize(self, _reap, process, write, read)

    def _ask(self, channel: str, message: JSON) -> JSON:
        """One request and its reply; restart a dead child once and retry."""
        for attempt in (1, 2):
            if self._closed:
                raise WriterUnavailable("the usage writer was closed")
            generation = self._generation
            connection = self._write if channel == "write" else self._read
            try:
                if connection is None:
                    raise EOFError
                connection.send_bytes(orjson.dumps(message))
                reply: JSON = orjson.loads(connection.recv_bytes())
                return reply
            except (EOFError, OSError) as error:
                if attempt == 2 or message.get("op") == "close":
                    raise WriterUnavailable(f"the usage writer is gone ({error or 'closed'})") from None
                # Both channels may find the child gone at once: the first swaps it,
                # the other sees a new generation and just retries. (Never a channel
                # lock while holding this one, so the two channels cannot deadlock.)
                with self._restart_lock:
                    if self._generation == generation and not self._closed:
                        log.warning("usage: the writer process stopped; starting it again")
                        self._discard()
                        self._start()
                        self._generation += 1
        raise AssertionError("unreachable")

    def _discard(self) -> None:
        if self._process is not None and self._write is not None and self._read is not None:
            self._finalizer.detach()
            _reap(self._process, self._write, self._read)
        self._process = self._write = self._read = None

    def insert(self, records: list[JSON]) -> int:
        """Write a batch (the spool's sink); returns the rows that were new."""
        if not records:
            return 0
        with self._write_lock:
            reply = self._ask("write", {"op": "insert", "records": records})
        if "error" in reply:
            raise WriterUnavailable(str(reply["error"]))
        added = int(reply["added"])
        self.written += added
        return added

    def query(self, sql: str) -> QueryResult:
        """Read-only SQL (checked in the child, which owns the parser and the file)."""
        with self._read_lock:
            reply = self._ask("read", {"op": "query", "sql": sql})
        return query_answer(reply)

    def prune(self) -> JSON:
        """Apply the retention window now (it also runs on a timer in the child)."""
        with self._write_lock:
            return self._ask("write", {"op": "prune"})

    def close(self) -> None:
        """Let the child checkpoint and close the file, then reap it."""
        with self._write_lock, self._read_lock:
            if self._write is not None:
                try:
                    self._ask("write", {"op": "close"})
                except WriterUnavailable:
                    pass  # already gone; nothing of ours is in flight
            self._closed = True
            self._discard()


def _reap(process: subprocess.Popen[bytes], *connections: Connection) -> None:
    """Close our ends (the child exits on EOF) and wait for it; kill it if it hangs."""
    for connection in connections:
        connection.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the child ----------------------------------------------------------------------


class _Child:
    def __init__(self, args: argparse.Namespace) -> None:
        from .store import UsageStore  # the only process that imports DuckDB's store

        self.store = UsageStore(Path(args.db))
        self.limits = SqlLimits(args.max_rows, args.timeout, args.max_chars)
        self.retention = Retention(
            args.retention_days, Path(args.archive_dir) if args.archive_dir else None, args.check_seconds
        )
        self.done = threading.Event()
        self.querying = threading.Lock()  # held while a query runs, so close() waits for it

    def handle_write(self, message: JSON) -> JSON:
        op = message.get("op")
        if op == "insert":
            return {"added": self.store.insert(message["records"])}
        if op == "prune":
            return self.prune()
        if op == "close":
            self.done.set()
            return {"closed": True}
        return {"error": f"unknown op {op!r}"}

    def handle_read(self, message: JSON) -> JSON:
        from .sql import check_sql, run_query

        try:
            sql = check_sql(message.get("sql") or "", self.limits)
            with self.querying:
                if self.done.is_set():
                    raise ServiceUnavailable("the usage writer is closing; ask again", code="usage_unavailable")
                return {"result": run_query(self.store.cursor(), sql, self.limits).as_json()}
        except GatewayError as error:
            return error_reply(error)

    def prune(self) -> JSON:
        if self.retention.days is None:
            return {"archived": 0, "deleted": 0, "files": []}
        result = self.store.prune(self.retention.days, self.retention.archive_dir)
        if result["deleted"]:
            log.info(
                "usage: moved %d rows older than %d days out of the log (%s)",
                result["deleted"],
                self.retention.days,
                ", ".join(result["files"]) or "not archived",
            )
        return result

    def serve(self, connection: Connection, handle: Any) -> None:
        while not self.done.is_set():
            try:
                message = orjson.loads(connection.recv_bytes())
            except (EOFError, OSError):
                self.done.set()  # the worker is gone
                return
            try:
                reply = handle(message)
            except Exception as error:  # a failed batch is retried by the worker; report, never die
                log.warning("usage writer: %s failed: %s", message.get("op"), error)
                reply = {"error": str(error)}
            try:
                connection.send_bytes(orjson.dumps(reply))
            except OSError:
                # The worker died between asking and hearing back: a batch we just
                # wrote is sent again by whoever takes over, and its ids make that a no-op.
                self.done.set()
                return

    def prune_on_timer(self) -> None:
        """At start, then every `check_seconds`: after the worker has its answer, not before."""
        while not self.done.is_set():
            try:
                self.prune()
            except Exception as error:  # retried at the next check
                log.warning("usage writer: retention failed: %s", error)
            self.done.wait(self.retention.check_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="proxy.usage.writer", description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--write-fd", type=int, required=True)
    parser.add_argument("--read-fd", type=int, required=True)
    parser.add_argument("--max-rows", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--max-chars", type=int, default=10_000)
    parser.add_argument("--retention-days", type=int)
    parser.add_argument("--archive-dir")
    parser.add_argument("--check-seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    write = Connection(args.write_fd)
    read = Connection(args.read_fd)
    try:
        child = _Child(args)
    except Exception as error:  # typically: the file is held by another process
        write.send_bytes(orjson.dumps({"error": f"cannot open {args.db}: {error}"}))
        return 1
    write.send_bytes(orjson.dumps({"ready": True, "pid": os.getpid()}))
    threading.Thread(target=child.serve, args=(read, child.handle_read), name="usage-sql", daemon=True).start()
    pruner = threading.Thread(target=child.prune_on_timer, name="usage-retention", daemon=True)
    pruner.start()
    child.serve(write, child.handle_write)
    # DuckDB refuses to close a connection that another thread is using: let a
    # prune or a query in flight finish first (the worker kills us if that is too long).
    child.done.set()
    pruner.join()
    with child.querying:
        child.store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
