"""The seam between the gateway and an upstream wire format.

Every adapter speaks OpenAI chat completions to the rest of the gateway: it
takes an OpenAI-shaped request body (with `model` already set to the upstream's
own model name) and returns an OpenAI-shaped response or a stream of OpenAI
chunk JSON payloads. httpx errors become gateway errors here and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal, Protocol

import httpx
import orjson

from ..config import ProviderConfig
from ..errors import GatewayError, InvalidRequest, UpstreamError, UpstreamUnavailable
from ..types import JSON
from .transport import FastTransport, PreparedPost


class Provider:
    """Base adapter: owns one shared `httpx.AsyncClient` with keep-alive."""

    def __init__(self, name: str, config: ProviderConfig, client: httpx.AsyncClient | None = None) -> None:
        self.name = name
        self.config = config
        self.transport = FastTransport(max_keepalive_connections=200, keepalive_expiry=60) if client is None else None
        self.client = client or httpx.AsyncClient(
            base_url=config.base_url,
            headers=self.auth_headers(),
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            transport=self.transport,
        )
        self._fast: dict[str, httpx.URL | None] = {}
        self._headers = {
            kind: _merged(self.client.headers, extra)
            for kind, extra in (("json", _JSON_HEADERS), ("sse", _SSE_HEADERS))
        }
        self._extensions = {"timeout": self.client.timeout.as_dict()}
        self._prepared_posts: dict[tuple[str, str], PreparedPost | None] = {}

    def auth_headers(self) -> dict[str, str]:
        return dict(self.config.headers)

    async def complete(self, body: JSON) -> JSON:
        raise NotImplementedError

    def stream(self, body: JSON) -> AsyncIterator[bytes]:
        """Yield each OpenAI chunk as JSON bytes, without the `data: ` framing."""
        raise NotImplementedError

    async def passthrough(self, path: str, body: JSON) -> JSON:
        raise InvalidRequest(f"provider {self.name!r} does not serve {path}", code="unsupported_endpoint")

    async def check(self) -> bool:
        """Cheap liveness probe used at start-up and by /health."""
        return True

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- helpers shared by the HTTP adapters ---------------------------------

    def _fast_url(self, path: str) -> httpx.URL | None:
        """The absolute URL for `path` when our own transport would carry it, else None.

        None (use `client.send`) when httpx would route the URL elsewhere, e.g.
        to a proxy from HTTP(S)_PROXY, or when a client was injected.
        """
        if path not in self._fast:
            url = self.client.build_request("POST", path).url
            try:
                ours = self.transport is not None and self.client._transport_for_url(url) is self.transport
            except AttributeError:  # httpx internals moved: take the documented path
                ours = False
            self._fast[path] = url if ours else None
        return self._fast[path]

    async def _post(self, path: str, content: bytes, kind: str, *, stream: bool) -> httpx.Response:
        """POST `content`; the response is read unless `stream`.

        Hot path: when our transport carries the URL, the request goes straight
        to it as an `httpx.Request` with precomputed URL, headers and timeouts.
        `AsyncClient.send` would add per-request URL merging, header merging and
        a cookie jar (cookies from an upstream API have no business being kept
        across all callers): about a third of the gateway's CPU per request.
        """
        url = self._fast_url(path)
        if url is None or self.transport is None:
            request = self.client.build_request("POST", path, content=content, headers=self._headers[kind])
            return await self.client.send(request, stream=stream)
        request = httpx.Request("POST", url, content=content, headers=self._headers[kind], extensions=self._extensions)
        response = await self.transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    def _prepared(self, path: str, kind: Literal["json", "sse"] = "json") -> PreparedPost | None:
        key = (path, kind)
        if key not in self._prepared_posts:
            url = self._fast_url(path)
            self._prepared_posts[key] = (
                None
                if url is None or self.transport is None
                else PreparedPost.build(url, self._headers[kind], self._extensions["timeout"])
            )
        return self._prepared_posts[key]

    async def _post_raw(self, path: str, content: bytes) -> tuple[int, bytes, str | None]:
        """Status, body and Retry-After of a non-streamed POST, on the lean path when our transport carries it."""
        target = self._prepared(path)
        if target is None or self.transport is None:
            response = await self._post(path, content, "json", stream=False)
            return response.status_code, response.content, response.headers.get("retry-after")
        raw = await self.transport.post(target, content)
        return raw.status, raw.content, _text(raw.header(b"retry-after"))

    async def post_json(self, path: str, body: JSON) -> JSON:
        with translate_transport_errors(self.name):
            status, content, retry_after = await self._post_raw(path, orjson.dumps(body))
        if status >= 400:
            raise self.upstream_error(status, content, retry_after)
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"{self.name} answered with a body that is not JSON",
                status_code=502,
                provider=self.name,
                code="upstream_bad_response",
            ) from None
        if not isinstance(parsed, dict):
            raise UpstreamError(f"{self.name} answered with unexpected JSON", status_code=502, provider=self.name)
        return parsed

    @asynccontextmanager
    async def open_stream(self, path: str, body: JSON) -> AsyncIterator[ByteSource]:
        target = self._prepared(path, "sse")
        stream: ByteSource
        with translate_transport_errors(self.name):
            if target is None or self.transport is None:
                response = await self._post(path, orjson.dumps(body), "sse", stream=True)
                stream, status, retry_after = response, response.status_code, response.headers.get("retry-after")
            else:
                raw = await self.transport.open(target, orjson.dumps(body))
                stream, status, retry_after = raw, raw.status, _text(raw.header(b"retry-after"))
        try:
            if status >= 400:
                with translate_transport_errors(self.name):
                    content = await stream.aread()
                raise self.upstream_error(status, content, retry_after)
            yield stream
        finally:
            await stream.aclose()

    def upstream_error(self, status: int, content: bytes, retry_after: str | None) -> UpstreamError:
        message, code = _error_message(content)
        passed_headers = {}
        if retry_after is not None:
            passed_headers["Retry-After"] = retry_after
        return UpstreamError(
            f"{self.name} returned HTTP {status}: {message}",
            status_code=status,
            provider=self.name,
            code=code or ("rate_limit_exceeded" if status == 429 else f"upstream_{status}"),
            error_type="rate_limit_error"
            if status == 429
            else ("invalid_request_error" if status < 500 else "upstream_error"),
            headers=passed_headers,
        )


_JSON_HEADERS = {"content-type": "application/json"}
_SSE_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


def _merged(defaults: httpx.Headers, extra: dict[str, str]) -> httpx.Headers:
    headers = httpx.Headers(defaults)
    headers.update(extra)
    return headers


def _error_message(content: bytes) -> tuple[str, str | None]:
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError:
        text = content.decode("utf-8", "replace").strip()
        return (text[:300] or "no details"), None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        return str(error.get("message") or error), (str(code) if code else None)
    if isinstance(error, str):
        return error, None
    return str(parsed)[:300], None


class translate_transport_errors:
    """Turn httpx's transport failures into gateway errors a client can act on."""

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is None or isinstance(exc, GatewayError):
            return False
        if isinstance(exc, httpx.TimeoutException):
            raise UpstreamUnavailable(
                f"{self.provider} did not answer in time ({type(exc).__name__})",
                provider=self.provider,
                status_code=504,
                code="upstream_timeout",
            ) from None
        if isinstance(exc, httpx.TransportError):
            raise UpstreamUnavailable(
                f"cannot reach {self.provider}: {type(exc).__name__}",
                provider=self.provider,
            ) from None
        return False


class ByteSource(Protocol):
    """A response body read as it arrives: an `httpx.Response` or our transport's `RawStream`."""

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aread(self) -> bytes: ...

    async def aclose(self) -> None: ...


async def iter_sse_data(response: ByteSource) -> AsyncIterator[bytes]:
    """Yield the `data:` payload of each server-sent event as it arrives.

    Splitting bytes ourselves avoids decoding and re-encoding every line.
    """
    buffer = b""
    async for piece in response.aiter_bytes():
        buffer += piece
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line = buffer[:end].rstrip(b"\r")
            buffer = buffer[end + 1 :]
            if line.startswith(b"data:"):
                yield line[5:].lstrip(b" ")
    if buffer.startswith(b"data:"):
        yield buffer[5:].strip()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
