"""Relay an upstream's OpenAI chunks to the client as SSE, as they come.

Chunks are forwarded as the bytes the adapter produced; only a chunk that
carries usage is parsed (to record it, and to drop it when the client did not
ask for usage). Once bytes have gone out, an error travels as an SSE error
event and the stream ends: it is never silently restarted elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from decimal import Decimal

import orjson

from .errors import GatewayError, sse_error_event
from .pricing import format_cost
from .types import JSON, Usage

log = logging.getLogger("proxy.streaming")

DONE = b"data: [DONE]\n\n"
StreamEnd = Callable[["StreamRelay"], None]
# The stream's cost so far (from its usage, or estimated) and whether it is an estimate.
StreamCost = Callable[["StreamRelay"], tuple[Decimal, bool]]


class StreamRelay:
    """An async iterable of SSE frames with the first upstream chunk prefetched.

    Prefetching lets an upstream that fails before its first byte be answered
    with a proper HTTP status instead of a 200 followed by an error event.
    """

    def __init__(
        self, chunks: AsyncIterator[bytes], *, include_usage: bool, on_end: StreamEnd, cost: StreamCost | None = None
    ) -> None:
        self._chunks = chunks
        self.include_usage = include_usage
        self.on_end = on_end
        self.cost = cost
        self.started = time.perf_counter()
        self.first_chunk_at: float | None = None
        self.usage: Usage | None = None
        self.error: GatewayError | None = None
        self.completed = False
        self.cancelled = False
        self.payloads: list[bytes] = []
        self._first: bytes | None = None

    async def prefetch(self) -> None:
        """Pull the first chunk; upstream errors raised here become HTTP errors."""
        try:
            self._first = await anext(self._chunks)
        except StopAsyncIteration:
            self._first = None
        except BaseException:
            await self._chunks.aclose()  # type: ignore[attr-defined]
            raise
        self.first_chunk_at = time.perf_counter()

    def _frame(self, data: bytes) -> bytes | None:
        self.payloads.append(data)
        if b'"usage"' in data and b'"usage":null' not in data and b'"usage": null' not in data:
            try:
                parsed: JSON = orjson.loads(data)
            except orjson.JSONDecodeError:
                return b"data: " + data + b"\n\n"
            found = Usage.from_openai(parsed.get("usage"))
            if found is not None:
                self.usage = found
                if not parsed.get("choices") and not self.include_usage:
                    return None
                if self.cost is not None and isinstance(parsed.get("usage"), dict):
                    # As OpenRouter does: the usage the client asked for carries its cost in USD.
                    parsed["usage"]["cost"] = float(self.cost(self)[0])
                    return b"data: " + orjson.dumps(parsed) + b"\n\n"
        return b"data: " + data + b"\n\n"

    def cost_comment(self) -> bytes:
        """The stream's cost as an SSE comment: headers left before it was known, and clients skip comments."""
        if self.cost is None:
            return b""
        cost, estimated = self.cost(self)
        return b": x-gateway-cost " + format_cost(cost).encode() + (b" estimated" if estimated else b"") + b"\n\n"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._first is not None:
                frame = self._frame(self._first)
                if frame is not None:
                    yield frame
                async for data in self._chunks:
                    frame = self._frame(data)
                    if frame is not None:
                        yield frame
            self.completed = True
            yield self.cost_comment() + DONE
        except GatewayError as error:
            self.error = error
            log.warning("stream ended by upstream error: %s", error.message)
            yield sse_error_event(error)
        except BaseException:
            self.cancelled = True
            raise
        finally:
            await self._chunks.aclose()  # type: ignore[attr-defined]
            self.on_end(self)

    @property
    def ttft_ms(self) -> float | None:
        return None if self.first_chunk_at is None else (self.first_chunk_at - self.started) * 1000

    def output_text(self) -> str:
        """Concatenated content of the stream, for estimating usage when none was sent."""
        parts: list[str] = []
        for data in self.payloads:
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                parts.append(delta.get("content") or "")
                for call in delta.get("tool_calls") or []:
                    parts.append((call.get("function") or {}).get("arguments") or "")
        return "".join(parts)


async def coalesce(frames: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Send together what arrived together; never hold a frame back.

    A pump task pulls frames as fast as the upstream hands them over; the
    response takes everything ready whenever it can write. When the upstream
    delivers 20 events in one TCP read they leave in one write instead of 20
    (each write is an ASGI send and a syscall); when events arrive one at a
    time each is written the moment it is ready, exactly as before.
    """
    pending: list[bytes] = []
    ready = asyncio.Event()
    finished = False

    async def pump() -> None:
        nonlocal finished
        try:
            async for frame in frames:
                pending.append(frame)
                ready.set()
        finally:
            finished = True
            ready.set()

    task = asyncio.get_running_loop().create_task(pump())
    try:
        while True:
            await ready.wait()
            ready.clear()
            if pending:
                batch = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                yield batch
            if finished and not pending:
                break
        task.result()  # an unexpected error in the relay surfaces here
    finally:
        if not task.done():
            task.cancel()
