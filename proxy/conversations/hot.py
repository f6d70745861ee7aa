"""The hot tier: summary, recent messages and TODO list of active conversations, with a TTL.

Redis when configured (keys under `redis_prefix`, named as in the seed:
`conv:summary:{id}`, `conv:messages:{id}`, `todo:list:{id}`, plus
`conv:meta:{id}`), else a bounded in-process LRU. Either may lose a
conversation at any time (TTL, eviction, a flushed Redis); the store then
rebuilds it from the cold tier.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

import orjson
import redis.asyncio as aioredis

from .model import Conversation, Message, Summary, Todo, decode, encode


class HotTier(Protocol):
    async def get(self, conversation_id: str) -> Conversation | None: ...

    async def put(self, conversation: Conversation) -> None: ...

    async def delete(self, conversation_id: str) -> None: ...


class MemoryHot:
    """Bounded LRU with a TTL, for a single worker without Redis.

    Entries are stored serialised so callers never share mutable state with it.
    """

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, conversation_id: str) -> Conversation | None:
        entry = self._entries.get(conversation_id)
        if entry is None:
            return None
        expires_at, raw = entry
        if expires_at < time.monotonic():
            del self._entries[conversation_id]
            return None
        self._entries.move_to_end(conversation_id)
        return decode(raw)

    async def put(self, conversation: Conversation) -> None:
        self._entries[conversation.id] = (time.monotonic() + self.ttl_seconds, encode(conversation))
        self._entries.move_to_end(conversation.id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, conversation_id: str) -> None:
        self._entries.pop(conversation_id, None)


class RedisHot:
    """The seed's Redis layout, one JSON value per key; a conversation is written in one MULTI/EXEC.

    `conv:messages:{id}` holds the recent messages as one JSON array rather than
    a Redis list: turns are serialised per conversation anyway, and one bulk
    string parses far faster than hundreds of list items.
    """

    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: int) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds

    def keys(self, conversation_id: str) -> tuple[str, str, str, str]:
        p = self.prefix
        return (
            f"{p}conv:meta:{conversation_id}",
            f"{p}conv:summary:{conversation_id}",
            f"{p}conv:messages:{conversation_id}",
            f"{p}todo:list:{conversation_id}",
        )

    async def get(self, conversation_id: str) -> Conversation | None:
        meta, summary, messages, todos = await self.client.mget(self.keys(conversation_id))
        if meta is None or messages is None or todos is None:
            return None  # expired or flushed (even partly): rebuild from the cold tier
        conversation = Conversation.from_meta(orjson.loads(meta))
        conversation.summary = Summary.from_json(orjson.loads(summary)) if summary else None
        conversation.recent = [Message.from_json(m) for m in orjson.loads(messages)]
        conversation.todos = [Todo.from_json(t) for t in orjson.loads(todos)]
        covered = conversation.summary.through_seq if conversation.summary else 0
        if len(conversation.recent) != conversation.message_count - covered:
            return None
        return conversation

    async def put(self, conversation: Conversation) -> None:
        meta_key, summary_key, messages_key, todos_key = self.keys(conversation.id)
        ttl = self.ttl_seconds
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(meta_key, orjson.dumps(conversation.meta_json()), ex=ttl)
            if conversation.summary is not None:
                pipe.set(summary_key, orjson.dumps(conversation.summary.to_json()), ex=ttl)
            else:
                pipe.delete(summary_key)
            pipe.set(messages_key, orjson.dumps([m.to_json() for m in conversation.recent]), ex=ttl)
            pipe.set(todos_key, orjson.dumps([t.to_json() for t in conversation.todos]), ex=ttl)
            await pipe.execute()

    async def delete(self, conversation_id: str) -> None:
        await self.client.delete(*self.keys(conversation_id))
