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
    return json_response(orjson.dumps(server_stats(values, gateway.started_at, providers)))


ROUTES = [Route("/v1/server-stats", stats, methods=["GET"])]
