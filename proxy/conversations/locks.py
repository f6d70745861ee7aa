"""One turn at a time per conversation, so turns keep their order and none is lost.

In-process an `asyncio.Lock` per conversation queues turns in arrival order
(FIFO). With Redis, a lease (`SET NX PX` with a token, released only by its
holder) also keeps other workers out; a crashed holder's lease expires.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis

from ..errors import GatewayError

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class ConversationBusy(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conversation_busy"


class Lease:
    """A held conversation; `release()` is idempotent."""

    def __init__(self, locks: ConversationLocks, conversation_id: str, token: str | None) -> None:
        self._locks = locks
        self.conversation_id = conversation_id
        self._token = token
        self._released = False

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        await self._locks._release(self.conversation_id, self._token)


class ConversationLocks:
    def __init__(self, client: aioredis.Redis | None, prefix: str, timeout_seconds: float) -> None:
        self.client = client
        self.prefix = prefix
        self.timeout_seconds = timeout_seconds
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    async def acquire(self, conversation_id: str) -> Lease:
        lock, waiters = self._local.get(conversation_id) or (asyncio.Lock(), 0)
        self._local[conversation_id] = (lock, waiters + 1)
        try:
            await asyncio.wait_for(lock.acquire(), self.timeout_seconds)
        except TimeoutError:
            self._forget(conversation_id)
            raise ConversationBusy(
                f"conversation {conversation_id!r} is busy with another turn; retry shortly", param="conversationId"
            ) from None
        token: str | None = None
        if self.client is not None:
            try:
                token = await self._acquire_redis(conversation_id)
            except BaseException:
                lock.release()
                self._forget(conversation_id)
                raise
        return Lease(self, conversation_id, token)

    async def _acquire_redis(self, conversation_id: str) -> str:
        assert self.client is not None
        key = f"{self.prefix}conv:lock:{conversation_id}"
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.timeout_seconds
        pause = 0.01
        while not await self.client.set(key, token, nx=True, px=int(self.timeout_seconds * 1000)):
            if time.monotonic() > deadline:
                raise ConversationBusy(
                    f"conversation {conversation_id!r} is busy in another worker; retry shortly", param="conversationId"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)
        return token

    async def _release(self, conversation_id: str, token: str | None) -> None:
        try:
            if token is not None and self.client is not None:
                await self.client.eval(_RELEASE, 1, f"{self.prefix}conv:lock:{conversation_id}", token)
        finally:
            entry = self._local.get(conversation_id)
            if entry is not None:
                entry[0].release()
            self._forget(conversation_id)

    def _forget(self, conversation_id: str) -> None:
        """Drop the lock object once nobody waits on it, so the table stays small."""
        entry = self._local.get(conversation_id)
        if entry is None:
            return
        lock, waiters = entry
        if waiters <= 1:
            del self._local[conversation_id]
        else:
            self._local[conversation_id] = (lock, waiters - 1)
