"""A lean HTTP/1.1 keep-alive transport under httpx's API, on asyncio and httptools.

httpx's default transport (httpcore on anyio) was most of the gateway's CPU
per request in `python -m bench`: every request polls every pooled socket for
readability, and each read and write goes through anyio's stream layers. This
transport keeps httpx's client API (timeouts, headers, streaming, decoding,
errors) and replaces only the wire: an `asyncio.Protocol` per connection that
feeds bytes to httptools' C parser, and a LIFO pool of idle connections per
origin. asyncio sets TCP_NODELAY on its TCP sockets, so small SSE frames are
not held back by Nagle.

What it does not do (the gateway does not need it): HTTP/2, proxies (httpx's
env-proxy mounts still apply), request bodies streamed from async iterators
(they are read first), pipelining.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import certifi
import httptools
import httpx

_HIGH_WATER = 256 * 1024  # buffered body bytes before the socket stops being read
Origin = tuple[str, str, int]


def default_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; carries one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.received = False  # any byte of the current response
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.keep_alive = True
        self.head = False

    # -- asyncio.Protocol -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("unexpected protocol upgrade from upstream"))
        except httptools.HttpParserError as error:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response from upstream: {error}"))
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.headers_done and not self._has_length():
                self.complete = True  # body delimited by the end of the connection
            else:
                message = "upstream closed the connection before the response was complete"
                self.error = httpx.RemoteProtocolError(message) if self.received else httpx.ReadError(message)
        self._wake()

    # -- httptools callbacks ----------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:  # an interim response: wait for the real one
            self.headers = []
            return
        self.headers_done = True
        if self.head:
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # -- used by the transport ----------------------------------------------------

    def _has_length(self) -> bool:
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
                return True
        return False

    def _fail(self, error: Exception) -> None:
        self.error = error
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float | None) -> None:
        """Wait for the next parser event (headers, body, end), or fail on timeout."""
        if self.paused and self.transport is not None and self.buffered <= _HIGH_WATER // 4:
            self.paused = False
            self.transport.resume_reading()
        waiter = self.loop.create_future()
        self.waiter = waiter
        timer = None if timeout is None else self.loop.call_later(timeout, _time_out, waiter)
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    def send(self, data: bytes, head: bool) -> None:
        self._reset()
        self.head = head
        assert self.transport is not None
        self.transport.write(data)

    @property
    def reusable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("upstream did not answer in time"))


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, pool: FastTransport, origin: Origin, connection: _Connection, timeout: float | None) -> None:
        self.pool = pool
        self.origin = origin
        self.connection = connection
        self.timeout = timeout
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self.connection
        while True:
            while connection.chunks:
                chunk = connection.chunks.popleft()
                connection.buffered -= len(chunk)
                yield chunk
            if connection.error is not None:
                raise connection.error
            if connection.complete:
                return
            await connection.wait(self.timeout)

    async def aclose(self) -> None:
        if self.done:
            return
        self.done = True
        connection = self.connection
        if connection.complete and connection.keep_alive and not connection.chunks and connection.error is None:
            self.pool.release(self.origin, connection)
        else:
            connection.close()


@dataclass(frozen=True, slots=True)
class PreparedPost:
    """A POST target with its request head built once: all but the Content-Length value."""

    origin: Origin
    head: bytes  # "POST /path HTTP/1.1\r\n...headers...Content-Length: "
    timeouts: dict[str, Any]

    @classmethod
    def build(cls, url: httpx.URL, headers: httpx.Headers, timeouts: dict[str, Any]) -> PreparedPost:
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        origin: Origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        # What httpx would send, minus compression: the whole body is read here,
        # so there is nothing to gain from gzip on the gateway's side of the call.
        lines = [b"POST " + url.raw_path + b" HTTP/1.1", b"Host: " + url.netloc]
        skip = {b"host", b"content-length", b"transfer-encoding", b"accept-encoding"}
        lines += [name + b": " + value for name, value in headers.raw if name.lower() not in skip]
        lines += [b"Accept-Encoding: identity", b"Content-Length: "]
        return cls(origin, b"\r\n".join(lines), timeouts)


@dataclass(slots=True)
class RawResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    content: bytes

    def header(self, name: bytes) -> bytes | None:
        return header_value(self.headers, name)


def header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header `name` (lowercase) in a raw header list."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class RawStream:
    """A streamed answer without httpx models: status, header list, and the body as it arrives."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: _ResponseStream) -> None:
        self.status = status
        self.headers = headers
        self._body = body
        encoding = header_value(headers, b"content-encoding")
        self._decoder = None if encoding in (None, b"identity") else _decoder(encoding)

    def header(self, name: bytes) -> bytes | None:
        return header_value(self.headers, name)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        async for chunk in self._body:
            if self._decoder is None:
                yield chunk
                continue
            try:
                yield self._decoder.decompress(chunk)
            except zlib.error as error:
                raise httpx.DecodingError(f"the upstream's compressed stream is corrupt: {error}") from None

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        await self._body.aclose()


def _decoder(encoding: bytes) -> Any:
    """We ask for identity; an upstream that compresses anyway is undone for gzip and deflate."""
    name = encoding.strip().lower()
    if name in (b"gzip", b"x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if name == b"deflate":
        return zlib.decompressobj()
    raise httpx.DecodingError(f"the upstream answered in an encoding the gateway cannot read ({name.decode()!r})")


class FastTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 with a LIFO pool of idle connections per origin."""

    def __init__(
        self,
        *,
        max_keepalive_connections: int = 200,
        keepalive_expiry: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_keepalive = max_keepalive_connections
        self.keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[Origin, deque[_Connection]] = {}
        self.opened = 0  # connections made, for tests and the bench

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = default_ssl_context()
        return self._ssl_context

    async def _connect(self, origin: Origin, timeout: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    host,
                    port,
                    ssl=self._ssl() if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, ssl.SSLError) as error:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {error}") from None
        self.opened += 1
        return connection

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.reusable and now - connection.idle_since < self.keepalive_expiry:
                return connection
            connection.close()
        return None

    def release(self, origin: Origin, connection: _Connection) -> None:
        if not connection.reusable:
            return
        idle = self._idle.setdefault(origin, deque())
        if len(idle) >= self.max_keepalive:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}")
        origin: Origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        body = request.content if hasattr(request, "_content") else await request.aread()
        head = b"".join(
            [request.method.encode("ascii"), b" ", url.raw_path, b" HTTP/1.1\r\n"]
            + [name + b": " + value + b"\r\n" for name, value in request.headers.raw]
            + [b"\r\n"]
        )
        connection = await self._exchange(origin, head, body, request.method == "HEAD", timeouts)
        stream = _ResponseStream(self, origin, connection, timeouts.get("read"))
        return httpx.Response(
            connection.status,
            headers=connection.headers,
            stream=stream,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _exchange(
        self, origin: Origin, head: bytes, body: bytes, is_head: bool, timeouts: dict[str, Any]
    ) -> _Connection:
        """Send one request on a pooled (or new) connection; return it once the response headers are in."""
        connection = self._take_idle(origin)
        reused = connection is not None
        while True:
            if connection is None:
                connection = await self._connect(origin, timeouts.get("connect"))
            connection.send(head + body if len(body) < 65536 else head, is_head)
            if len(body) >= 65536:
                assert connection.transport is not None
                connection.transport.write(body)
            try:
                while not connection.headers_done:
                    if connection.error is not None:
                        raise connection.error
                    await connection.wait(timeouts.get("read"))
            except httpx.ReadError:
                # A pooled connection the server had already closed: try once on a fresh one.
                if reused and not connection.received:
                    connection.close()
                    connection, reused = None, False
                    continue
                connection.close()
                raise
            except BaseException:
                connection.close()
                raise
            return connection

    async def post(self, target: PreparedPost, body: bytes) -> RawResponse:
        """POST and read the whole answer without building httpx models.

        The non-streaming chat call is the gateway's hottest upstream request, and
        httpx's Request/Response/Headers objects were about a sixth of its CPU.
        Errors are httpx's exception types, as with `handle_async_request`.
        """
        head = target.head + str(len(body)).encode("ascii") + b"\r\n\r\n"
        connection = await self._exchange(target.origin, head, body, False, target.timeouts)
        try:
            while not connection.complete:
                if connection.error is not None:
                    raise connection.error
                await connection.wait(target.timeouts.get("read"))
            if connection.error is not None:
                raise connection.error
        except BaseException:
            connection.close()
            raise
        content = b"".join(connection.chunks)
        connection.chunks.clear()
        connection.buffered = 0
        answer = RawResponse(connection.status, connection.headers, content)
        if connection.keep_alive:
            self.release(target.origin, connection)
        else:
            connection.close()
        encoding = answer.header(b"content-encoding")
        if encoding not in (None, b"identity"):
            decoder = _decoder(encoding)
            try:
                answer.content = decoder.decompress(content) + decoder.flush()
            except zlib.error as error:
                raise httpx.DecodingError(f"the upstream's compressed body is corrupt: {error}") from None
        return answer

    async def open(self, target: PreparedPost, body: bytes) -> RawStream:
        """POST and return once the response headers are in; the body is read from the stream."""
        head = target.head + str(len(body)).encode("ascii") + b"\r\n\r\n"
        connection = await self._exchange(target.origin, head, body, False, target.timeouts)
        return RawStream(
            connection.status,
            connection.headers,
            _ResponseStream(self, target.origin, connection, target.timeouts.get("read")),
        )

    async def aclose(self) -> None:
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
