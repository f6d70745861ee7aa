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

from redis.exceptions import RedisError

from .config import Config, ConfigError, load_config
from .providers import Provider
from .runtime import Gateway

log = logging.getLogger("proxy.reload")

CHANNEL = "config-reload"


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class ConfigWatcher:
    """Polls the config file and the Redis reload channel; applies valid changes."""

    def __init__(self, gateway: Gateway, path: Path | None, *, interval: float = 1.0, grace: float = 300.0) -> None:
        self.gateway = gateway
        self.path = path
        self.interval = interval
        self.grace = grace
        self.last_error: str | None = None
        self.reloads = 0
        self._seen = _mtime(path) if path else None
        self._tasks: list[asyncio.Task[None]] = []
        self._retired: list[Provider] = []

    def start(self) -> None:
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
        """Load and apply the config file; on any error keep serving the old one."""
        try:
            config = await asyncio.to_thread(load_config, self.path)
        except ConfigError as error:
            self.last_error = str(error)
            log.error("config reload rejected, still serving the previous config: %s", error)
            return False
        await self.apply(config)
        return True

    async def apply(self, config: Config) -> None:
        retired = await self.gateway.reconfigure(config)
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


async def announce_reload(gateway: Gateway) -> int:
    """Tell every worker and replica sharing this Redis to reload now."""
    if gateway.redis is None:
        return 0
    receivers: int = await gateway.redis.publish(gateway.config.redis_prefix + CHANNEL, "reload")
    return receivers
