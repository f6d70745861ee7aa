"""GET /metrics: Prometheus text format, summed over every worker of the gateway."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..metrics import render
from .chat import gateway_of


async def metrics(request: Request) -> Response:
    gateway = gateway_of(request)
    values = await gateway.shared_metrics.collect()
    return Response(render(values), media_type="text/plain; version=0.0.4; charset=utf-8")


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
