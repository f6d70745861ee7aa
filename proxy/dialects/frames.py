"""Read back the OpenAI chunks a `StreamRelay` (or a cache replay) sends as SSE."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Protocol

import orjson

from ..errors import GatewayError, UpstreamError
from ..streaming import StreamRelay
from ..types import JSON


class DialectEvents(Protocol):
    """A dialect's stream writer: its opening, one event group per chunk, its failure."""

    def start(self) -> bytes: ...
    def feed(self, chunk: JSON) -> bytes | None: ...
    def fail(self, error: GatewayError) -> bytes: ...


async def translate_stream(
    relay: StreamRelay, events: DialectEvents, provider: str, finish: Callable[[], Awaitable[bytes]]
) -> AsyncIterator[bytes]:
    """Relay chunks as a dialect's events; `finish()` closes a stream that did not fail.

    After an error the relay is still read to its end so its usage row is written.
    """
    yield events.start()
    failed = False
    async for chunk in chat_chunks(relay):
        if failed:
            continue
        error = chunk.get("error")
        if error is not None:
            # The relay's own error event, or an upstream's error chunk passed along.
            failed = True
            yield events.fail(stream_error(relay, error, provider))
            continue
        out = events.feed(chunk)
        if out:
            yield out
    if not failed:
        yield await finish()


def stream_error(relay: StreamRelay, error: object, provider: str) -> GatewayError:
    """The error an error chunk stands for: the relay's own, else one built from the chunk."""
    if relay.error is not None:
        return relay.error
    message = error.get("message") if isinstance(error, dict) else str(error)
    return UpstreamError(f"{provider} stream failed: {message or 'unknown error'}", status_code=502, provider=provider)


async def chat_chunks(frames: AsyncIterable[bytes]) -> AsyncIterator[JSON]:
    """Each `data:` payload as JSON, in order, skipping the `[DONE]` marker.

    The source is read to its end and closed even when the caller stops early,
    so the relay's own end-of-stream work (the usage row) always runs. Splitting
    on blank lines, not on each piece, keeps this right for batched writes.
    """
    iterator = aiter(frames)
    buffer = b""
    try:
        async for piece in iterator:
            buffer += piece
            while True:
                end = buffer.find(b"\n\n")
                if end < 0:
                    break
                frame, buffer = buffer[:end], buffer[end + 2 :]
                for line in frame.split(b"\n"):
                    data = line[5:].strip() if line.startswith(b"data:") else b""
                    if not data or data == b"[DONE]":
                        continue
                    try:
                        parsed = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(parsed, dict):
                        yield parsed
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()
