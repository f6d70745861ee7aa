"""Exact-match response cache: plan, key, get, put, and replay as SSE.

The key is the request as the upstream would see it after routing (the model
that would answer, messages, tools and every output-changing parameter), scoped
to the caller's project. Only answers that would come out the same again are
cached by default; clients steer with `Cache-Control: no-cache|no-store` and
`x-gateway-cache: bypass|force`, operators with `cache.rules`.

Entries live in Redis under `<redis_prefix>cache:` when Redis is configured,
else in an in-process LRU bounded in bytes. A Redis error never fails a
request: the cache steps aside for a few seconds and `/health` says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .config import CacheConfig, CacheMode
from .errors import InvalidRequest
from .types import JSON, RouteDecision, Usage

log = logging.getLogger("proxy.cache")

Directive = Literal["default", "bypass", "force", "refresh"]

# Fields that never change what the model answers; everything else is keyed.
_UNKEYED = frozenset({"model", "stream_options", "user", "metadata", "store", "service_tier"})
_REDIS_TIMEOUT = 0.5
_RETRY_AFTER_OUTAGE = 3.0


def client_directive(headers: Mapping[str, str]) -> Directive:
    """What the client asked of the cache: `x-gateway-cache` wins over `Cache-Control`."""
    explicit = (headers.get("x-gateway-cache") or "").strip().lower()
    if explicit in ("bypass", "force"):
        return explicit  # type: ignore[return-value]
    if explicit:
        raise InvalidRequest(
            "x-gateway-cache must be 'bypass' or 'force'", param="x-gateway-cache", code="invalid_header"
        )
    control = (headers.get("cache-control") or "").lower()
    if "no-store" in control:
        return "bypass"
    if "no-cache" in control:
        return "refresh"
    return "default"


def unsafe_reason(body: JSON) -> str | None:
    """Why a request's answer could differ next time, or None if it is deterministic."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        return "n_gt_1"
    if body.get("temperature") == 0 or body.get("seed") is not None:
        return None
    return "not_deterministic"


def cache_key(prefix: str, project: str, decision: RouteDecision, body: JSON) -> str:
    keyed = {name: value for name, value in body.items() if name not in _UNKEYED}
    keyed["model"] = decision.model.id
    keyed["stream"] = bool(body.get("stream"))
    digest = hashlib.sha256(orjson.dumps([project, keyed], option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{prefix}cache:{project}:{digest}"


@dataclass(frozen=True, slots=True)
class CachePlan:
    """What the cache will do for one request; `skip` says why it stepped aside."""

    key: str | None = None
    read: bool = False
    write: bool = False
    skip: str | None = None


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A stored answer: the response object, or a stream's chunks; usage if it was known."""

    usage: Usage | None
    response: JSON | None = None
    frames: tuple[bytes, ...] = ()

    def encode(self) -> bytes:
        usage = None if self.usage is None else {**self.usage.to_openai(), "estimated": self.usage.estimated}
        return orjson.dumps({"usage": usage, "response": self.response, "frames": [f.decode() for f in self.frames]})

    @classmethod
    def decode(cls, raw: bytes) -> CachedAnswer:
        data = orjson.loads(raw)
        usage = Usage.from_openai(data.get("usage"))
        if usage is not None:
            usage.estimated = bool(data["usage"].get("estimated"))
        return cls(usage, data.get("response"), tuple(f.encode() for f in data.get("frames") or ()))

    async def replay(self) -> AsyncIterator[bytes]:
        """The stored stream chunks, for a `StreamRelay` to send as SSE."""
        for frame in self.frames:
            yield frame


class CacheBackend(Protocol):
    name: str

    @property
    def available(self) -> bool: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None: ...


class MemoryBackend:
    """An LRU bounded by the total size of its entries; expired entries are dropped on read."""

    name = "memory"
    available = True

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        expires, value = found
        if expires <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (time.monotonic() + ttl, value)
        self.size += len(value)
        while self.size > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, value = self._entries.pop(key)
        self.size -= len(value)


class RedisBackend:
    """Redis with a short timeout and a breaker: after an error it is not asked for a few seconds."""

    name = "redis"

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, error: BaseException) -> None:
        if self.available:
            log.warning("cache: Redis unavailable (%s); answering without the cache", error or type(error).__name__)
        self._down_until = time.monotonic() + _RETRY_AFTER_OUTAGE

    async def get(self, key: str) -> bytes | None:
        try:
            value = await asyncio.wait_for(self.client.get(key), _REDIS_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as error:
            self._failed(error)
            return None
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        try:
            await asyncio.wait_for(self.client.set(key, value, ex=ttl), _REDIS_TIMEOUT)
        except (RedisError, OSError, TimeoutError) as error:
            self._failed(error)


class ResponseCache:
    def __init__(self, config: CacheConfig, backend: CacheBackend, prefix: str) -> None:
        self.config = config
        self.backend = backend
        self.prefix = prefix

    @classmethod
    def build(cls, config: CacheConfig, redis: aioredis.Redis | None, prefix: str) -> ResponseCache:
        backend: CacheBackend = RedisBackend(redis) if redis is not None else MemoryBackend(config.memory_max_bytes)
        return cls(config, backend, prefix)

    def _rule_mode(self, project: str, decision: RouteDecision) -> CacheMode:
        for rule in self.config.rules:
            if (
                (rule.project is None or rule.project == project)
                and (rule.task is None or rule.task == decision.task)
                and (rule.tier is None or rule.tier == decision.tier)
                and (rule.model is None or rule.model == decision.model.id)
            ):
                return rule.mode
        return "auto"

    def plan(self, body: JSON, decision: RouteDecision, project: str, directive: Directive) -> CachePlan:
        if not self.config.enabled:
            return CachePlan(skip="disabled")
        if directive == "bypass":
            return CachePlan(skip="client_bypass")
        mode = self._rule_mode(project, decision)
        if mode == "never":
            return CachePlan(skip="rule")
        if mode == "auto" and directive != "force":
            reason = unsafe_reason(body)
            if reason is not None:
                return CachePlan(skip=reason)
        if not self.backend.available:
            return CachePlan(skip="unavailable")
        key = cache_key(self.prefix, project, decision, body)
        return CachePlan(key, read=directive != "refresh", write=True)

    async def get(self, plan: CachePlan) -> CachedAnswer | None:
        if plan.key is None or not plan.read:
            return None
        raw = await self.backend.get(plan.key)
        if raw is None:
            return None
        try:
            return CachedAnswer.decode(raw)
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            log.warning("cache: ignoring an unreadable entry")
            return None

    async def put(self, plan: CachePlan, answer: CachedAnswer) -> None:
        if plan.key is None or not plan.write:
            return
        raw = answer.encode()
        if len(raw) <= self.config.max_entry_bytes:
            await self.backend.set(plan.key, raw, self.config.ttl_seconds)

    async def tee(self, plan: CachePlan, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Pass a stream's chunks on; store them once it has finished cleanly (before `[DONE]` goes out)."""
        frames: list[bytes] = []
        usage: Usage | None = None
        finished = failed = False
        try:
            async for chunk in chunks:
                frames.append(chunk)
                if b'"usage"' in chunk or b'"finish_reason"' in chunk or b'"error"' in chunk:
                    try:
                        parsed = orjson.loads(chunk)
                    except orjson.JSONDecodeError:
                        parsed = {}
                    failed = failed or "error" in parsed
                    usage = Usage.from_openai(parsed.get("usage")) or usage
                    finished = finished or any(c.get("finish_reason") for c in parsed.get("choices") or ())
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        if finished and not failed:
            await self.put(plan, CachedAnswer(usage, frames=tuple(frames)))

    def status(self) -> JSON:
        return {"backend": self.backend.name, "enabled": self.config.enabled, "available": self.backend.available}
