"""The alert loop: flush live figures, evaluate every rule, notify once per cool-down, record firings.

Every worker and replica runs the loop; with Redis the figures are shared and
a firing's cool-down is claimed with `SET NX`, so one process notifies.
Rules and channels come from the config plus those managed through the admin
API (stored in Redis, or in process without it).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config import AlertChannel, AlertRule, Config
from .channels import send
from .metrics import Figures, LiveMetrics

log = logging.getLogger("proxy.alerts")

COST_RULE = "cost_threshold"
MAX_FIRINGS = 1000


def redacted(channel: AlertChannel) -> dict[str, Any]:
    """A channel as the admin API shows it: passwords and webhook paths (which are secrets) hidden."""
    shown = channel.model_dump(exclude_none=True)
    if channel.url:
        scheme, _, rest = channel.url.partition("://")
        shown["url"] = f"{scheme}://{rest.split('/', 1)[0]}/***"
    if channel.smtp_password:
        shown["smtp_password"] = "***"
    return shown


class AlertEngine:
    def __init__(self, config: Callable[[], Config], redis: aioredis.Redis | None, prefix: str) -> None:
        self.current_config = config
        self.redis = redis
        self.prefix = prefix + "alerts:"
        self.metrics = LiveMetrics(redis, prefix)
        self.local_rules: dict[str, AlertRule] = {}
        self.local_channels: dict[str, AlertChannel] = {}
        self.local_firings: deque[dict[str, Any]] = deque(maxlen=MAX_FIRINGS)
        self.local_cooldowns: dict[str, float] = {}
        self.client = httpx.AsyncClient(timeout=10)

    def observe(self, event: Any) -> None:
        self.metrics.observe(event)

    # -- rules, channels, firings ------------------------------------------------

    async def rules(self) -> dict[str, AlertRule]:
        alerts = self.current_config().alerts
        rules = dict(alerts.rules)
        if alerts.cost_threshold_usd is not None:
            rules.setdefault(
                COST_RULE, AlertRule(kind="cost", threshold=alerts.cost_threshold_usd, window_seconds=86400)
            )
        if self.redis is None:
            return {**rules, **self.local_rules}
        stored = await self.redis.hgetall(self.prefix + "rules")
        rules.update({_text(k): AlertRule.model_validate_json(v) for k, v in stored.items()})
        return rules

    async def channels(self) -> dict[str, AlertChannel]:
        channels = dict(self.current_config().alerts.channels)
        if self.redis is None:
            return {**channels, **self.local_channels}
        stored = await self.redis.hgetall(self.prefix + "channels")
        channels.update({_text(k): AlertChannel.model_validate_json(v) for k, v in stored.items()})
        return channels

    async def set_rule(self, name: str, rule: AlertRule | None) -> None:
        await self._set("rules", self.local_rules, name, rule)

    async def set_channel(self, name: str, channel: AlertChannel | None) -> None:
        await self._set("channels", self.local_channels, name, channel)

    async def _set(self, kind: str, local: dict[str, Any], name: str, value: AlertRule | AlertChannel | None) -> None:
        if self.redis is None:
            if value is None:
                local.pop(name, None)
            else:
                local[name] = value
        elif value is None:
            await self.redis.hdel(self.prefix + kind, name)
        else:
            await self.redis.hset(self.prefix + kind, name, value.model_dump_json())

    async def firings(self, limit: int = 100) -> list[dict[str, Any]]:
        if self.redis is None:
            return list(self.local_firings)[-limit:][::-1]
        raw = await self.redis.lrange(self.prefix + "firings", 0, limit - 1)
        return [orjson.loads(item) for item in raw]

    # -- evaluation ----------------------------------------------------------------

    async def evaluate(self, now: float | None = None) -> list[dict[str, Any]]:
        """Check every enabled rule against the live figures; notify and record what fires."""
        now = time.time() if now is None else now
        rules = {name: rule for name, rule in (await self.rules()).items() if rule.enabled}
        keep = max([r.window_seconds for r in rules.values()] + [3600]) + 120
        # Latencies are kept only as long as a latency rule looks back (a rule added later
        # starts with the latencies seen from then on).
        latency_windows = [r.window_seconds for r in rules.values() if r.kind == "latency_p95"]
        await self.metrics.flush(keep, max(latency_windows) + 120 if latency_windows else 0, now)
        windows: dict[int, Figures] = {}
        fired = []
        for name, rule in rules.items():
            if rule.window_seconds not in windows:
                windows[rule.window_seconds] = await self.metrics.window(rule.window_seconds, now)
            for subject, value, message in _check(rule, windows[rule.window_seconds]):
                if await self._claim(f"{name}:{subject}", rule.cooldown_seconds, now):
                    fired.append(await self._fire(name, rule, subject, value, f"{message} (rule {name})", now))
        return fired

    async def _claim(self, key: str, cooldown: int, now: float) -> bool:
        """True for the first process to see this condition since its cool-down began."""
        if self.redis is None:
            if self.local_cooldowns.get(key, 0) > now:
                return False
            self.local_cooldowns[key] = now + cooldown
            return True
        return bool(await self.redis.set(self.prefix + "cooldown:" + key, "1", nx=True, px=max(1, cooldown * 1000)))

    async def _fire(
        self, name: str, rule: AlertRule, subject: str, value: float, message: str, now: float
    ) -> dict[str, Any]:
        firing: dict[str, Any] = {
            "id": "alert_" + uuid.uuid4().hex[:12],
            "rule": name,
            "kind": rule.kind,
            "subject": subject,
            "value": value,
            "threshold": rule.threshold,
            "window_seconds": rule.window_seconds,
            "fired_at": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            "message": message,
        }
        channels = await self.channels()
        targets = rule.channels or tuple(channels)
        deliveries: dict[str, str] = {}
        for target in targets:
            channel = channels.get(target)
            if channel is None:
                deliveries[target] = "failed: no such channel"
                continue
            try:
                await send(channel, firing, self.client)
                deliveries[target] = "sent"
            except Exception as error:  # a broken channel must not stop the others
                log.warning("alert %s: channel %s failed: %s", name, target, type(error).__name__)
                deliveries[target] = f"failed: {type(error).__name__}"
        firing["deliveries"] = deliveries
        log.warning("ALERT %s", message)
        if self.redis is None:
            self.local_firings.append(firing)
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.lpush(self.prefix + "firings", orjson.dumps(firing))
                pipe.ltrim(self.prefix + "firings", 0, MAX_FIRINGS - 1)
                await pipe.execute()
        return firing

    async def send_test(self, name: str) -> str | None:
        """Send a test message through one channel; None when there is no such channel."""
        channel = (await self.channels()).get(name)
        if channel is None:
            return None
        firing = {
            "id": "alert_test_" + uuid.uuid4().hex[:8],
            "rule": "test",
            "kind": "test",
            "subject": name,
            "value": 0,
            "threshold": 0,
            "window_seconds": 0,
            "fired_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message": f"Test message from AI MCP Gateway through channel {name!r}",
        }
        try:
            await send(channel, firing, self.client)
        except Exception as error:  # reported to the admin who asked, not raised
            return f"failed: {type(error).__name__}: {error}"
        return "sent"

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.current_config().alerts.interval_seconds)
            if not self.current_config().alerts.enabled:
                continue
            try:
                await self.evaluate()
            except (RedisError, OSError, httpx.HTTPError) as error:
                log.warning("alert evaluation failed: %s", type(error).__name__)

    async def close(self) -> None:
        await self.client.aclose()


def _check(rule: AlertRule, figures: Figures) -> list[tuple[str, float, str]]:
    """(subject, value, message) for each way the rule's condition holds now."""
    window = f"in the last {rule.window_seconds} s"
    if rule.kind == "cost":
        value = figures.project_cost.get(rule.project, 0.0) if rule.project else figures.cost_usd
        who = f"project {rule.project}" if rule.project else "all projects"
        if value > rule.threshold:
            return [
                (rule.project or "all", value, f"spend of {who} was ${value:.4f} {window}, over ${rule.threshold:.4f}")
            ]
        return []
    if rule.kind == "latency_p95":
        p95 = figures.p95()
        if p95 is not None and len(figures.latencies) >= rule.min_requests and p95 > rule.threshold:
            return [("all", p95, f"p95 latency was {p95:.0f} ms {window}, over {rule.threshold:.0f} ms")]
        return []
    if rule.kind == "error_rate":
        if figures.requests >= rule.min_requests:
            rate = figures.errors / figures.requests
            if rate > rule.threshold:
                return [
                    (
                        "all",
                        rate,
                        f"{rate:.0%} of {figures.requests} requests failed {window}, over {rule.threshold:.0%}",
                    )
                ]
        return []
    found = []
    for provider, count in figures.provider_requests.items():
        if rule.provider and provider != rule.provider:
            continue
        failures = figures.provider_failures.get(provider, 0)
        if count >= rule.min_requests and failures / count >= max(rule.threshold, 1e-9):
            found.append(
                (
                    provider,
                    failures / count,
                    f"provider {provider} is down: {failures} of {count} requests failed {window}",
                )
            )
    return found


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
