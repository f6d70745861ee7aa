"""GET /health: the seed's shape plus each provider's state."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .chat import gateway_of, json_response


async def health(request: Request) -> Response:
    gateway = gateway_of(request)
    watcher = getattr(request.app.state, "config_watcher", None)
    redis_ok = await gateway.redis_ok()
    database_ok = gateway.usage is not None and gateway.usage.healthy
    providers = {
        name: {
            "kind": provider.config.kind,
            "status": "up" if name in gateway.available else "down",
            "circuit": gateway.health.provider_state(name),
            **({"demo": True} if provider.config.kind == "demo" else {}),
        }
        for name, provider in gateway.providers.items()
    }
    degraded = redis_ok is False or not database_ok or not gateway.available
    body = {
        "status": "degraded" if degraded else "ok",
        "redis": redis_ok if redis_ok is not None else False,
        "redisConfigured": redis_ok is not None,
        "database": database_ok,
        "cache": gateway.cache.status(),
        "usage": gateway.usage.status() if gateway.usage is not None else None,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "providers": providers,
        "circuits": gateway.health.snapshot(),
        # True while every worker and replica shares its circuits through Redis.
        "circuitsShared": gateway.health.share is not None and gateway.health.share.available,
        "openrouterFree": gateway.free_models.status() if gateway.free_models is not None else None,
        "demo": gateway.router.demo_only,
        "config": {
            "source": gateway.config.source,
            "reloadError": watcher.last_error if watcher else None,
            "restartRequired": watcher.restart_required if watcher else [],
        },
    }
    return json_response(orjson.dumps(body), status_code=200)


ROUTES = [Route("/health", health, methods=["GET"])]
