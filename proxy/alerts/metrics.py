"""Rolling request figures in one-minute buckets, fed from the request path.

`observe()` only adds to an in-process buffer (no I/O on the request path); the
alert loop flushes the buffer into the shared store (Redis, so every worker and
replica adds to the same figures, or a dict in process) and reads windows back.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from ..types import UsageEvent

BUCKET_SECONDS = 60
MAX_LATENCIES = 1000  # per minute: an hour's window still has 60,000 for its p95


@dataclass
class Figures:
    """Sums over a window (or one bucket)."""

    requests: int = 0
    errors: int = 0
    cost_usd: float = 0.0
    latencies: list[float] = field(default_factory=list)
    latency_count: int = 0  # latencies seen, of which `latencies` is a sample
    provider_requests: dict[str, int] = field(default_factory=dict)
    provider_failures: dict[str, int] = field(default_factory=dict)
    project_cost: dict[str, float] = field(default_factory=dict)

    def add(self, other: Figures) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.cost_usd += other.cost_usd
        self.latencies.extend(other.latencies)
        self.latency_count += other.latency_count
        for name, count in other.provider_requests.items():
            self.provider_requests[name] = self.provider_requests.get(name, 0) + count
        for name, count in other.provider_failures.items():
            self.provider_failures[name] = self.provider_failures.get(name, 0) + count
        for name, cost in other.project_cost.items():
            self.project_cost[name] = self.project_cost.get(name, 0.0) + cost

    def sample_latency(self, latency_ms: float) -> None:
        """Keep at most MAX_LATENCIES per bucket, a uniform sample (reservoir), so memory stays flat."""
        self.latency_count += 1
        if len(self.latencies) < MAX_LATENCIES:
            self.latencies.append(latency_ms)
            return
        slot = random.randrange(self.latency_count)
        if slot < MAX_LATENCIES:
            self.latencies[slot] = latency_ms

    def keep_bounded(self) -> None:
        if len(self.latencies) > MAX_LATENCIES:
            self.latencies = random.sample(self.latencies, MAX_LATENCIES)

    def p95(self) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _failed(event: UsageEvent) -> bool:
    return event.status >= 500


class LiveMetrics:
    def __init__(self, redis: aioredis.Redis | None, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "alerts:m:"
        self.pending: dict[int, Figures] = {}
        self.local: dict[int, Figures] = {}

    def observe(self, event: UsageEvent) -> None:
        bucket = int(event.started_at // BUCKET_SECONDS) * BUCKET_SECONDS
        figures = self.pending.setdefault(bucket, Figures())
        figures.requests += 1
        figures.errors += _failed(event)
        figures.cost_usd += event.cost_usd
        figures.project_cost[event.project] = figures.project_cost.get(event.project, 0.0) + event.cost_usd
        if event.status < 400:
            figures.sample_latency(event.latency_ms)
        if event.provider:
            figures.provider_requests[event.provider] = figures.provider_requests.get(event.provider, 0) + 1
            if _failed(event):
                figures.provider_failures[event.provider] = figures.provider_failures.get(event.provider, 0) + 1

    async def flush(self, keep_seconds: int, latency_seconds: int, now: float | None = None) -> None:
        """Move the buffer to the store. Counts live `keep_seconds`; latencies, which only
        latency rules read and which are most of the memory, live `latency_seconds` (0: none)."""
        pending, self.pending = self.pending, {}
        if self.redis is None:
            now = time.time() if now is None else now
            for bucket, figures in pending.items():
                stored = self.local.setdefault(bucket, Figures())
                stored.add(figures)
                stored.keep_bounded()
            for bucket in [b for b in self.local if b + BUCKET_SECONDS < now - keep_seconds]:
                del self.local[bucket]
            for bucket, stored in self.local.items():
                if stored.latencies and bucket + BUCKET_SECONDS < now - latency_seconds:
                    stored.latencies = []
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket, figures in pending.items():
                key = f"{self.prefix}{bucket}"
                pipe.hincrby(key, "requests", figures.requests)
                pipe.hincrby(key, "errors", figures.errors)
                pipe.hincrbyfloat(key, "cost", figures.cost_usd)
                for name, cost in figures.project_cost.items():
                    pipe.hincrbyfloat(key, f"project:{name}", cost)
                for name, count in figures.provider_requests.items():
                    pipe.hincrby(key, f"preq:{name}", count)
                for name, count in figures.provider_failures.items():
                    pipe.hincrby(key, f"pfail:{name}", count)
                if figures.latencies and latency_seconds > 0:
                    pipe.rpush(key + ":lat", *figures.latencies[:MAX_LATENCIES])
                    pipe.ltrim(key + ":lat", 0, MAX_LATENCIES - 1)
                    pipe.expire(key + ":lat", latency_seconds)
                pipe.expire(key, keep_seconds)
            await pipe.execute()

    async def window(self, seconds: int, now: float) -> Figures:
        first = int((now - seconds) // BUCKET_SECONDS) * BUCKET_SECONDS
        buckets = list(range(first, int(now) + 1, BUCKET_SECONDS))
        total = Figures()
        if self.redis is None:
            for bucket in buckets:
                if bucket in self.local:
                    total.add(self.local[bucket])
            return total
        async with self.redis.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.hgetall(f"{self.prefix}{bucket}")
                pipe.lrange(f"{self.prefix}{bucket}:lat", 0, -1) if seconds <= 6 * 3600 else pipe.exists("")
            rows: list[Any] = await pipe.execute()
        for raw, latencies in zip(rows[0::2], rows[1::2], strict=True):
            fields = {_text(k): _text(v) for k, v in raw.items()}
            figures = Figures(
                requests=int(fields.pop("requests", 0)),
                errors=int(fields.pop("errors", 0)),
                cost_usd=float(fields.pop("cost", 0.0)),
                latencies=[float(x) for x in latencies] if isinstance(latencies, list) else [],
            )
            for name, value in fields.items():
                kind, _, label = name.partition(":")
                if kind == "project":
                    figures.project_cost[label] = float(value)
                elif kind == "preq":
                    figures.provider_requests[label] = int(value)
                elif kind == "pfail":
                    figures.provider_failures[label] = int(value)
            total.add(figures)
        return total


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
