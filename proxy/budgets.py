"""Budgets: reserve a request's worst-case cost before the upstream call, settle the real cost after.

Every request is charged to its project and, when it carries one, its token;
each has a counter per UTC day, per UTC month and in total, holding what was
spent and what requests in flight have reserved. A reservation is admitted only
if, for every counter with a limit, spent + reserved + this request's worst case
stays within the limit (a $0 request always may); the check and the increment are one atomic step (a Lua
script when Redis is configured, so all workers and replicas agree). Settling
moves the real cost into `spent` and releases the rest, once, whatever happened
to the request. A reservation nobody settled (a crashed worker) is released
when it expires.

Amounts are integers of nano-USD, so sums are exact.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .config import TIERS, Config, Limits, ModelConfig, Tier
from .errors import BudgetExceeded, PermissionDenied, ServiceUnavailable
from .tokencount import estimate_messages_tokens
from .types import JSON, Principal, RouteDecision

log = logging.getLogger("proxy.budgets")

NANO = 1_000_000_000
OVERRIDE_TTL = 1.0  # seconds a project's admin-set limits are reused before being read again
PERIODS: tuple[str, ...] = ("day", "month", "total")
_LIMIT_FIELD = {"day": "daily_usd", "month": "monthly_usd", "total": "total_usd"}
_PERIOD_TTL = {"day": 3 * 86400, "month": 63 * 86400, "total": 0}


def to_nano(usd: float | Decimal) -> int:
    return int(Decimal(str(usd)) * NANO)


def usd(nano: int) -> float:
    return nano / NANO


def period_key(period: str, now: datetime) -> str:
    if period == "day":
        return now.strftime("%Y-%m-%d")
    if period == "month":
        return now.strftime("%Y-%m")
    return "all"


def resets_at(period: str, now: datetime) -> str | None:
    if period == "day":
        start = datetime(now.year, now.month, now.day, tzinfo=UTC).timestamp() + 86400
    elif period == "month":
        start = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC).timestamp()
    else:
        return None
    return datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Counter:
    """One budget counter: a scope (project or token) in one period."""

    scope: str  # "project:NAME" or "token:ID"
    period: str
    key: str  # the storage key, including the period's date
    limit: int | None  # nano-USD, None for no limit


@dataclass
class Reservation:
    id: str
    amount: int
    counters: tuple[Counter, ...]
    settled: bool = False
    discarded: int = 0  # nano-USD of attempts paid for and thrown away (escalation)


def _tightest(a: Tier | None, b: Tier | None) -> Tier | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if TIERS.index(a) <= TIERS.index(b) else b


def worst_case_cost(body: JSON, models: tuple[ModelConfig, ...], reserve_max_tokens: int) -> int:
    """Nano-USD for the prompt plus every output token the request may produce, at the dearest candidate."""
    prompt = estimate_messages_tokens(body.get("messages") or [], body.get("tools"))
    prompt = math.ceil(prompt * 1.1) + 16  # the estimate is a heuristic; reserve a little over it
    max_out = body.get("max_completion_tokens") or body.get("max_tokens") or reserve_max_tokens
    choices = body.get("n") or 1
    output = int(max_out) * max(1, int(choices))
    worst = 0
    for model in models:
        per_input, per_output = _nano_per_token(model.price.input, model.price.output)
        worst = max(worst, math.ceil(prompt * per_input + output * per_output))
    return worst


@functools.lru_cache(maxsize=1024)
def _nano_per_token(input_per_million: float, output_per_million: float) -> tuple[Decimal, Decimal]:
    # Exact decimal prices converted once per price pair, not twice per model per request.
    scale = Decimal(NANO) / 1_000_000
    return Decimal(str(input_per_million)) * scale, Decimal(str(output_per_million)) * scale


class Ledger(Protocol):
    """Where counters live: Redis for a shared gateway, a dict for one process."""

    async def read(self, keys: list[str]) -> list[tuple[int, int]]: ...

    async def reserve(self, reservation: Reservation, expires_at: float) -> tuple[int, int, int] | None: ...

    async def settle(self, reservation_id: str, actual: int) -> bool: ...

    async def sweep(self, now: float) -> int: ...

    async def pending(self) -> int: ...

    async def get_override(self, project: str) -> Limits | None: ...

    async def set_override(self, project: str, limits: Limits | None) -> None: ...

    async def overrides(self) -> dict[str, Limits]: ...


# KEYS[1] reservations hash, KEYS[2] expiry zset, KEYS[3..] counters.
# ARGV: id, amount, expires_at, then per counter: limit (-1: none), ttl (0: none).
_RESERVE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {0, 0, 0} end
local amount = tonumber(ARGV[2])
local n = #KEYS - 2
for i = 1, n do
  local limit = tonumber(ARGV[2 + 2 * i])
  if limit >= 0 and amount > 0 then
    local spent = tonumber(redis.call('HGET', KEYS[2 + i], 'spent') or '0')
    local reserved = tonumber(redis.call('HGET', KEYS[2 + i], 'reserved') or '0')
    if spent + reserved + amount > limit then
      return {i, spent, reserved}
    end
  end
end
local record = {ARGV[2]}
for i = 1, n do
  if amount ~= 0 then redis.call('HINCRBY', KEYS[2 + i], 'reserved', ARGV[2]) end
  local ttl = tonumber(ARGV[3 + 2 * i])
  if ttl > 0 then redis.call('EXPIRE', KEYS[2 + i], ttl) end
  record[#record + 1] = KEYS[2 + i]
end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(record, '|'))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return {0, 0, 0}
"""

# Settle (or release, with actual = 0) one reservation; a second call is a no-op.
# KEYS[1] reservations hash, KEYS[2] expiry zset. ARGV: id, actual.
_SETTLE = """
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
-- Amounts stay strings: Lua would print -0 as "-0" and large numbers in
-- exponent form, and HINCRBY takes neither.
local amount = nil
for part in string.gmatch(record, '[^|]+') do
  if amount == nil then
    amount = part
  else
    if amount ~= '0' then redis.call('HINCRBY', part, 'reserved', '-' .. amount) end
    if ARGV[2] ~= '0' then redis.call('HINCRBY', part, 'spent', ARGV[2]) end
  end
end
return 1
"""


class RedisLedger:
    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "budget:"
        self.reservations = self.prefix + "reservations"
        self.expiry = self.prefix + "reservation_expiry"
        self.overrides_key = self.prefix + "project_limits"
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)

    async def read(self, keys: list[str]) -> list[tuple[int, int]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, "spent", "reserved")
            rows = await pipe.execute()
        return [(int(spent or 0), int(reserved or 0)) for spent, reserved in rows]

    async def reserve(self, reservation: Reservation, expires_at: float) -> tuple[int, int, int] | None:
        args: list[Any] = [reservation.id, reservation.amount, expires_at]
        for counter in reservation.counters:
            args += [-1 if counter.limit is None else counter.limit, _PERIOD_TTL[counter.period]]
        keys = [self.reservations, self.expiry, *(c.key for c in reservation.counters)]
        index, spent, reserved = await self._reserve(keys=keys, args=args)
        return None if index == 0 else (int(index) - 1, int(spent), int(reserved))

    async def settle(self, reservation_id: str, actual: int) -> bool:
        return bool(await self._settle(keys=[self.reservations, self.expiry], args=[reservation_id, actual]))

    async def sweep(self, now: float) -> int:
        expired = await self.redis.zrangebyscore(self.expiry, "-inf", now)
        released = 0
        for rid in expired:
            released += await self.settle(rid.decode() if isinstance(rid, bytes) else str(rid), 0)
        return released

    async def pending(self) -> int:
        return int(await self.redis.hlen(self.reservations))

    async def get_override(self, project: str) -> Limits | None:
        raw = await self.redis.hget(self.overrides_key, project)
        return Limits.model_validate_json(raw) if raw else None

    async def set_override(self, project: str, limits: Limits | None) -> None:
        if limits is None:
            await self.redis.hdel(self.overrides_key, project)
        else:
            await self.redis.hset(self.overrides_key, project, limits.model_dump_json(exclude_unset=True))

    async def overrides(self) -> dict[str, Limits]:
        raw = await self.redis.hgetall(self.overrides_key)
        return {(k.decode() if isinstance(k, bytes) else k): Limits.model_validate_json(v) for k, v in raw.items()}


class MemoryLedger:
    """In-process counters for a single-process gateway; each method runs without awaiting, so it is atomic."""

    def __init__(self) -> None:
        self.counters: dict[str, list[int]] = {}
        self.reservations: dict[str, tuple[float, Reservation]] = {}
        self.project_limits: dict[str, Limits] = {}

    async def read(self, keys: list[str]) -> list[tuple[int, int]]:
        return [tuple(self.counters.get(key, [0, 0])) for key in keys]  # type: ignore[misc]

    async def reserve(self, reservation: Reservation, expires_at: float) -> tuple[int, int, int] | None:
        for index, counter in enumerate(reservation.counters):
            spent, reserved = self.counters.get(counter.key, [0, 0])
            if (
                counter.limit is not None
                and reservation.amount > 0
                and spent + reserved + reservation.amount > counter.limit
            ):
                return index, spent, reserved
        for counter in reservation.counters:
            self.counters.setdefault(counter.key, [0, 0])[1] += reservation.amount
        self.reservations[reservation.id] = (expires_at, reservation)
        return None

    async def settle(self, reservation_id: str, actual: int) -> bool:
        found = self.reservations.pop(reservation_id, None)
        if found is None:
            return False
        reservation = found[1]
        for counter in reservation.counters:
            values = self.counters.setdefault(counter.key, [0, 0])
            values[1] -= reservation.amount
            values[0] += actual
        return True

    async def sweep(self, now: float) -> int:
        expired = [rid for rid, (expires, _) in self.reservations.items() if expires <= now]
        for rid in expired:
            await self.settle(rid, 0)
        return len(expired)

    async def pending(self) -> int:
        return len(self.reservations)

    async def get_override(self, project: str) -> Limits | None:
        return self.project_limits.get(project)

    async def set_override(self, project: str, limits: Limits | None) -> None:
        if limits is None:
            self.project_limits.pop(project, None)
        else:
            self.project_limits[project] = limits

    async def overrides(self) -> dict[str, Limits]:
        return dict(self.project_limits)


@dataclass
class Plan:
    """The limits that apply to one request and the counters they guard, read before routing."""

    principal: Principal
    counters: tuple[Counter, ...]
    now: datetime
    # The token's and project's own ceiling (steering aside): a model named explicitly must respect it too.
    hard_max_tier: Tier | None = None
    project_limits: Limits = field(default_factory=Limits)
    fractions: dict[str, float] = field(default_factory=dict)


class Budgets:
    def __init__(self, config: Callable[[], Config], ledger: Ledger, prefix: str = "") -> None:
        self.current_config = config  # the live config: reloads change limits without a restart
        self.ledger = ledger
        self.prefix = prefix + "budget:"
        # Reservations waiting for their request's usage event, by request id.
        self.open: dict[str, Reservation] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._overrides: dict[str, tuple[float, Limits | None]] = {}
        self._counters_day = ""
        self._counters_cache: dict[tuple[str, float | None, float | None, float | None], list[Counter]] = {}

    @classmethod
    def build(cls, config: Callable[[], Config], redis: aioredis.Redis | None) -> Budgets:
        prefix = config().redis_prefix
        ledger: Ledger = RedisLedger(redis, prefix) if redis else MemoryLedger()
        return cls(config, ledger, prefix)

    @property
    def config(self) -> Config:
        return self.current_config()

    # -- limits ------------------------------------------------------------------

    async def project_limits(self, project: str) -> Limits:
        configured = self.config.projects.get(project, Limits())
        return configured.merged(await self._override(project))

    async def _override(self, project: str) -> Limits | None:
        """The admin API's limits for `project`, read at most once a second.

        Every request needs them; with Redis that was one more round trip per
        request. A change made on another worker or replica is seen within
        `OVERRIDE_TTL` seconds; on this one, at once.
        """
        now = time.monotonic()
        cached = self._overrides.get(project)
        if cached is not None and cached[0] > now:
            return cached[1]
        override = await self.ledger.get_override(project)
        if len(self._overrides) >= 10_000:
            self._overrides.clear()
        self._overrides[project] = (now + OVERRIDE_TTL, override)
        return override

    async def set_override(self, project: str, limits: Limits | None) -> None:
        await self.ledger.set_override(project, limits)
        self._overrides.pop(project, None)

    async def _project_limits_or_configured(self, project: str) -> Limits:
        try:
            return await self.project_limits(project)
        except (RedisError, OSError) as error:
            log.warning(
                "budget store unreachable (%s); using the configured limits of %r", type(error).__name__, project
            )
            return self.config.projects.get(project, Limits())

    def counters(self, scope: str, limits: Limits, now: datetime) -> list[Counter]:
        # The same few scopes ask on every request: their counters are built once a day.
        day = period_key("day", now)
        if day != self._counters_day:
            self._counters_day, self._counters_cache = day, {}
        cache_key = (scope, limits.daily_usd, limits.monthly_usd, limits.total_usd)
        cached = self._counters_cache.get(cache_key)
        if cached is None:
            cached = []
            for period in PERIODS:
                limit = getattr(limits, _LIMIT_FIELD[period])
                key = f"{self.prefix}{scope}:{period}:{period_key(period, now)}"
                cached.append(Counter(scope, period, key, None if limit is None else to_nano(limit)))
            if len(self._counters_cache) < 10_000:
                self._counters_cache[cache_key] = cached
        return list(cached)

    async def plan(self, principal: Principal) -> Plan:
        """Read the limits and spend that apply; tighten `max_tier` by the project's and a near-limit budget."""
        now = datetime.now(UTC)
        project = await self._project_limits_or_configured(principal.project)
        counters = self.counters(f"project:{principal.project}", project, now)
        if principal.token_id is not None:
            counters += self.counters(f"token:{principal.token_id}", principal.token_limits or Limits(), now)
        max_tier = _tightest(principal.max_tier, project.max_tier)
        plan = Plan(principal, tuple(counters), now, hard_max_tier=max_tier, project_limits=project)
        limited = [c for c in counters if c.limit is not None]
        steer_at = self.config.budgets.steer_at
        if limited and steer_at is not None:
            try:
                values = await self.ledger.read([c.key for c in limited])
            except (RedisError, OSError):
                values = [(0, 0)] * len(limited)  # the reservation decides; steering waits for Redis
            for counter, (spent, reserved) in zip(limited, values, strict=True):
                assert counter.limit is not None
                plan.fractions[f"{counter.scope}:{counter.period}"] = (
                    (spent + reserved) / counter.limit if counter.limit else 1.0
                )
            if plan.fractions and max(plan.fractions.values()) >= steer_at:
                max_tier = _tightest(max_tier, self.config.budgets.steer_max_tier)
        if max_tier != principal.max_tier:
            plan.principal = replace(principal, max_tier=max_tier)
        return plan

    # -- reserve and settle ------------------------------------------------------

    async def reserve(self, plan: Plan, decision: RouteDecision, body: JSON, request_id: str) -> Reservation | None:
        """Hold the worst case against every counter, or refuse with `budget_exceeded` before any upstream call."""
        ceiling = plan.hard_max_tier
        if ceiling is not None and TIERS.index(decision.tier) > TIERS.index(ceiling):
            raise PermissionDenied(
                f"model {decision.model.id!r} is tier {decision.tier}; this token or project may use up to {ceiling}",
                param="model",
                code="tier_not_allowed",
            )
        models = decision.candidates or (decision.model,)
        if decision.model not in models:
            models = (decision.model, *models)
        reserve_tokens = self.config.budgets.reserve_max_tokens
        amount = worst_case_cost(body, models, reserve_tokens)
        if decision.flexible and self.config.routing.auto_escalate:
            # An answer judged flawed is paid for and the next tier asked: reserve one try per tier up to the ceiling.
            for tier in TIERS[TIERS.index(decision.tier) + 1 : TIERS.index(decision.ceiling) + 1]:
                above = tuple(m for m in self.config.models if m.enabled and m.tier == tier)
                amount += worst_case_cost(body, above, reserve_tokens) if above else 0
        reservation = Reservation(request_id + ":" + os.urandom(4).hex(), amount, plan.counters)
        try:
            refused = await self._reserve_with_retry(reservation)
        except (RedisError, OSError) as error:
            log.warning("budget reservation failed: %s: %s", type(error).__name__, error)
            if any(c.limit is not None for c in plan.counters):
                raise ServiceUnavailable(
                    "the budget store is unreachable, so a budgeted request cannot be admitted; try again shortly",
                    code="budget_store_unavailable",
                ) from error
            log.warning("budget store unreachable (%s); unbudgeted request not counted", type(error).__name__)
            return None
        if refused is not None:
            index, spent, reserved = refused
            raise self._exceeded(plan.counters[index], spent, reserved, amount, plan.now)
        self.open[request_id] = reservation
        return reservation

    async def _reserve_with_retry(self, reservation: Reservation) -> tuple[int, int, int] | None:
        """The reserve script is idempotent per reservation id, so a call whose reply was lost can be repeated."""
        expires_at = time.time() + self.config.budgets.reservation_ttl_seconds
        for attempt in range(3):
            try:
                return await self.ledger.reserve(reservation, expires_at)
            except (RedisError, OSError):
                if attempt == 2:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        return None

    def _exceeded(self, counter: Counter, spent: int, reserved: int, amount: int, now: datetime) -> BudgetExceeded:
        assert counter.limit is not None
        kind, _, name = counter.scope.partition(":")
        period = {"day": "daily", "month": "monthly", "total": "total"}[counter.period]
        reset = resets_at(counter.period, now)
        message = (
            f"{period} budget of {kind} {name!r} exceeded: limit ${usd(counter.limit):.6f}, spent ${usd(spent):.6f}"
            f" (+${usd(reserved):.6f} held by requests in flight); this request may cost up to ${usd(amount):.6f}. "
            + (f"The budget resets at {reset}." if reset else "This budget does not reset; an admin can raise it.")
        )
        return BudgetExceeded(
            message,
            extra={
                "budget": {
                    "scope": kind,
                    "name": name,
                    "period": counter.period,
                    "limit_usd": usd(counter.limit),
                    "spent_usd": usd(spent),
                    "reserved_usd": usd(reserved),
                    "request_max_usd": usd(amount),
                    "resets_at": reset,
                }
            },
        )

    def settle_soon(self, request_id: str, cost_usd: float, *, final: bool = True) -> None:
        """Settle the request's reservation with its real cost (0 for a failed request), off the caller's path.

        `final=False` adds the cost of an attempt that was paid for and thrown away;
        the request's own (final) usage settles the sum.
        """
        if not final:
            pending = self.open.get(request_id)
            if pending is not None:
                pending.discarded += to_nano(cost_usd)
            return
        reservation = self.open.pop(request_id, None)
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        actual = to_nano(cost_usd) + reservation.discarded
        task = asyncio.get_running_loop().create_task(self._settle(reservation, actual))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _settle(self, reservation: Reservation, actual: int) -> None:
        for attempt in range(5):
            try:
                await self.ledger.settle(reservation.id, actual)
                return
            except (RedisError, OSError) as error:
                log.warning("settling %s failed (%s: %s), retrying", reservation.id, type(error).__name__, error)
                await asyncio.sleep(0.2 * (attempt + 1))
        log.error("could not settle %s; it will be released when it expires", reservation.id)

    async def sweep_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                released = await self.ledger.sweep(time.time())
                if released:
                    log.warning("released %d expired budget reservations", released)
            except (RedisError, OSError) as error:
                log.warning("budget sweep failed: %s", type(error).__name__)

    async def drain(self) -> None:
        """Finish pending settlements (at shutdown)."""
        for request_id in list(self.open):
            self.settle_soon(request_id, 0.0)
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- reporting ---------------------------------------------------------------

    async def report(self, scope: str, limits: Limits) -> dict[str, Any]:
        """Spend, reservations and limits of one scope, for the admin API."""
        now = datetime.now(UTC)
        counters = self.counters(scope, limits, now)
        values = await self.ledger.read([c.key for c in counters])
        periods = {}
        for counter, (spent, reserved) in zip(counters, values, strict=True):
            periods[counter.period] = {
                "limit_usd": None if counter.limit is None else usd(counter.limit),
                "spent_usd": usd(spent),
                "reserved_usd": usd(reserved),
                "resets_at": resets_at(counter.period, now),
            }
        return {"limits": limits.model_dump(exclude_none=True), "spend": periods}
