"""Provider health shared by every worker and replica through Redis.

Each worker keeps its own `HealthBoard` (the request path reads it without
waiting on the network); this module keeps the boards in step:

- every failure is counted in Redis, atomically, in a sliding window
  (`failure_window_seconds`), by one Lua script on Redis's clock: the count
  across all workers reaching `failure_threshold`, or a worker's own breaker
  tripping (error rate, a failed trial), opens the circuit for everyone;
- a success is sent only when it is news (the circuit was not closed, or
  failures were counted): it closes the circuit and clears the count;
- each change is stored in `<prefix>health:circuits` and published on
  `<prefix>health:changes`; every board applies it on receipt, and re-reads
  the stored circuits every second in case a message was lost;
- a half-open circuit lets one trial call through for all workers: the
  worker that sets `<prefix>health:trial:<circuit>` first (with a lease of one
  cooldown) runs it, the others wait for its outcome.

Outcomes are sent from a queue by a background task, never awaited by a
request. When Redis is unreachable nothing fails: the board goes on with its
own observations, and catches up when Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .health import HealthBoard, SharedCircuit

log = logging.getLogger("proxy.health")

# KEYS: 1 the circuits hash, 2 this circuit's failures (a sorted set by time), 3 its trial claim.
# ARGV: 1 circuit key, 2 'fail' or 'ok', 3 tripped by the sender's own breaker (1/0), 4 failure
# threshold, 5 window seconds, 6 cooldown seconds, 7 error text, 8 a unique id for this failure, 9 channel.
# Returns {record JSON, age} after a change; nil when an 'ok' was no news.
_CHANGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local rec
if raw then
  rec = cjson.decode(raw)
else
  rec = {state = 'closed', openedAt = 0, failures = 0, version = 0, error = '', epoch = ARGV[8]}
end
if ARGV[2] == 'fail' then
  local window = tonumber(ARGV[5])
  redis.call('ZADD', KEYS[2], now, ARGV[8])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000))
  rec.failures = redis.call('ZCARD', KEYS[2])
  rec.error = ARGV[7]
  local cooled = now - rec.openedAt >= tonumber(ARGV[6])
  if (ARGV[3] == '1' or rec.failures >= tonumber(ARGV[4])) and (rec.state ~= 'open' or cooled) then
    rec.state = 'open'
    rec.openedAt = now
    redis.call('DEL', KEYS[3])
  end
else
  if rec.state == 'closed' and rec.failures == 0 then
    return nil
  end
  rec.state = 'closed'
  rec.failures = 0
  redis.call('DEL', KEYS[2], KEYS[3])
end
rec.version = rec.version + 1
local encoded = cjson.encode(rec)
redis.call('HSET', KEYS[1], ARGV[1], encoded)
local age = now - rec.openedAt
redis.call('PUBLISH', ARGV[9], cjson.encode({key = ARGV[1], circuit = rec, age = age}))
return {encoded, tostring(age)}
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    ok: bool
    tripped: bool
    error: str | None


def parse_circuit(record: Any, age: float) -> SharedCircuit:
    """A stored or announced record; raises ValueError/KeyError/TypeError when it is not one."""
    if isinstance(record, (bytes, str)):
        record = orjson.loads(record)
    state = record["state"]
    if state not in ("open", "closed"):
        raise ValueError(f"unknown circuit state {state!r}")
    return SharedCircuit(
        state=state,
        opened_at=float(record["openedAt"]),
        age=max(0.0, float(age)),
        failures=int(record["failures"]),
        version=int(record["version"]),
        epoch=str(record.get("epoch") or ""),
        error=str(record.get("error") or "") or None,
    )


class RedisHealthShare:
    """Keeps one worker's `HealthBoard` in step with every other worker's, through Redis."""

    def __init__(
        self,
        board: HealthBoard,
        redis: aioredis.Redis,
        prefix: str,
        *,
        refresh_seconds: float = 1.0,
        timeout_seconds: float = 1.0,
        max_pending: int = 1000,
    ) -> None:
        self.board = board
        self.redis = redis
        self.circuits_key = prefix + "health:circuits"
        self.key_prefix = prefix + "health:"
        self.channel = prefix + "health:changes"
        self.refresh_seconds = refresh_seconds
        self.timeout = timeout_seconds
        self.worker = uuid.uuid4().hex
        # Outcomes not yet sent; when Redis is away the oldest are dropped (the board has them).
        self.pending: deque[Outcome] = deque(maxlen=max_pending)
        self.wakeup = asyncio.Event()
        self.available = True
        self._script = redis.register_script(_CHANGE)
        board.share = self

    # -- what the board calls ----------------------------------------------------

    def send(self, key: str, *, ok: bool, tripped: bool, error: str | None) -> None:
        self.pending.append(Outcome(key, ok, tripped, error))
        self.wakeup.set()

    async def claim_trial(self, key: str, lease_seconds: float) -> bool:
        """Whether this worker runs the half-open trial (True too when Redis cannot say)."""
        try:
            claimed = await asyncio.wait_for(
                self.redis.set(
                    self.key_prefix + "trial:" + key, self.worker, nx=True, px=max(1, int(lease_seconds * 1000))
                ),
                self.timeout,
            )
        except (RedisError, OSError, TimeoutError) as error:
            self._unavailable(error)
            return True
        self._available()
        return bool(claimed)

    # -- background ----------------------------------------------------------------

    async def run_forever(self) -> None:
        """Send outcomes, listen for changes, and re-read the stored circuits; until cancelled."""
        await asyncio.gather(self._send_forever(), self._listen_forever(), self._refresh_forever())

    async def _send_forever(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.pending:
                outcome = self.pending.popleft()
                try:
                    reply = await asyncio.wait_for(self._change(outcome), self.timeout)
                except (RedisError, OSError, TimeoutError) as error:
                    self._unavailable(error)
                    continue  # this board already counted it; the others will not
                self._available()
                if reply:
                    self._apply(outcome.key, reply[0], reply[1])

    async def _change(self, outcome: Outcome) -> Any:
        config = self.board.config
        key = outcome.key
        return await self._script(
            keys=[self.circuits_key, self.key_prefix + "failures:" + key, self.key_prefix + "trial:" + key],
            args=[
                key,
                "ok" if outcome.ok else "fail",
                int(outcome.tripped),
                config.failure_threshold,
                config.failure_window_seconds,
                config.cooldown_seconds,
                outcome.error or "",
                uuid.uuid4().hex,
                self.channel,
            ],
        )

    async def _listen_forever(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self.refresh()  # what changed while this worker was not listening
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._announced(message["data"])
            except (RedisError, OSError) as error:
                self._unavailable(error)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass
            await asyncio.sleep(1.0)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await asyncio.wait_for(self.refresh(), self.timeout)
            except (RedisError, OSError, TimeoutError) as error:
                self._unavailable(error)

    async def refresh(self) -> None:
        """Apply every stored circuit newer than this board's copy."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.time()
        pipe.hgetall(self.circuits_key)
        (seconds, micros), stored = await pipe.execute()
        self._available()
        now = seconds + micros / 1_000_000
        for key, raw in stored.items():
            try:
                record = orjson.loads(raw)
                self.board.apply(_text(key), parse_circuit(record, now - float(record["openedAt"])))
            except (ValueError, KeyError, TypeError) as error:
                log.warning("health: ignoring a malformed stored circuit %r (%s)", key, error)

    # -- helpers -------------------------------------------------------------------

    def _announced(self, data: bytes | str) -> None:
        try:
            message = orjson.loads(data)
            self.board.apply(str(message["key"]), parse_circuit(message["circuit"], float(message["age"])))
        except (ValueError, KeyError, TypeError) as error:
            log.warning("health: ignoring a malformed announcement (%s)", error)

    def _apply(self, key: str, record: bytes | str, age: bytes | str) -> None:
        try:
            self.board.apply(key, parse_circuit(record, float(age)))
        except (ValueError, KeyError, TypeError) as error:
            log.warning("health: ignoring a malformed reply for %s (%s)", key, error)

    def _unavailable(self, error: BaseException) -> None:
        if self.available:
            log.warning(
                "health: Redis unreachable (%s); circuits are this worker's own until it is back", type(error).__name__
            )
        self.available = False

    def _available(self) -> None:
        if not self.available:
            log.info("health: Redis reachable again; circuits are shared again")
        self.available = True


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
