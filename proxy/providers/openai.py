"""OpenAI-compatible upstreams: OpenAI, OpenRouter, Ollama's /v1, vLLM, LM Studio."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from ..types import JSON
from .base import Provider, iter_sse_data, translate_transport_errors


class OpenAIProvider(Provider):
    def auth_headers(self) -> dict[str, str]:
        headers = dict(self.config.headers)
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        return headers

    async def complete(self, body: JSON) -> JSON:
        return await self.post_json("/chat/completions", body)

    async def stream(self, body: JSON) -> AsyncIterator[bytes]:
        async with self.open_stream("/chat/completions", body) as response:
            with translate_transport_errors(self.name):
                async for data in iter_sse_data(response):
                    if data == b"[DONE]":
                        return
                    yield data

    async def passthrough(self, path: str, body: JSON) -> JSON:
        return await self.post_json(path, body)

    async def check(self) -> bool:
        try:
            response = await self.client.get("/models", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code < 500
