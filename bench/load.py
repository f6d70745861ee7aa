"""Load generators: wrk for throughput and latency, a raw-socket client for first SSE event.

wrk drives keep-alive connections as fast as they answer; a Lua script sets
the POST body and prints one JSON line of results. The first-event client is
sequential and deliberately dumb (blocking socket, no HTTP library), so the
difference between "direct" and "through the gateway" is the gateway.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from .procs import pinned

LUA = """
wrk.method = "POST"
wrk.body = [==[{body}]==]
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH {{\\"requests\\":%d,\\"duration_us\\":%d,\\"errors\\":%d,\\"non2xx\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d,\\"mean_us\\":%f}}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass(frozen=True)
class Request:
    """One kind of request a target is driven with."""

    url: str  # full URL of the endpoint
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _lua(request: Request) -> str:
    lines = [f'wrk.headers["{name}"] = "{value}"' for name, value in request.headers]
    lines.append('wrk.headers["Content-Type"] = "application/json"')
    return LUA.format(body=request.body.decode(), headers="\n".join(lines))


def run_wrk(request: Request, connections: int, seconds: float, cpu: int | None) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(request))
    try:
        command = pinned(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                request.url,
            ],
            cpu,
        )
        output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    finally:
        Path(script.name).unlink(missing_ok=True)
    for line in output.stdout.splitlines():
        if line.startswith("BENCH "):
            data = orjson.loads(line[6:])
            return LoadResult(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                errors=data["errors"] + data["non2xx"],
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
            )
    raise RuntimeError(f"wrk printed no result (exit {output.returncode}): {output.stderr.strip() or output.stdout}")


# -- time to first SSE event ---------------------------------------------------


class _HTTPConnection:
    """A keep-alive HTTP/1.1 connection that understands just enough to find ends of responses."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def _recv(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data

    def stream(self, request: Request) -> tuple[float, float, int]:
        """Send one request; return (seconds to first `data:` event, seconds to end, status)."""
        head = [
            f"POST {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(request.body)}",
            "Accept: text/event-stream",
        ]
        head += [f"{name}: {value}" for name, value in request.headers]
        payload = ("\r\n".join(head) + "\r\n\r\n").encode() + request.body
        started = time.perf_counter()
        self.sock.sendall(payload)
        while b"\r\n\r\n" not in self.buffer:
            self._recv()
        header_bytes, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = header_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        first: float | None = None
        if fields.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buffer:
                    self._recv()
                size_line, rest = self.buffer.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(rest) < size + 2:
                    self._recv()
                    size_line, rest = self.buffer.split(b"\r\n", 1)
                body += rest[:size]
                self.buffer = rest[size + 2 :]
                if first is None and b"data:" in body:
                    first = time.perf_counter()
                if size == 0:
                    break
        else:
            length = int(fields.get("content-length", "0"))
            while len(self.buffer) < length:
                if first is None and b"data:" in self.buffer:
                    first = time.perf_counter()
                self._recv()
            if first is None and b"data:" in self.buffer[:length]:
                first = time.perf_counter()
            self.buffer = self.buffer[length:]
        ended = time.perf_counter()
        return (first or ended) - started, ended - started, status


@dataclass(frozen=True)
class FirstEventResult:
    count: int
    errors: int
    first_p50_ms: float
    first_p99_ms: float
    total_p50_ms: float


def first_event(request: Request, count: int) -> FirstEventResult:
    """Sequential streamed requests over one keep-alive connection."""
    connection = _HTTPConnection(request.url)
    firsts: list[float] = []
    totals: list[float] = []
    errors = 0
    try:
        for _ in range(count):
            first, total, status = connection.stream(request)
            if status != 200:
                errors += 1
                continue
            firsts.append(first * 1000)
            totals.append(total * 1000)
    finally:
        connection.close()
    if not firsts:
        return FirstEventResult(count, errors, float("nan"), float("nan"), float("nan"))
    firsts.sort()
    return FirstEventResult(
        count=count,
        errors=errors,
        first_p50_ms=statistics.median(firsts),
        first_p99_ms=firsts[min(len(firsts) - 1, int(len(firsts) * 0.99))],
        total_p50_ms=statistics.median(totals),
    )
