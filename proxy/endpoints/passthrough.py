"""POST /v1/completions and /v1/embeddings, passed to a provider that serves them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import InvalidRequest, NotFound
from ..requests import check_types, read_json
from .chat import gateway_of, json_response


def _handler(path: str, capability: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        gateway = gateway_of(request)
        body = await read_json(request, gateway.config.server.max_body_bytes)
        check_types(body)
        model_id = body.get("model")
        if not model_id or not isinstance(model_id, str):
            raise InvalidRequest("'model' is required", param="model", code="missing_required_parameter")
        if body.get("stream"):
            raise InvalidRequest(f"streaming is not supported on {path}", param="stream")
        model = gateway.router.by_id.get(gateway.config.routing.aliases.get(model_id, model_id))
        if model is not None:
            provider = gateway.providers[model.provider]
            upstream_model = model.upstream_model
        else:
            # Embedding models are rarely listed for routing; any provider that
            # declares the capability may serve the name as given.
            capable = [
                p
                for name, p in gateway.providers.items()
                if name in gateway.available and getattr(p.config, capability)
            ]
            if not capable:
                raise NotFound(
                    f"no configured provider serves {path} for model {model_id!r}",
                    param="model",
                    code="model_not_found",
                )
            provider, upstream_model = capable[0], model_id
        response = await provider.passthrough(path, {**body, "model": upstream_model})
        return json_response(orjson.dumps(response), headers={"x-gateway-provider": provider.name})

    return endpoint


completions = _handler("/completions", "supports_completions")
embeddings = _handler("/embeddings", "supports_embeddings")


ROUTES = [
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
]
