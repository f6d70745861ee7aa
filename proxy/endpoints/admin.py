"""The admin API under /admin: gateway tokens, project limits and spend, alerts.

Every endpoint needs the admin token (`require_admin`). A token's secret is in
the answer to its creation and nowhere else.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..apitokens import new_record
from ..auth import check_project, require_admin
from ..config import Limits
from ..errors import InvalidRequest, NotFound
from ..requests import read_json
from ..runtime import Gateway
from .chat import gateway_of, json_response


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200)
    project: str = "default"
    expires_at: float | None = None
    expires_in_days: float | None = Field(None, gt=0)
    allowed_models: tuple[str, ...] = ()
    limits: Limits = Limits()


def parse(model: type[BaseModel], body: dict[str, Any]) -> Any:
    """Validate an admin request body; errors name the field."""
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidRequest(f"{where}: {first['msg']}" if where else first["msg"], param=where or None) from None


async def admin_gateway(request: Request) -> Gateway:
    gateway = gateway_of(request)
    require_admin(request, gateway.admin_token)
    return gateway


def ok(body: Any, status_code: int = 200) -> Response:
    return json_response(orjson.dumps(body), status_code=status_code)


# -- tokens ----------------------------------------------------------------------


async def create_token(request: Request) -> Response:
    gateway = await admin_gateway(request)
    spec: TokenRequest = parse(TokenRequest, await read_json(request, 64 * 1024))
    check_project(spec.project)
    expires_at = spec.expires_at
    if spec.expires_in_days is not None:
        expires_at = time.time() + spec.expires_in_days * 86400
    record, secret = new_record(
        name=spec.name, project=spec.project, limits=spec.limits, allowed_models=spec.allowed_models, expires_at=expires_at
    )
    await gateway.tokens.add(record)
    return ok({**record.public(), "secret": secret, "note": "store this secret now: it is not shown again"}, 201)


async def list_tokens(request: Request) -> Response:
    gateway = await admin_gateway(request)
    return ok({"data": [record.public() for record in await gateway.tokens.list()]})


async def show_token(request: Request) -> Response:
    gateway = await admin_gateway(request)
    token_id = request.path_params["token_id"]
    record = await gateway.tokens.get(token_id)
    if record is None:
        raise NotFound(f"no gateway token {token_id!r}", code="token_not_found")
    return ok(record.public())


async def revoke_token(request: Request) -> Response:
    gateway = await admin_gateway(request)
    token_id = request.path_params["token_id"]
    record = await gateway.tokens.revoke(token_id)
    if record is None:
        raise NotFound(f"no gateway token {token_id!r}", code="token_not_found")
    return ok(record.public())


ROUTES = [
    Route("/admin/tokens", create_token, methods=["POST"]),
    Route("/admin/tokens", list_tokens, methods=["GET"]),
    Route("/admin/tokens/{token_id}", show_token, methods=["GET"]),
    Route("/admin/tokens/{token_id}", revoke_token, methods=["DELETE"]),
    Route("/admin/tokens/{token_id}/revoke", revoke_token, methods=["POST"]),
]
