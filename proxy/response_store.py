"""Stored Responses, so a follow-up can send `previous_response_id` instead of the history.

A record is the Response object plus the conversation's chat messages up to
and including it (instructions excluded) and the project that created it.
Records live in Redis under `<redis_prefix>responses:` when Redis is
configured (shared by every worker and replica), else in a bounded
in-process LRU. Both expire after `responses.store_ttl_seconds`.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .config import ResponsesConfig
from .errors import ServiceUnavailable
from .types import JSON

log = logging.getLogger("proxy.responses")


class ResponseStore(Protocol):
    async def get(self, response_id: str) -> JSON | None: ...

    async def put(self, response_id: str, record: JSON) -> None: ...

    async def delete(self, response_id: str) -> bool: ...


class MemoryResponseStore:
    def __init__(self, max_items: int, ttl_seconds: int) -> None:
        self.max_items = max_items
        self.ttl = ttl_seconds
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, response_id: str) -> JSON | None:
        found = self._items.get(response_id)
        if found is None:
            return None
        expires, raw = found
        if expires < time.monotonic():
            del self._items[response_id]
            return None
        self._items.move_to_end(response_id)
        record: JSON = orjson.loads(raw)
        return record

    async def put(self, response_id: str, record: JSON) -> None:
        # Stored as bytes so a caller mutating its dicts cannot change history.
        self._items[response_id] = (time.monotonic() + self.ttl, orjson.dumps(record))
        self._items.move_to_end(response_id)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    async def delete(self, response_id: str) -> bool:
        return self._items.pop(response_id, None) is not None


class RedisResponseStore:
    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: int) -> None:
        self.client = client
        self.prefix = prefix + "responses:"
        self.ttl = ttl_seconds

    async def get(self, response_id: str) -> JSON | None:
        try:
            raw = await self.client.get(self.prefix + response_id)
        except (RedisError, OSError) as error:
            raise ServiceUnavailable(
                f"the response store (Redis) is unavailable: {type(error).__name__}", code="store_unavailable"
            ) from None
        if raw is None:
            return None
        record: JSON = orjson.loads(raw)
        return record

    async def put(self, response_id: str, record: JSON) -> None:
        try:
            await self.client.set(self.prefix + response_id, orjson.dumps(record), ex=self.ttl)
        except (RedisError, OSError) as error:
            # The answer is already made; only a later previous_response_id will miss it.
            log.warning("could not store response %s: %s", response_id, type(error).__name__)

    async def delete(self, response_id: str) -> bool:
        try:
            return bool(await self.client.delete(self.prefix + response_id))
        except (RedisError, OSError) as error:
            raise ServiceUnavailable(
                f"the response store (Redis) is unavailable: {type(error).__name__}", code="store_unavailable"
            ) from None


def build_response_store(config: ResponsesConfig, redis: aioredis.Redis | None, prefix: str) -> ResponseStore:
    if redis is not None:
        return RedisResponseStore(redis, prefix, config.store_ttl_seconds)
    return MemoryResponseStore(config.memory_max_items, config.store_ttl_seconds)
