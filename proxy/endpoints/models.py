"""GET /v1/models: virtual models first, then every routable concrete model."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..config import TASKS, TIERS
from .chat import gateway_of, json_response

_DESCRIPTIONS: dict[str, str] = {
    "auto": "Let the gateway classify the request and pick the cheapest tier that fits.",
    **{tier: f"Cheapest healthy model in tier {tier}." for tier in TIERS},
    **{task: f"Classify complexity, route as a {task} task." for task in TASKS},
}


async def list_models(request: Request) -> Response:
    gateway = gateway_of(request)
    created = int(gateway.started_at)
    data = [
        {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "ai-mcp-gateway",
            "description": text,
            "virtual": True,
        }
        for name, text in _DESCRIPTIONS.items()
    ]
    for alias, target in gateway.config.routing.aliases.items():
        data.append(
            {
                "id": alias,
                "object": "model",
                "created": created,
                "owned_by": "ai-mcp-gateway",
                "alias_of": target,
                "virtual": True,
            }
        )
    for model in gateway.router.list_models():
        entry = {
            "id": model.id,
            "object": "model",
            "created": created,
            "owned_by": model.provider,
            "tier": model.tier,
            "context_window": model.context_window,
            "pricing": {"input_per_1m": model.price.input, "output_per_1m": model.price.output},
            "tasks": list(model.tasks),
        }
        if gateway.config.providers[model.provider].kind == "demo":
            entry["description"] = (
                "Built-in demo model: deterministic canned text, $0. Configure a provider for real answers."
            )
        data.append(entry)
    return json_response(orjson.dumps({"object": "list", "data": data}))


ROUTES = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/models", list_models, methods=["GET"]),
]
