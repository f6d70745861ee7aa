"""The HTTP/1.1 transport under the providers' httpx clients, against real TCP servers.

Each test runs a tiny asyncio server on loopback that misbehaves in one
specific way (closes a kept-alive connection, never answers, cuts a body
short) and drives it through `httpx.AsyncClient(transport=FastTransport())`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest

from proxy.providers.transport import FastTransport, PreparedPost
from tests.fakes import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's head and body (by Content-Length); None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


def json_response(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


async def serve(handler: Handler) -> tuple[asyncio.Server, str, list[int]]:
    """Start `handler` on a free port; returns the server, its URL and a connection counter."""
    connections = [0]

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        try:
            await handler(reader, writer, connections[0])
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(on_connect, "127.0.0.1", port)
    return server, f"http://127.0.0.1:{port}", connections


async def keep_alive_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
    while (request := await read_request(reader)) is not None:
        body = request.split(b"\r\n\r\n", 1)[1]
        writer.write(json_response(b'{"echo":' + body + b"}"))
        await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
    """Reads the request and never answers."""
    await read_request(reader)
    await asyncio.sleep(5)


def test_connections_are_reused_across_requests() -> None:
    async def scenario() -> None:
        server, url, connections = await serve(keep_alive_echo)
        transport = FastTransport()
        async with server, httpx.AsyncClient(transport=transport, base_url=url) as client:
            for index in range(5):
                response = await client.post("/x", content=b'{"n":%d}' % index)
                assert response.status_code == 200
                assert response.json() == {"echo": {"n": index}}
                assert response.headers["content-type"] == "application/json"
        assert connections[0] == 1
        assert transport.opened == 1

    asyncio.run(scenario())


def test_concurrent_requests_get_their_own_connections_and_answers() -> None:
    async def scenario() -> None:
        server, url, connections = await serve(keep_alive_echo)
        async with server, httpx.AsyncClient(transport=FastTransport(), base_url=url) as client:
            responses = await asyncio.gather(*(client.post("/x", content=b"%d" % n) for n in range(20)))
            assert [r.json()["echo"] for r in responses] == list(range(20))
            again = await asyncio.gather(*(client.post("/x", content=b"%d" % n) for n in range(20)))
            assert [r.json()["echo"] for r in again] == list(range(20))
        assert connections[0] <= 20  # the second round reused the first round's connections

    asyncio.run(scenario())


def test_chunks_reach_the_caller_as_they_arrive() -> None:
    first_seen = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b"d\r\ndata: first\n\n\r\n")
        await writer.drain()
        # The rest is sent only once the client has seen the first event: a
        # transport that buffered the body would wait here until the timeout.
        await asyncio.wait_for(first_seen.wait(), 5)
        writer.write(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")
        await writer.drain()

    async def scenario() -> None:
        server, url, _ = await serve(handler)
        async with server, httpx.AsyncClient(transport=FastTransport(), base_url=url) as client:
            async with client.stream("POST", "/sse", content=b"{}") as response:
                pieces = []
                async for piece in response.aiter_bytes():
                    pieces.append(piece)
                    first_seen.set()
        assert b"".join(pieces) == b"data: first\n\ndata: second\n\n"
        assert pieces[0] == b"data: first\n\n"

    asyncio.run(scenario())


def test_a_pooled_connection_the_server_dropped_is_retried_on_a_new_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await read_request(reader)
        writer.write(json_response(b'{"connection":%d}' % number))
        await writer.drain()
        if number == 1:
            # Keep-alive expired on the server's side: it reads the next
            # request, then hangs up without answering.
            await read_request(reader)
            return
        while await read_request(reader) is not None:
            writer.write(json_response(b'{"connection":%d}' % number))
            await writer.drain()

    async def scenario() -> None:
        server, url, connections = await serve(handler)
        transport = FastTransport()
        async with server, httpx.AsyncClient(transport=transport, base_url=url) as client:
            assert (await client.post("/x", content=b"1")).json() == {"connection": 1}
            assert (await client.post("/x", content=b"2")).json() == {"connection": 2}
        assert connections[0] == 2

    asyncio.run(scenario())


def test_a_silent_upstream_times_out() -> None:
    async def scenario() -> None:
        server, url, _ = await serve(silent)
        async with server, httpx.AsyncClient(transport=FastTransport(), base_url=url, timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/x", content=b"{}")

    asyncio.run(scenario())


def test_nothing_listening_is_a_connect_error() -> None:
    async def scenario() -> None:
        async with httpx.AsyncClient(transport=FastTransport(), base_url=f"http://127.0.0.1:{free_port()}") as client:
            with pytest.raises(httpx.ConnectError):
                await client.post("/x", content=b"{}")

    asyncio.run(scenario())


def test_a_body_cut_short_is_a_protocol_error_and_the_connection_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await read_request(reader)
        if number == 1:
            writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial":')
            await writer.drain()
            return
        writer.write(json_response(b'{"ok":true}'))
        await writer.drain()

    async def scenario() -> None:
        server, url, connections = await serve(handler)
        async with server, httpx.AsyncClient(transport=FastTransport(), base_url=url) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post("/x", content=b"{}")
            assert (await client.post("/x", content=b"{}")).json() == {"ok": True}
        assert connections[0] == 2

    asyncio.run(scenario())


def test_connection_close_is_honoured() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        while await read_request(reader) is not None:
            writer.write(json_response(b'{"n":%d}' % number, b"connection: close\r\n"))
            await writer.drain()

    async def scenario() -> None:
        server, url, connections = await serve(handler)
        transport = FastTransport()
        async with server, httpx.AsyncClient(transport=transport, base_url=url) as client:
            assert (await client.post("/x", content=b"{}")).json() == {"n": 1}
            assert (await client.post("/x", content=b"{}")).json() == {"n": 2}
        assert transport.opened == 2

    asyncio.run(scenario())


def test_a_large_body_streams_through_with_flow_control() -> None:
    size = 3 * 1024 * 1024

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"x" * 65536)
            await writer.drain()

    async def scenario() -> None:
        server, url, _ = await serve(handler)
        async with server, httpx.AsyncClient(transport=FastTransport(), base_url=url) as client:
            async with client.stream("POST", "/big", content=b"{}") as response:
                total = 0
                async for piece in response.aiter_raw():
                    total += len(piece)
                    await asyncio.sleep(0)
        assert total == size

    asyncio.run(scenario())


def test_prepared_post_sends_what_httpx_would_and_reads_the_whole_answer() -> None:
    """The lean non-streaming path: same headers as httpx (minus compression), pooled, errors alike."""
    seen: list[bytes] = []

    async def recorder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while (request := await read_request(reader)) is not None:
            seen.append(request)
            body = request.split(b"\r\n\r\n", 1)[1]
            writer.write(json_response(b'{"echo":' + body + b"}", b"x-upstream: yes\r\n"))
            await writer.drain()

    async def main() -> None:
        server, url, connections = await serve(recorder)
        transport = FastTransport()
        headers = httpx.Headers({"authorization": "Bearer sk-test", "content-type": "application/json"})
        target = PreparedPost.build(httpx.URL(url + "/v1/chat/completions"), headers, {"read": 5, "connect": 5})
        try:
            first = await transport.post(target, b'{"n":1}')
            second = await transport.post(target, b'{"n":22}')
        finally:
            await transport.aclose()
            server.close()
        assert (first.status, first.content, second.content) == (200, b'{"echo":{"n":1}}', b'{"echo":{"n":22}}')
        assert first.header(b"x-upstream") == b"yes" and connections[0] == 1
        head = seen[1].split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert head[0] == b"POST /v1/chat/completions HTTP/1.1"
        fields = {line.split(b": ", 1)[0].lower(): line.split(b": ", 1)[1] for line in head[1:]}
        assert fields[b"authorization"] == b"Bearer sk-test" and fields[b"content-length"] == b"8"
        assert fields[b"accept-encoding"] == b"identity" and fields[b"host"] == url.removeprefix("http://").encode()

    asyncio.run(main())


def test_prepared_post_times_out_and_fails_like_httpx() -> None:
    async def main() -> None:
        server, url, _ = await serve(silent)
        transport = FastTransport()
        target = PreparedPost.build(httpx.URL(url + "/x"), httpx.Headers(), {"read": 0.2, "connect": 5})
        try:
            with pytest.raises(httpx.ReadTimeout):
                await transport.post(target, b"{}")
            dead = PreparedPost.build(httpx.URL(f"http://127.0.0.1:{free_port()}/x"), httpx.Headers(), {"connect": 2})
            with pytest.raises(httpx.ConnectError):
                await transport.post(dead, b"{}")
        finally:
            await transport.aclose()
            server.close()

    asyncio.run(main())


def test_a_compressing_upstream_is_decoded_on_both_lean_paths() -> None:
    """We ask for identity; gzip sent anyway is undone, an unknown encoding is a DecodingError."""
    import gzip

    async def gzipper(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while (request := await read_request(reader)) is not None:
            body = gzip.compress(b'{"zipped":true}') if b"/gz" in request else b"???"
            encoding = b"gzip" if b"/gz" in request else b"br"
            writer.write(json_response(body, b"content-encoding: " + encoding + b"\r\n"))
            await writer.drain()

    async def main() -> None:
        server, url, _ = await serve(gzipper)
        transport = FastTransport()
        timeouts = {"read": 5, "connect": 5}
        try:
            zipped = PreparedPost.build(httpx.URL(url + "/gz"), httpx.Headers(), timeouts)
            assert (await transport.post(zipped, b"{}")).content == b'{"zipped":true}'
            stream = await transport.open(zipped, b"{}")
            try:
                assert await stream.aread() == b'{"zipped":true}'
            finally:
                await stream.aclose()
            with pytest.raises(httpx.DecodingError):
                await transport.post(PreparedPost.build(httpx.URL(url + "/br"), httpx.Headers(), timeouts), b"{}")
        finally:
            await transport.aclose()
            server.close()

    asyncio.run(main())
