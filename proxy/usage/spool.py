"""Events in from the request path, batches out to a sink, memory bounded.

`put()` only appends to a deque (no lock, no wake-up), so the event loop never waits. A pump thread
moves events into a bounded in-memory buffer, or, when the sink is slow (DuckDB
busy, Redis away), into spill files under `spill_dir`. A drain thread hands
batches to the sink and retries a failed batch until it goes through; spill
files are read back once memory is empty. `close()` writes what it can and
spills the rest, so nothing is dropped; spilled files left by a stopped process
are picked up by the next one that starts.

Spill files: `<name>-<pid>-<n>.open` while written, renamed `.ready` when
closed, and `.claimed-<pid>` by the process that sends them on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from ..types import JSON

log = logging.getLogger("proxy.usage")

Sink = Callable[[list[JSON]], None]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    def __init__(
        self,
        sink: Sink,
        spill_dir: Path,
        *,
        name: str,
        batch_size: int,
        flush_interval: float,
        max_pending: int,
        convert: Callable[[Any], JSON],
    ) -> None:
        self.sink = sink
        self.spill_dir = spill_dir
        self.name = name
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.convert = convert
        self.healthy = True
        self.spilled = 0
        self._inbox: deque[Any] = deque()
        self._stopping = threading.Event()
        self._pending: deque[JSON] = deque()
        self._cond = threading.Condition()
        self._spill: IO[bytes] | None = None
        self._spill_path: Path | None = None
        self._spill_seq = 0
        self._pump_done = False
        self._closing = False
        spill_dir.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._pump = threading.Thread(target=self._run_pump, name=f"{name}-pump", daemon=True)
        self._drain = threading.Thread(target=self._run_drain, name=f"{name}-drain", daemon=True)
        self._pump.start()
        self._drain.start()

    def put(self, item: Any) -> None:
        """Never blocks and wakes no thread: the caller is the event loop, on every request."""
        self._inbox.append(item)

    @property
    def backlog(self) -> int:
        return len(self._pending) + len(self._inbox)

    # -- pump: inbox -> memory or disk ----------------------------------------

    def _run_pump(self) -> None:
        # Polled, not signalled: waking a thread per event would cost the event
        # loop a GIL hand-off per request.
        while True:
            stopping = self._stopping.wait(self.flush_interval / 2)
            records = []
            while self._inbox:
                records.append(self.convert(self._inbox.popleft()))
            with self._cond:
                for record in records:
                    if len(self._pending) < self.max_pending:
                        self._pending.append(record)
                    else:
                        self._write_spill(record)
                if stopping and not self._inbox:
                    self._pump_done = True
                self._cond.notify_all()
            if self._pump_done:
                return

    def _write_spill(self, record: JSON) -> None:
        if self._spill is None:
            self._spill_seq += 1
            self._spill_path = self.spill_dir / f"{self.name}-{os.getpid()}-{self._spill_seq}.open"
            self._spill = open(self._spill_path, "ab")  # noqa: SIM115 - kept open across records
            log.warning("usage: %s is behind; spilling events to %s", self.name, self._spill_path)
        self._spill.write(orjson.dumps(record) + b"\n")
        self.spilled += 1

    def _seal_spill(self) -> None:
        """Close the file being written so the drain may claim it (called under the lock)."""
        if self._spill is None or self._spill_path is None:
            return
        self._spill.close()
        self._spill_path.rename(self._spill_path.with_suffix(".ready"))
        self._spill = None
        self._spill_path = None

    # -- drain: memory and disk -> sink ---------------------------------------

    def _run_drain(self) -> None:
        last_send = 0.0
        while True:
            with self._cond:
                if not self._pending and not self._pump_done:
                    self._cond.wait(self.flush_interval)
                # At most one write per flush interval unless a full batch waits:
                # a statement per event would cost DuckDB far more CPU than the rows.
                while len(self._pending) < self.batch_size and not self._pump_done:
                    early = last_send + self.flush_interval - time.monotonic()
                    if early <= 0:
                        break
                    self._cond.wait(early)
                batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
                if not batch:
                    self._seal_spill()  # memory is empty: new events go to memory again
                finished = self._pump_done and not batch and not self._pending
            if batch:
                last_send = time.monotonic()
                if not self._send(batch):
                    self._respill(batch)
                continue
            self._drain_spill_files()
            if finished:
                return

    def _send(self, batch: list[JSON]) -> bool:
        """Retry until the sink takes the batch; give up only when closing."""
        delay = 0.1
        while True:
            try:
                self.sink(batch)
                self.healthy = True
                return True
            except Exception as error:  # the sink's own errors (DuckDB, Redis) vary; none may lose rows
                if self.healthy:
                    log.warning("usage: %s could not write %d events (%s); retrying", self.name, len(batch), error)
                self.healthy = False
                if self._closing:
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _respill(self, batch: list[JSON]) -> None:
        with self._cond:
            for record in batch:
                self._write_spill(record)
            self._seal_spill()

    def _drain_spill_files(self) -> None:
        """Send every `.ready` spill file (this process's or one a stopped process left)."""
        for path in sorted(self.spill_dir.glob(f"{self.name}-*.ready")):
            claimed = path.with_suffix(f".claimed-{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another process claimed it first
            records = [orjson.loads(line) for line in claimed.read_bytes().splitlines() if line.strip()]
            for start in range(0, len(records), self.batch_size):
                if not self._send(records[start : start + self.batch_size]):
                    claimed.rename(path)
                    return
            claimed.unlink()

    def _recover(self) -> None:
        """Files a stopped process left open or half-sent become ready again."""
        for path in self.spill_dir.glob(f"{self.name}-*"):
            owner = path.name.rsplit("-", 2)[1] if path.suffix == ".open" else path.suffix.rpartition("-")[2]
            if path.suffix == ".ready" or not owner.isdigit() or _alive(int(owner)) and int(owner) != os.getpid():
                continue
            path.rename(path.with_name(path.name.split(".")[0] + ".ready"))

    def close(self, timeout: float = 15.0) -> None:
        """Send what is buffered; after `timeout` spill the rest to disk for the next start."""
        self._stopping.set()
        self._pump.join()
        if not self.healthy:
            self._closing = True  # the sink is down: spill now rather than hold shutdown up
        self._drain.join(timeout)
        if self._drain.is_alive():
            self._closing = True
            self._drain.join()
        with self._cond:
            while self._pending:
                self._write_spill(self._pending.popleft())
            self._seal_spill()
