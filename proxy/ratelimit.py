"""Rate limits: requests and tokens per minute, per token and per project.

Each limit is a GCRA bucket (a "theoretical arrival time" per key): a limit of
N per minute admits a burst of N, then one every 60/N seconds. All limits of a
request are checked first and charged only if every one admits it, in one step
(a Lua script on Redis's clock when Redis is configured, so every worker and
replica counts the same requests). Tokens are charged up front from the prompt
estimate plus `max_tokens`, and corrected upwards once the real usage is known.

The answer carries OpenAI's `x-ratelimit-*` headers; a refusal is a 429 with
`Retry-After` (and `retry-after-ms`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .config import Limits
from .errors import RateLimited
from .tokencount import estimate_messages_tokens
from .types import JSON, Principal

log = logging.getLogger("proxy.ratelimit")

PERIOD_MS = 60_000

# KEYS: one bucket per limit. ARGV: mode ("take" or "add"), then per key: limit per minute, cost.
# Returns per key: {allowed (1/0), remaining, reset_ms, retry_after_ms (-1: over the limit alone)}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local take = ARGV[1] == 'take'
local out, ok, states = {}, true, {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local cost = tonumber(ARGV[2 * i + 1])
  local interval = 60000 / limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  local allow_at = new_tat - 60000
  states[i] = new_tat
  if take and (allow_at > now or cost > limit) then
    ok = false
    local retry = allow_at - now
    if cost > limit then retry = -1 end
    out[i] = {0, math.max(0, math.floor((60000 - (tat - now)) / interval)), math.ceil(tat - now), math.ceil(retry)}
  else
    out[i] = {1, math.max(0, math.floor((60000 - (new_tat - now)) / interval)), math.ceil(new_tat - now), 0}
  end
end
if ok then
  for i = 1, #KEYS do
    redis.call('SET', KEYS[i], tostring(states[i]), 'PX', math.max(1, math.ceil(states[i] - now)))
  end
end
return out
"""


@dataclass(frozen=True)
class Bucket:
    key: str
    scope: str  # "project NAME" or "token ID"
    kind: str  # "requests" or "tokens"
    limit: int
    cost: int


@dataclass(frozen=True)
class State:
    allowed: bool
    remaining: int
    reset_ms: int
    retry_after_ms: int  # -1: the request alone is over the limit


def _duration(ms: int) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `0.5s`."""
    seconds = max(0, ms) / 1000
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest}s"


@dataclass
class Admission:
    """What was charged for one request, and the headers that report it."""

    headers: dict[str, str] = field(default_factory=dict)
    token_buckets: tuple[Bucket, ...] = ()
    charged_tokens: int = 0


class MemoryBuckets:
    """GCRA in process, for a single-process gateway (no awaits inside: atomic)."""

    def __init__(self) -> None:
        self.tat: dict[str, float] = {}

    async def run(self, take: bool, buckets: list[tuple[str, int, int]]) -> list[State]:
        now = time.time() * 1000
        states, plans, ok = [], [], True
        for key, limit, cost in buckets:
            interval = PERIOD_MS / limit
            tat = max(self.tat.get(key, 0.0), now)
            new_tat = tat + cost * interval
            allow_at = new_tat - PERIOD_MS
            plans.append((key, new_tat))
            if take and (allow_at > now or cost > limit):
                ok = False
                retry = -1 if cost > limit else math.ceil(allow_at - now)
                states.append(
                    State(False, max(0, int((PERIOD_MS - (tat - now)) // interval)), math.ceil(tat - now), retry)
                )
            else:
                states.append(
                    State(True, max(0, int((PERIOD_MS - (new_tat - now)) // interval)), math.ceil(new_tat - now), 0)
                )
        if ok:
            for key, new_tat in plans:
                self.tat[key] = new_tat
        if len(self.tat) > 100_000:
            self.tat = {k: v for k, v in self.tat.items() if v > now}
        return states


class RedisBuckets:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.script = redis.register_script(_GCRA)

    async def run(self, take: bool, buckets: list[tuple[str, int, int]]) -> list[State]:
        args: list[Any] = ["take" if take else "add"]
        for _, limit, cost in buckets:
            args += [limit, cost]
        rows = await self.script(keys=[key for key, _, _ in buckets], args=args)
        return [State(bool(a), int(r), int(reset), int(retry)) for a, r, reset, retry in rows]


class RateLimiter:
    def __init__(self, store: MemoryBuckets | RedisBuckets, prefix: str) -> None:
        self.store = store
        self.prefix = prefix + "ratelimit:"
        # Token charges waiting for their request's real usage, by request id.
        self.open: dict[str, Admission] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    @classmethod
    def build(cls, redis: aioredis.Redis | None, prefix: str) -> RateLimiter:
        return cls(RedisBuckets(redis) if redis is not None else MemoryBuckets(), prefix)

    def buckets(self, principal: Principal, project: Limits, tokens: int) -> list[Bucket]:
        scopes = [(f"project {principal.project}", f"project:{principal.project}", project)]
        if principal.token_id is not None and principal.token_limits is not None:
            scopes.append((f"token {principal.token_id}", f"token:{principal.token_id}", principal.token_limits))
        found = []
        for scope, key, limits in scopes:
            if limits.rpm:
                found.append(Bucket(f"{self.prefix}{key}:rpm", scope, "requests", limits.rpm, 1))
            if limits.tpm:
                found.append(Bucket(f"{self.prefix}{key}:tpm", scope, "tokens", limits.tpm, tokens))
        return found

    async def admit(self, principal: Principal, project: Limits, body: JSON, request_id: str) -> Admission:
        """Charge one request and its estimated tokens, or raise `RateLimited` with Retry-After."""
        token = principal.token_limits
        if not (project.rpm or project.tpm or (token is not None and (token.rpm or token.tpm))):
            return Admission()
        max_out = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        tokens = estimate_messages_tokens(body.get("messages") or [], body.get("tools")) + int(max_out)
        buckets = self.buckets(principal, project, tokens)
        try:
            states = await self.store.run(True, [(b.key, b.limit, b.cost) for b in buckets])
        except (RedisError, OSError) as error:
            log.warning("rate limit store unreachable (%s); request admitted unchecked", type(error).__name__)
            return Admission()
        headers = _headers(buckets, states)
        for bucket, state in zip(buckets, states, strict=True):
            if not state.allowed:
                raise _refusal(bucket, state, headers)
        token_buckets = tuple(b for b in buckets if b.kind == "tokens")
        admission = Admission(headers, token_buckets, tokens)
        if token_buckets:
            self.open[request_id] = admission
        return admission

    def settle_soon(self, request_id: str, used_tokens: int) -> None:
        """Charge tokens used beyond the estimate (never a refund: a bucket only moves forward)."""
        admission = self.open.pop(request_id, None)
        if admission is None or used_tokens <= admission.charged_tokens:
            return
        extra = used_tokens - admission.charged_tokens
        buckets = [(b.key, b.limit, extra) for b in admission.token_buckets]
        task = asyncio.get_running_loop().create_task(self._add(buckets))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _add(self, buckets: list[tuple[str, int, int]]) -> None:
        try:
            await self.store.run(False, buckets)
        except (RedisError, OSError) as error:
            log.warning("could not charge extra tokens (%s)", type(error).__name__)

    async def drain(self) -> None:
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def _headers(buckets: list[Bucket], states: list[State]) -> dict[str, str]:
    """Per kind, the tightest bucket: the one with the fewest remaining."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        pairs = [(b, s) for b, s in zip(buckets, states, strict=True) if b.kind == kind]
        if not pairs:
            continue
        bucket, state = min(pairs, key=lambda pair: pair[1].remaining)
        headers[f"x-ratelimit-limit-{kind}"] = str(bucket.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(state.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = _duration(state.reset_ms)
    return headers


def _refusal(bucket: Bucket, state: State, headers: dict[str, str]) -> RateLimited:
    if state.retry_after_ms < 0:
        return RateLimited(
            f"this request needs about {bucket.cost} tokens, more than the {bucket.scope} limit of {bucket.limit} "
            "tokens per minute; send a shorter prompt or a lower max_tokens",
            code="request_too_large",
            headers=headers,
        )
    retry_s = max(1, math.ceil(state.retry_after_ms / 1000))
    return RateLimited(
        f"rate limit reached for {bucket.scope}: {bucket.limit} {bucket.kind} per minute. "
        f"Retry in {_duration(state.retry_after_ms)}.",
        headers={**headers, "Retry-After": str(retry_s), "retry-after-ms": str(max(0, state.retry_after_ms))},
    )
