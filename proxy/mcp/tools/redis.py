"""redis_get, redis_set, redis_del: a scratch key space in the gateway's Redis.

Every key the model names is placed under `redis_prefix + mcp.redis_key_prefix`
by this module; the model cannot name a key outside it (there is no call that
takes a full key, a pattern or a raw command).
"""

from typing import Annotated

import redis.asyncio as aioredis
from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from ..safety import Refused, check_size
from ..toolbox import Toolbox
from .fs import READ_ONLY

WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
DELETES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

KeyArg = Annotated[str, Field(description="Key name inside the MCP key space (1-256 printable characters).")]


class RedisValue(BaseModel):
    key: str
    value: str | None = Field(description="The stored text, or null when the key does not exist.")
    ttl_seconds: int | None = Field(
        description="Seconds until the key expires; null when it never expires or does not exist."
    )


class RedisStored(BaseModel):
    key: str
    ttl_seconds: int | None


class RedisDeleted(BaseModel):
    key: str
    deleted: bool


def register(server: MCPServer, toolbox: Toolbox) -> None:
    def full_key(key: str) -> str:
        if not isinstance(key, str) or not 1 <= len(key) <= 256:
            raise Refused("key must be 1-256 characters")
        if any(ch in key for ch in "\x00\r\n") or not key.isprintable():
            raise Refused("key must be printable text without control characters")
        config = toolbox.gateway.config  # the live config: a reload may change the prefix
        return config.redis_prefix + config.mcp.redis_key_prefix + key

    def client() -> aioredis.Redis:
        if toolbox.gateway.redis is None:
            raise Refused("Redis is not configured on this gateway (set REDIS_URL)")
        return toolbox.gateway.redis

    @server.tool(annotations=READ_ONLY)
    async def redis_get(key: KeyArg) -> RedisValue:
        """Read a text value from the MCP key space of the gateway's Redis."""
        redis = client()
        name = full_key(key)
        try:
            value = await redis.get(name)
            ttl = await redis.ttl(name) if value is not None else None
        except (RedisError, OSError) as error:
            raise Refused(f"Redis is unavailable: {error}") from None
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return RedisValue(key=key, value=text, ttl_seconds=ttl if ttl is not None and ttl >= 0 else None)

    @server.tool(annotations=WRITES)
    async def redis_set(
        key: KeyArg,
        value: Annotated[str, Field(description="Text to store.")],
        ttl_seconds: Annotated[
            int | None, Field(description="Expire after this many seconds (omit to keep).", gt=0)
        ] = None,
    ) -> RedisStored:
        """Store a text value in the MCP key space of the gateway's Redis, optionally with a TTL."""
        redis = client()
        settings = toolbox.settings
        check_size("value", len(value.encode("utf-8")), settings.max_write_bytes)
        if ttl_seconds is not None and ttl_seconds > settings.redis_max_ttl_seconds:
            raise Refused(f"ttl_seconds may be at most {settings.redis_max_ttl_seconds} (mcp.redis_max_ttl_seconds)")
        try:
            await redis.set(full_key(key), value, ex=ttl_seconds)
        except (RedisError, OSError) as error:
            raise Refused(f"Redis is unavailable: {error}") from None
        return RedisStored(key=key, ttl_seconds=ttl_seconds)

    @server.tool(annotations=DELETES)
    async def redis_del(key: KeyArg) -> RedisDeleted:
        """Delete a key from the MCP key space of the gateway's Redis."""
        redis = client()
        try:
            removed = await redis.delete(full_key(key))
        except (RedisError, OSError) as error:
            raise Refused(f"Redis is unavailable: {error}") from None
        return RedisDeleted(key=key, deleted=bool(removed))
