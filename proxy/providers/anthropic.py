"""Anthropic Messages API upstream, translated to and from OpenAI chat completions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from ..errors import UpstreamError
from ..types import JSON
from . import anthropic_format as fmt
from .base import Provider, iter_sse_data, translate_transport_errors

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(Provider):
    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION, **self.config.headers}
        if self.config.api_key:
            headers["x-api-key"] = self.config.api_key
        return headers

    async def complete(self, body: JSON) -> JSON:
        response = await self.post_json("/v1/messages", fmt.request_to_anthropic(body))
        return fmt.response_to_openai(response)

    async def stream(self, body: JSON) -> AsyncIterator[bytes]:
        translator = fmt.StreamTranslator()
        async with self.open_stream("/v1/messages", fmt.request_to_anthropic({**body, "stream": True})) as response:
            with translate_transport_errors(self.name):
                async for data in iter_sse_data(response):
                    try:
                        event = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        continue
                    if event.get("type") == "error":
                        error = event.get("error") or {}
                        status = 529 if error.get("type") == "overloaded_error" else 502
                        raise UpstreamError(
                            f"{self.name} stream failed: {error.get('message', 'unknown error')}",
                            status_code=status,
                            provider=self.name,
                            code=error.get("type"),
                        )
                    for chunk in translator.feed(event):
                        yield chunk
