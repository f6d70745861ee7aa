"""Config reload without restart.

Every worker watches the config file itself (an mtime poll, so it works the
same under Docker, Kubernetes ConfigMaps and editors that replace the file)
and, with Redis, also listens on a channel so a change made through the admin
API on one replica reaches all of them within seconds. A config that fails
validation is logged and ignored: the old one keeps serving. In-flight
requests keep the provider objects they already hold; replaced providers are
closed only after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from .config import Config, ConfigError, apply_overrides, load_config
from .overrides import OverridesStore
from .providers import Provider
from .runtime import Gateway

log = logging.getLogger("proxy.reload")

CHANNEL = "config-reload"


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


# What a running process holds open or was started with: a change to these is
# noted and reported, and applies at the next start.
RESTART_ONLY = ("server.host", "server.port", "server.data_dir", "redis_url", "redis_prefix", "usage")


def restart_only_changes(old: Config, new: Config) -> list[str]:
    changed = []
    for dotted in RESTART_ONLY:
        before: Any = old
        after: Any = new
        for part in dotted.split("."):
            before, after = getattr(before, part, None), getattr(after, part, None)
        if before != after:
            changed.append(dotted)
    return changed


class ConfigWatcher:
    """Polls the config file and the Redis reload channel; applies valid changes."""

    def __init__(self, gateway: Gateway, path: Path | None, *, interval: float = 1.0, grace: float = 300.0) -> None:
        self.gateway = gateway
        self.path = path
        # The config without runtime overrides: re-read from the file on change.
        self.base = gateway.config
        self.overrides = OverridesStore(gateway.config, gateway.redis)
        self.interval = interval
        self.grace = grace
        self.last_error: str | None = None
        # Settings changed since start that this process cannot apply live (shown in /health).
        self.restart_required: list[str] = []
        self.reloads = 0
        self._seen = _mtime(path) if path else None
        self._tasks: list[asyncio.Task[None]] = []
        self._retired: list[Provider] = []

    async def start(self) -> None:
        """Apply stored runtime overrides, then watch for changes."""
        if await self.overrides.get():
            await self.reload()
        if self.path is not None:
            self._tasks.append(asyncio.create_task(self._poll(), name="config-poll"))
        if self.gateway.redis is not None:
            self._tasks.append(asyncio.create_task(self._listen(), name="config-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(p.aclose() for p in self._retired), return_exceptions=True)

    async def _poll(self) -> None:
        assert self.path is not None
        while True:
            await asyncio.sleep(self.interval)
            current = _mtime(self.path)
            if current is not None and current != self._seen:
                self._seen = current
                await self.reload()

    async def _listen(self) -> None:
        assert self.gateway.redis is not None
        channel = self.gateway.config.redis_prefix + CHANNEL
        while True:
            try:
                pubsub = self.gateway.redis.pubsub()
                await pubsub.subscribe(channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self.reload()
            except (RedisError, OSError) as error:
                log.warning("config reload channel unavailable (%s); retrying", error)
                await asyncio.sleep(2.0)

    async def reload(self) -> bool:
        """Load the config file, layer the runtime overrides, apply; on any error keep the old one."""
        try:
            base = await asyncio.to_thread(load_config, self.path) if self.path is not None else self.base
            config = apply_overrides(base, await self.overrides.get())
        except (RedisError, OSError) as error:
            log.error("config reload skipped: runtime overrides unreadable (%s)", error)
            return False
        except ConfigError as error:
            self.last_error = str(error)
            log.error("config reload rejected, still serving the previous config: %s", error)
            return False
        self.base = base
        await self.apply(config)
        return True

    async def change_overrides(self, change: dict[str, Any]) -> Config:
        """Merge `change` into the stored overrides after checking the result is valid.

        Raises `ConfigError` (nothing stored) when the change would not validate.
        """
        overrides = _merge_overrides(await self.overrides.get(), change)
        config = apply_overrides(self.base, overrides)
        await self.overrides.put(overrides)
        await self.apply(config)
        await announce_reload(self.gateway)
        return config

    async def apply(self, config: Config) -> None:
        pending = restart_only_changes(self.gateway.config, config)
        if pending:
            log.warning("config reloaded, but these settings take effect only after a restart: %s", ", ".join(pending))
        self.restart_required = sorted(set(self.restart_required) | set(pending))
        retired = await self.gateway.reconfigure(config)
        logging.getLogger().setLevel(config.server.log_level.upper())
        self._retired.extend(retired)
        self.last_error = None
        self.reloads += 1
        log.info("config reloaded from %s", config.source)
        if retired:
            self._tasks.append(asyncio.create_task(self._close_later(retired)))

    async def _close_later(self, providers: list[Provider]) -> None:
        await asyncio.sleep(self.grace)
        for provider in providers:
            self._retired.remove(provider)
        await asyncio.gather(*(p.aclose() for p in providers), return_exceptions=True)


def _merge_overrides(current: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            inner = dict(merged[key])
            for inner_key, inner_value in value.items():
                old = inner.get(inner_key)
                inner[inner_key] = (
                    {**old, **inner_value} if isinstance(old, dict) and isinstance(inner_value, dict) else inner_value
                )
            merged[key] = inner
        else:
            merged[key] = value
    return merged


async def announce_reload(gateway: Gateway) -> int:
    """Tell every worker and replica sharing this Redis to reload now."""
    if gateway.redis is None:
        return 0
    receivers: int = await gateway.redis.publish(gateway.config.redis_prefix + CHANNEL, "reload")
    return receivers
