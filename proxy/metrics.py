"""Live counters for `/metrics` (Prometheus text) and `/v1/server-stats`, fed by usage events.

Every finished request passes its `UsageEvent` to `observe()`: a few dict
increments on the event loop, no I/O. Samples are kept as one flat map from the
rendered sample name (`aigw_tokens_total{kind="input",model="x"}`) to its value,
so merging the workers of one gateway is a sum: with Redis, each worker
publishes its map under `<redis_prefix>metrics:<worker>` every few seconds and
either endpoint adds up the live ones.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .types import UsageEvent

log = logging.getLogger("proxy.metrics")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

FAMILIES: dict[str, tuple[str, str]] = {
    "aigw_requests_total": ("counter", "Requests finished, by answering model, HTTP status and cache result."),
    "aigw_request_duration_seconds": ("histogram", "Time from request to last byte, by answering model."),
    "aigw_llm_calls_total": ("counter", "Requests answered by an upstream (not from the cache)."),
    "aigw_tokens_total": ("counter", "Tokens by model and kind (input, output, cached input)."),
    "aigw_cost_usd_total": ("counter", "Cost in USD by model (exact or estimated)."),
    "aigw_cache_hits_total": ("counter", "Requests answered from the response cache."),
    "aigw_cache_saved_usd_total": ("counter", "What cache hits would have cost."),
    "aigw_upstream_errors_total": ("counter", "Failed requests that reached a provider, by provider and error type."),
    "aigw_process_resident_memory_bytes": ("gauge", "Resident memory of each worker process."),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def sample(name: str, **labels: str) -> str:
    if not labels:
        return name
    inner = ",".join(f'{key}="{_escape(str(value))}"' for key, value in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def resident_memory_bytes() -> int:
    """VmRSS from /proc (Linux); 0 elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


class _ModelKeys:
    """The rendered sample names of one model, built once: rendering labels per event cost more than counting."""

    __slots__ = ("buckets", "inf", "sum", "count", "tokens", "cost")

    def __init__(self, model: str) -> None:
        self.buckets = tuple(
            sample("aigw_request_duration_seconds_bucket", model=model, le=f"{bound:g}") for bound in BUCKETS
        )
        self.inf = sample("aigw_request_duration_seconds_bucket", model=model, le="+Inf")
        self.sum = sample("aigw_request_duration_seconds_sum", model=model)
        self.count = sample("aigw_request_duration_seconds_count", model=model)
        self.tokens = {
            kind: sample("aigw_tokens_total", model=model, kind=kind) for kind in ("input", "output", "cached")
        }
        self.cost = sample("aigw_cost_usd_total", model=model)


class Metrics:
    def __init__(self) -> None:
        self.values: defaultdict[str, float] = defaultdict(float)
        self.worker = f"{os.getpid()}"
        # Sample names by label values; label values are few (models, statuses, providers).
        self._models: dict[str, _ModelKeys] = {}
        self._names: dict[tuple[str, ...], str] = {}

    def _name(self, *parts: str) -> str:
        name = self._names.get(parts)
        if name is None:
            family, *labels = parts
            name = self._names[parts] = sample(family, **dict(zip(labels[::2], labels[1::2], strict=True)))
        return name

    def observe(self, event: UsageEvent) -> None:
        values = self.values
        model = event.routed_model or "none"
        keys = self._models.get(model)
        if keys is None:
            keys = self._models[model] = _ModelKeys(model)
        cache = "hit" if event.cache_hit else "miss"
        values[self._name("aigw_requests_total", "model", model, "status", str(event.status), "cache", cache)] += 1
        seconds = event.latency_ms / 1000
        # Cumulative buckets: every bound at or above the value counts it.
        for index in range(bisect.bisect_left(BUCKETS, seconds), len(BUCKETS)):
            values[keys.buckets[index]] += 1
        values[keys.inf] += 1
        values[keys.sum] += seconds
        values[keys.count] += 1
        if event.cache_hit:
            values["aigw_cache_hits_total"] += 1
            values["aigw_cache_saved_usd_total"] += event.cache_saved_usd
        elif event.provider is not None and event.status < 400:
            values[self._name("aigw_llm_calls_total", "provider", event.provider)] += 1
        if event.input_tokens:
            values[keys.tokens["input"]] += event.input_tokens
        if event.output_tokens:
            values[keys.tokens["output"]] += event.output_tokens
        if event.cached_tokens:
            values[keys.tokens["cached"]] += event.cached_tokens
        if event.cost_usd:
            values[keys.cost] += event.cost_usd
        if event.provider is not None and event.status >= 400 and not event.cache_hit:
            kind = event.error_type or f"http_{event.status}"
            values[self._name("aigw_upstream_errors_total", "provider", event.provider, "type", kind)] += 1

    def snapshot(self) -> dict[str, float]:
        values = dict(self.values)
        values[sample("aigw_process_resident_memory_bytes", worker=self.worker)] = resident_memory_bytes()
        return values


def merge(snapshots: Iterable[Mapping[str, float]]) -> dict[str, float]:
    total: defaultdict[str, float] = defaultdict(float)
    for snapshot in snapshots:
        for key, value in snapshot.items():
            total[key] += value
    return dict(total)


def _family(key: str) -> str:
    name = key.split("{", 1)[0]
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in FAMILIES:
            return name.removesuffix(suffix)
    return name


def render(values: Mapping[str, float]) -> str:
    """Prometheus text exposition format 0.0.4."""
    grouped: defaultdict[str, list[str]] = defaultdict(list)
    for key in sorted(values):
        value = values[key]
        grouped[_family(key)].append(f"{key} {int(value) if float(value).is_integer() else repr(float(value))}")
    lines: list[str] = []
    for family, (kind, text) in FAMILIES.items():
        lines.append(f"# HELP {family} {text}")
        lines.append(f"# TYPE {family} {kind}")
        lines.extend(grouped.get(family, []))
    return "\n".join(lines) + "\n"


def _total(values: Mapping[str, float], family: str, **labels: str) -> float:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(v for k, v in values.items() if k.split("{", 1)[0] == family and all(w in k for w in wanted))


def server_stats(values: Mapping[str, float], started_at: float, providers: Mapping[str, bool]) -> dict[str, object]:
    """The seed's `/v1/server-stats` shape, from merged samples."""
    uptime = max(0, int(time.time() - started_at))
    hours, rest = divmod(uptime, 3600)
    minutes, seconds = divmod(rest, 60)
    requests = _total(values, "aigw_request_duration_seconds_count")
    duration = _total(values, "aigw_request_duration_seconds_sum")
    tokens_in = _total(values, "aigw_tokens_total", kind="input")
    tokens_out = _total(values, "aigw_tokens_total", kind="output")
    memory = _total(values, "aigw_process_resident_memory_bytes") / (1024 * 1024)
    return {
        "uptime": {"seconds": uptime, "formatted": f"{hours}h {minutes}m {seconds}s"},
        "requests": {
            "total": int(requests),
            "averageDuration": round(duration * 1000 / requests, 1) if requests else 0,
        },
        "llm": {
            "totalCalls": int(_total(values, "aigw_llm_calls_total")),
            "tokens": {"input": int(tokens_in), "output": int(tokens_out), "total": int(tokens_in + tokens_out)},
            "cost": {"total": round(_total(values, "aigw_cost_usd_total"), 9), "currency": "USD"},
        },
        "cache": {
            "hits": int(_total(values, "aigw_cache_hits_total")),
            "savedUsd": round(_total(values, "aigw_cache_saved_usd_total"), 9),
        },
        "memory": {"heapUsed": round(memory, 1), "heapTotal": round(memory, 1), "unit": "MB"},
        "providers": dict(providers),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    }


class SharedMetrics:
    """This worker's metrics, and with Redis the sum over every live worker of the gateway."""

    def __init__(self, metrics: Metrics, redis: aioredis.Redis | None, prefix: str, interval: float = 2.0) -> None:
        self.metrics = metrics
        self.redis = redis
        self.pattern = prefix + "stats:worker:*"
        self.key = f"{prefix}stats:worker:{uuid.uuid4().hex[:12]}"
        self.interval = interval

    async def publish_forever(self) -> None:
        """Keep this worker's snapshot in Redis (expiring, so a dead worker drops out)."""
        assert self.redis is not None
        while True:
            try:
                await self.redis.set(self.key, orjson.dumps(self.metrics.snapshot()), ex=int(self.interval * 5))
            except (RedisError, OSError) as error:
                log.debug("metrics: cannot publish to Redis: %s", error)
            await asyncio.sleep(self.interval)

    async def collect(self) -> dict[str, float]:
        own = self.metrics.snapshot()
        if self.redis is None:
            return own
        try:
            keys = [
                key async for key in self.redis.scan_iter(match=self.pattern, count=1000) if key.decode() != self.key
            ]
            raw = await self.redis.mget(keys) if keys else []
        except (RedisError, OSError):
            return own
        others = [orjson.loads(item) for item in raw if item]
        return merge([own, *others])

    async def forget(self) -> None:
        if self.redis is not None:
            try:
                await self.redis.delete(self.key)
            except (RedisError, OSError):
                pass  # it expires by itself
