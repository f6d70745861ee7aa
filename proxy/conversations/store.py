"""The two tiers behind one door: read hot, rebuild from cold, write both.

Every change goes to the cold tier (queued, written by its own thread) and
the hot copy is replaced in the same call; a hot-tier miss or a Redis outage
only costs a read from DuckDB.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config import Config
from .cold import ColdTier, LocalCold, SharedCold
from .hot import HotTier, MemoryHot, RedisHot
from .locks import ConversationLocks
from .model import Conversation, Message

log = logging.getLogger("proxy.conversations")


class ConversationStore:
    def __init__(self, config: Config, client: aioredis.Redis | None) -> None:
        settings = config.conversations
        self.hot: HotTier = (
            RedisHot(client, config.redis_prefix, settings.hot_ttl_seconds)
            if client is not None
            else MemoryHot(settings.hot_max_conversations, settings.hot_ttl_seconds)
        )
        path = Path(config.server.data_dir) / "conversations.duckdb"
        self.cold: ColdTier = (
            SharedCold(path, config.redis_url, client, config.redis_prefix)
            if client is not None and config.redis_url
            else LocalCold(path)
        )
        self.locks = ConversationLocks(client, config.redis_prefix, settings.lock_timeout_seconds)
        self.rebuilt = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def load(self, conversation_id: str) -> Conversation | None:
        """The conversation from the hot tier, else rebuilt from the cold one (and made hot again)."""
        try:
            found = await self.hot.get(conversation_id)
        except (RedisError, OSError):
            log.warning("hot tier unavailable; reading conversation from DuckDB", exc_info=True)
            found = None
        if found is not None:
            return found
        found = await self.cold.load(conversation_id)
        if found is not None:
            self.rebuilt += 1
            await self._put_hot(found)
        return found

    async def save(
        self, conversation: Conversation, new_messages: list[Message], *, summary: bool = False, todos: bool = False
    ) -> None:
        """Record a change: the conversation row, its new messages, and a new summary or TODO version."""
        self.cold.save_conversation(conversation)
        for message in new_messages:
            self.cold.save_message(conversation.id, message)
        if summary and conversation.summary is not None:
            self.cold.save_summary(conversation.id, conversation.summary)
        if todos:
            self.cold.save_todos(conversation.id, conversation.todos_version, conversation.todos)
        await self._put_hot(conversation)

    async def _put_hot(self, conversation: Conversation) -> None:
        try:
            await self.hot.put(conversation)
        except (RedisError, OSError):
            log.warning("hot tier unavailable; conversation %s kept in DuckDB only", conversation.id, exc_info=True)

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run bookkeeping that must not be cancelled with the request (a client that hung up)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def healthy(self) -> bool:
        return self.cold.healthy

    def close(self) -> None:
        self.cold.close()
