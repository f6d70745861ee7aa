"""SSE forwarding: what arrives together leaves together, and nothing waits for anything."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from proxy.streaming import coalesce
from tests.fakes import ServerThread


async def collect(frames: AsyncIterator[bytes]) -> list[bytes]:
    return [piece async for piece in coalesce(frames)]


def test_frames_ready_together_are_written_together() -> None:
    async def upstream() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"  # ready at once: same write as "a"
        await asyncio.sleep(0.05)
        yield b"c"  # came later: its own write, as soon as it exists

    assert asyncio.run(collect(upstream())) == [b"ab", b"c"]


def test_an_error_in_the_stream_reaches_the_response() -> None:
    async def upstream() -> AsyncIterator[bytes]:
        yield b"a"
        await asyncio.sleep(0.01)
        raise RuntimeError("relay broke")

    with pytest.raises(RuntimeError, match="relay broke"):
        asyncio.run(collect(upstream()))


def test_closing_the_response_early_stops_the_upstream() -> None:
    closed = asyncio.Event()

    async def upstream() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x"
                await asyncio.sleep(0.01)
        finally:
            closed.set()

    async def scenario() -> None:
        stream = coalesce(upstream())
        assert await anext(stream) == b"x"
        await stream.aclose()  # what Starlette does when the client goes away
        await asyncio.wait_for(closed.wait(), 5)

    asyncio.run(scenario())


def test_events_the_upstream_spaces_out_reach_the_client_spaced_out(gateway: ServerThread) -> None:
    arrivals: list[float] = []
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        timeout=30,
        json={
            "model": "L0",
            "stream": True,
            "messages": [{"role": "user", "content": "paced [[fake:chunks=4,chunk_delay=0.4]]"}],
        },
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {") and '"content"' in line:
                arrivals.append(time.monotonic())
    assert len(arrivals) >= 4
    # Chunks 0.4 s apart upstream must not be gathered into one late write.
    assert arrivals[-1] - arrivals[0] >= 0.8
