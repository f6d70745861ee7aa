"""The gateway's own log, kept in memory for the dashboard's live tail.

A logging handler stores the last N records with a sequence number; readers
ask for records after the number they last saw. Records may come from any
thread (the usage writer logs too), so the buffer is guarded by a lock and
readers are woken on their own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    ts: float
    levelno: int
    level: str
    logger: str
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "ts": self.ts, "level": self.level, "logger": self.logger, "message": self.message}

    def as_text(self) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.ts))
        return f"{stamp}Z {self.level} {self.logger}: {self.message}"


class LogBuffer(logging.Handler):
    def __init__(self, capacity: int = 2000) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: deque[LogLine] = deque(maxlen=capacity)
        self._seq = 0
        self._guard = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:  # a bad format string must not break the caller's logging
            message = str(record.msg)
        with self._guard:
            self._seq += 1
            self.lines.append(
                LogLine(self._seq, record.created, record.levelno, record.levelname, record.name, message)
            )
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def since(self, seq: int, *, level: str | None = None, text: str | None = None, limit: int = 500) -> list[LogLine]:
        floor = logging.getLevelName(level) if level in LEVELS else 0
        needle = (text or "").lower()
        with self._guard:
            lines = [line for line in self.lines if line.seq > seq]
        lines = [
            line
            for line in lines
            if line.levelno >= floor and (not needle or needle in line.message.lower() or needle in line.logger)
        ]
        return lines[-limit:]

    async def wait(self, seq: int, timeout: float) -> None:
        """Return when a record newer than `seq` exists, or after `timeout`."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._guard:
            if self._seq > seq:
                return
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._guard:
                self._waiters.discard(entry)
