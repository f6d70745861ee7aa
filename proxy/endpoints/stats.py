"""GET /v1/server-stats: the seed's live statistics, summed over every worker of the gateway."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..metrics import server_stats
from .chat import gateway_of, json_response


async def stats(request: Request) -> Response:
    gateway = gateway_of(request)
    values = await gateway.shared_metrics.collect()
    providers = {name: name in gateway.available for name in gateway.providers}
    body = server_stats(values, gateway.started_at, providers)
    # Per provider and model: circuit state (shared by every worker with Redis), error rate, latency
    # (counters of this worker).
    body["health"] = gateway.health.snapshot()
    return json_response(orjson.dumps(body))


ROUTES = [Route("/v1/server-stats", stats, methods=["GET"])]
