"""Gateway API tokens: create, look up by secret, list, revoke.

Only a SHA-256 of each secret is stored; the secret itself is returned once, by
`create`, and never again. Secrets are 256 random bits, so a plain hash is as
strong as a slow one and lets a lookup be one key read.

With Redis configured every worker and replica shares the tokens
(`{prefix}token:{sha256}` holds the record, `{prefix}tokens` maps id -> hash);
without it they live in `data_dir/tokens.json`, for a single process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import redis.asyncio as aioredis

from .config import Limits

SECRET_PREFIX = "aigw_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def looks_like_token(secret: str) -> bool:
    return secret.startswith(SECRET_PREFIX)


@dataclass(frozen=True)
class TokenRecord:
    """Everything stored about a token: no secret, only its hash."""

    id: str
    name: str
    project: str
    secret_hash: str
    created_at: float
    limits: dict[str, Any] = field(default_factory=dict)
    allowed_models: tuple[str, ...] = ()
    expires_at: float | None = None
    revoked_at: float | None = None

    @property
    def limit(self) -> Limits:
        return Limits.model_validate(self.limits)

    def usable(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def status(self, now: float | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.usable(now) else "expired"

    def public(self) -> dict[str, Any]:
        """What the admin API shows: never the secret, nor its hash."""
        return {
            "id": self.id,
            "name": self.name,
            "project": self.project,
            "status": self.status(),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "limits": {k: v for k, v in self.limits.items() if v is not None},
            "allowed_models": list(self.allowed_models),
        }

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: str | bytes) -> TokenRecord:
        data = json.loads(raw)
        data["allowed_models"] = tuple(data.get("allowed_models") or ())
        return cls(**data)


def new_record(
    *, name: str, project: str, limits: Limits, allowed_models: tuple[str, ...], expires_at: float | None
) -> tuple[TokenRecord, str]:
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        id="tok_" + secrets.token_hex(8),
        name=name,
        project=project,
        secret_hash=hash_secret(secret),
        created_at=time.time(),
        limits=limits.model_dump(exclude_none=True),
        allowed_models=allowed_models,
        expires_at=expires_at,
    )
    return record, secret


class TokenStore(Protocol):
    async def add(self, record: TokenRecord) -> None: ...

    async def lookup(self, secret: str) -> TokenRecord | None: ...

    async def get(self, token_id: str) -> TokenRecord | None: ...

    async def list(self) -> list[TokenRecord]: ...

    async def revoke(self, token_id: str) -> TokenRecord | None: ...

    async def has_tokens(self) -> bool: ...


class RedisTokenStore:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.index = prefix + "tokens"
        self.prefix = prefix + "token:"

    async def add(self, record: TokenRecord) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.prefix + record.secret_hash, record.dumps())
            pipe.hset(self.index, record.id, record.secret_hash)
            await pipe.execute()

    async def lookup(self, secret: str) -> TokenRecord | None:
        raw = await self.redis.get(self.prefix + hash_secret(secret))
        return TokenRecord.loads(raw) if raw else None

    async def get(self, token_id: str) -> TokenRecord | None:
        digest = await self.redis.hget(self.index, token_id)
        if not digest:
            return None
        raw = await self.redis.get(self.prefix + _text(digest))
        return TokenRecord.loads(raw) if raw else None

    async def list(self) -> list[TokenRecord]:
        digests = await self.redis.hvals(self.index)
        if not digests:
            return []
        raws = await self.redis.mget([self.prefix + _text(d) for d in digests])
        return sorted((TokenRecord.loads(r) for r in raws if r), key=lambda t: t.created_at)

    async def revoke(self, token_id: str) -> TokenRecord | None:
        record = await self.get(token_id)
        if record is None:
            return None
        if record.revoked_at is None:
            record = replace(record, revoked_at=time.time())
            await self.redis.set(self.prefix + record.secret_hash, record.dumps())
        return record

    async def has_tokens(self) -> bool:
        return bool(await self.redis.hlen(self.index))


class LocalTokenStore:
    """Tokens in `data_dir/tokens.json` (mode 0600), for a gateway without Redis."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, TokenRecord] = {}
        if path.exists():
            for item in json.loads(path.read_text() or "{}").values():
                record = TokenRecord.loads(json.dumps(item))
                self.records[record.id] = record
        self.by_hash = {r.secret_hash: r.id for r in self.records.values()}
        self._lock = asyncio.Lock()

    def _write(self, snapshot: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(snapshot, handle)
        os.replace(temp, self.path)

    async def _save(self) -> None:
        snapshot = {rid: asdict(r) for rid, r in self.records.items()}
        async with self._lock:
            await asyncio.to_thread(self._write, snapshot)

    async def add(self, record: TokenRecord) -> None:
        self.records[record.id] = record
        self.by_hash[record.secret_hash] = record.id
        await self._save()

    async def lookup(self, secret: str) -> TokenRecord | None:
        token_id = self.by_hash.get(hash_secret(secret))
        return self.records.get(token_id) if token_id else None

    async def get(self, token_id: str) -> TokenRecord | None:
        return self.records.get(token_id)

    async def list(self) -> list[TokenRecord]:
        return sorted(self.records.values(), key=lambda t: t.created_at)

    async def revoke(self, token_id: str) -> TokenRecord | None:
        record = self.records.get(token_id)
        if record is None:
            return None
        if record.revoked_at is None:
            record = replace(record, revoked_at=time.time())
            self.records[token_id] = record
            await self._save()
        return record

    async def has_tokens(self) -> bool:
        return bool(self.records)
