"""The live objects a running gateway owns, built once in the app's lifespan.

Nothing here is a module global: `create_app(config)` builds a `Gateway` on
start-up and closes it on shutdown, and endpoints reach it through
`request.app.state.gateway`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .alerts import AlertEngine
from .apitokens import LocalTokenStore, RedisTokenStore, TokenStore
from .auth import Authenticator, admin_token
from .budgets import Budgets
from .cache import ResponseCache
from .config import Config
from .conversations import ConversationStore
from .metrics import Metrics, SharedMetrics
from .providers import Provider, build_provider, build_providers
from .ratelimit import RateLimiter
from .response_store import ResponseStore, build_response_store
from .routing import Router
from .routing.escalation import ApprovalStore
from .routing.health import HealthBoard
from .routing.health_share import RedisHealthShare
from .routing.openrouter_free import OpenRouterFree
from .usage import UsageLog

log = logging.getLogger("proxy")


@dataclass
class Gateway:
    config: Config
    providers: dict[str, Provider]
    available: set[str]
    router: Router
    usage: UsageLog | None
    redis: aioredis.Redis | None
    admin_token: str
    cache: ResponseCache
    responses: ResponseStore
    started_at: float = field(default_factory=time.time)
    # The seed's stateful API (conversation context); built in `start`.
    conversations: ConversationStore | None = None
    # Routing state that outlives a config reload: passive health (shared through Redis when configured),
    # approval tokens, free-model list.
    health: HealthBoard = field(default_factory=lambda: HealthBoard(Config().routing.health))
    approvals: ApprovalStore = field(default_factory=lambda: ApprovalStore(None, "aigw:", 600.0))
    free_models: OpenRouterFree | None = None
    # Live counters for /metrics and /v1/server-stats; with Redis, summed over workers.
    metrics: Metrics = field(default_factory=Metrics)
    shared_metrics: SharedMetrics = field(default_factory=lambda: SharedMetrics(Metrics(), None, ""))
    tokens: TokenStore = field(init=False)
    auth: Authenticator = field(init=False)
    budgets: Budgets = field(init=False)
    ratelimits: RateLimiter = field(init=False)
    alerts: AlertEngine = field(init=False)
    # Periodic work (alerts, budget sweeps, shared metrics), cancelled on close.
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, config: Config) -> Gateway:
        providers = build_providers(config)
        available = await _probe(providers)
        redis_client = _redis_client(config.redis_url) if config.redis_url else None
        usage = await asyncio.to_thread(UsageLog, config) if config.usage.enabled else None
        cache = ResponseCache.build(config.cache, redis_client, config.redis_prefix)
        responses = build_response_store(config.responses, redis_client, config.redis_prefix)
        health = HealthBoard(config.routing.health)
        free_models = _free_models(config, providers, available)
        router = Router(config, available, health, free_models)
        gateway = cls(
            config,
            providers,
            available,
            router,
            usage,
            redis_client,
            admin_token(config),
            cache,
            responses,
            health=health,
            free_models=free_models,
            approvals=ApprovalStore(redis_client, config.redis_prefix, config.routing.escalation_token_ttl_seconds),
        )
        if free_models is not None and not router.by_tier["L0"]:
            await free_models.refresh()
        gateway.conversations = ConversationStore(config, redis_client)
        gateway.shared_metrics = SharedMetrics(gateway.metrics, redis_client, config.redis_prefix)
        if redis_client is not None:
            gateway.background.append(asyncio.create_task(gateway.shared_metrics.publish_forever()))
            # Circuits opened or closed on any worker or replica reach this one's board.
            share = RedisHealthShare(health, redis_client, config.redis_prefix)
            gateway.background.append(asyncio.create_task(share.run_forever()))
        gateway.tokens = (
            RedisTokenStore(redis_client, config.redis_prefix)
            if redis_client is not None
            else await asyncio.to_thread(LocalTokenStore, Path(config.server.data_dir) / "tokens.json")
        )
        gateway.auth = Authenticator(config, gateway.tokens)
        gateway.budgets = Budgets.build(lambda: gateway.config, redis_client)
        gateway.ratelimits = RateLimiter.build(redis_client, config.redis_prefix)
        gateway.alerts = AlertEngine(lambda: gateway.config, redis_client, config.redis_prefix)
        gateway.background.append(asyncio.create_task(gateway.alerts.run_forever()))
        sweep_every = max(1.0, min(30.0, config.budgets.reservation_ttl_seconds / 10))
        gateway.background.append(asyncio.create_task(gateway.budgets.sweep_forever(sweep_every)))
        log.info("%s", gateway.banner())
        log.info("%s", await gateway.auth_banner())
        return gateway

    async def reconfigure(self, config: Config) -> list[Provider]:
        """Swap in a new config; return the providers it replaced (still open).

        Providers whose settings did not change keep their connection pools.
        The attributes are swapped together with no await in between, so a
        request sees either the old set or the new one.
        """
        providers: dict[str, Provider] = {}
        fresh: dict[str, Provider] = {}
        for name, provider in build_providers_lazily(config, self.providers).items():
            providers[name] = provider
            if self.providers.get(name) is not provider:
                fresh[name] = provider
        available = {name for name in providers if name in self.available and name not in fresh}
        available |= await _probe(fresh)
        self.health.config = config.routing.health
        self.approvals.ttl_seconds = config.routing.escalation_token_ttl_seconds
        free_models = _free_models(config, providers, available)
        router = Router(config, available, self.health, free_models)
        if free_models is not None and not router.by_tier["L0"]:
            await free_models.refresh()
        self.free_models = free_models
        retired = [p for name, p in self.providers.items() if providers.get(name) is not p]
        self.config, self.providers, self.available, self.router = config, providers, available, router
        self.cache.config = config.cache  # TTL and rules apply to the next lookup
        return retired

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.shared_metrics.forget()
        await self.budgets.drain()
        await self.ratelimits.drain()
        await self.alerts.close()
        await asyncio.gather(*(p.aclose() for p in self.providers.values()), return_exceptions=True)
        if self.usage is not None:
            await asyncio.to_thread(self.usage.close)
        if self.conversations is not None:
            await asyncio.to_thread(self.conversations.close)
        if self.redis is not None:
            await self.redis.aclose()

    async def redis_ok(self) -> bool | None:
        if self.redis is None:
            return None
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), timeout=1.0))
        except (RedisError, OSError, TimeoutError):
            return False

    def banner(self) -> str:
        config = self.config
        used = sorted({m.provider for m in self.router.list_models()})
        lines = [
            f"AI MCP Gateway on http://{config.server.host}:{config.server.port}  (config: {config.source})",
            f"  providers: {', '.join(used) or 'none'}",
            f"  models:    {', '.join(m.id for m in self.router.list_models())}",
            f"  redis:     {_redact(config.redis_url) if config.redis_url else 'not configured'}",
            f"  usage log: {Path(config.server.data_dir) / 'usage.duckdb'}"
            + (f" (through Redis stream {config.redis_prefix}usage:events)" if config.redis_url else ""),
            "  admin:     "
            + (
                "token from config"
                if config.server.admin_token
                else f"token in {Path(config.server.data_dir) / 'admin_token'}"
            ),
        ]
        if self.router.demo_only:
            lines.append("  NOTE: no provider key and no Ollama found; answering with the built-in 'demo' model ($0).")
        return "\n".join(lines)

    async def auth_banner(self) -> str:
        if await self.auth.is_open():
            return (
                "  auth:      OPEN: no gateway token exists and the gateway listens on loopback, so /v1 needs no token; "
                "create one with `aigw tokens create` to require tokens"
            )
        return "  auth:      gateway token required on /v1 (Authorization: Bearer or x-api-key)"


# Connections one worker may open to Redis. A request briefly holds one per Redis
# call (auth, rate limit, budget, cache); past the limit a call waits for a free
# connection (up to the timeout) instead of failing, as the default pool would.
REDIS_MAX_CONNECTIONS = 200
REDIS_POOL_WAIT_SECONDS = 5.0


def _redis_client(url: str) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_POOL_WAIT_SECONDS
    )
    return aioredis.Redis.from_pool(pool)


def _free_models(config: Config, providers: dict[str, Provider], available: set[str]) -> OpenRouterFree | None:
    """The OpenRouter free-model list, when enabled and OpenRouter is keyed and reachable."""
    settings = config.routing.openrouter_free
    provider = providers.get(settings.provider)
    if (
        not settings.enabled
        or provider is None
        or settings.provider not in available
        or provider.config.kind != "openai"
    ):
        return None
    return OpenRouterFree(settings, settings.provider, provider.client)


async def _probe(providers: dict[str, Provider]) -> set[str]:
    """Names of the providers to route to: all, except keyless local ones that do not answer."""
    probes = {name: p for name, p in providers.items() if p.config.probe}
    results = await asyncio.gather(*(p.check() for p in probes.values()))
    available = {name for name in providers if name not in probes}
    available |= {name for name, ok in zip(probes, results, strict=True) if ok}
    for name in set(providers) - available:
        log.info("provider %s did not answer at %s; not routing to it", name, providers[name].config.base_url)
    return available


def build_providers_lazily(config: Config, current: dict[str, Provider]) -> dict[str, Provider]:
    """Like `build_providers`, but reuse a current adapter whose settings are unchanged."""
    result: dict[str, Provider] = {}
    for name, provider_config in config.providers.items():
        if not provider_config.usable:
            continue
        existing = current.get(name)
        result[name] = (
            existing
            if existing is not None and existing.config == provider_config
            else build_provider(name, provider_config)
        )
    return result


def _redact(url: str | None) -> str:
    if not url or "@" not in url:
        return url or ""
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
