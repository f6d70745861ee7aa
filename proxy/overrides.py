"""Where runtime overrides (admin API, dashboard) are kept.

With Redis they live in one JSON document under `{redis_prefix}runtime-overrides`,
so every worker and replica reads the same; without Redis (one process) in
`data_dir/runtime-overrides.json`. Either way they survive restarts and are
layered over config.yaml and the environment by `config.apply_overrides`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from .config import Config

KEY = "runtime-overrides"


class OverridesStore:
    def __init__(self, config: Config, redis: aioredis.Redis | None) -> None:
        self.redis = redis
        self.key = config.redis_prefix + KEY
        self.path = Path(config.server.data_dir) / "runtime-overrides.json"

    @property
    def location(self) -> str:
        return f"redis key {self.key}" if self.redis is not None else str(self.path)

    async def get(self) -> dict[str, Any]:
        if self.redis is not None:
            raw = await self.redis.get(self.key)
        else:
            raw = await asyncio.to_thread(_read, self.path)
        if not raw:
            return {}
        value = orjson.loads(raw)
        return value if isinstance(value, dict) else {}

    async def put(self, overrides: dict[str, Any]) -> None:
        raw = orjson.dumps(overrides, option=orjson.OPT_SORT_KEYS)
        if self.redis is not None:
            await self.redis.set(self.key, raw)
        else:
            await asyncio.to_thread(_write_atomically, self.path, raw)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write_atomically(path: Path, raw: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold API keys
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)
    os.replace(temporary, path)
