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

from ..alerts.engine import redacted
from ..apitokens import new_record
from ..auth import check_project, require_admin
from ..config import AlertChannel, AlertRule, Limits
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
        name=spec.name,
        project=spec.project,
        limits=spec.limits,
        allowed_models=spec.allowed_models,
        expires_at=expires_at,
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
    report = await gateway.budgets.report(f"token:{record.id}", record.limit)
    return ok({**record.public(), "spend": report["spend"]})


async def revoke_token(request: Request) -> Response:
    gateway = await admin_gateway(request)
    token_id = request.path_params["token_id"]
    record = await gateway.tokens.revoke(token_id)
    if record is None:
        raise NotFound(f"no gateway token {token_id!r}", code="token_not_found")
    return ok(record.public())


# -- projects: limits and spend ----------------------------------------------------


async def _project_body(gateway: Gateway, project: str) -> dict[str, Any]:
    configured = gateway.config.projects.get(project)
    override = await gateway.budgets.ledger.get_override(project)
    effective = await gateway.budgets.project_limits(project)
    report = await gateway.budgets.report(f"project:{project}", effective)
    return {
        "project": project,
        "limits": report["limits"],
        "configured": configured.model_dump(exclude_none=True) if configured else None,
        "override": override.model_dump(exclude_unset=True) if override else None,
        "spend": report["spend"],
        "pending_reservations": await gateway.budgets.ledger.pending(),
    }


async def list_projects(request: Request) -> Response:
    gateway = await admin_gateway(request)
    names = sorted(set(gateway.config.projects) | set(await gateway.budgets.ledger.overrides()))
    return ok({"data": [await _project_body(gateway, name) for name in names]})


async def show_project(request: Request) -> Response:
    gateway = await admin_gateway(request)
    return ok(await _project_body(gateway, check_project(request.path_params["project"])))


async def set_project(request: Request) -> Response:
    """Replace the project's run-time limits (fields left out fall back to the config file)."""
    gateway = await admin_gateway(request)
    project = check_project(request.path_params["project"])
    limits: Limits = parse(Limits, await read_json(request, 64 * 1024))
    await gateway.budgets.set_override(project, limits)
    return ok(await _project_body(gateway, project))


async def reset_project(request: Request) -> Response:
    gateway = await admin_gateway(request)
    project = check_project(request.path_params["project"])
    await gateway.budgets.set_override(project, None)
    return ok(await _project_body(gateway, project))


# -- alerts ----------------------------------------------------------------------


async def list_rules(request: Request) -> Response:
    gateway = await admin_gateway(request)
    rules = await gateway.alerts.rules()
    return ok({"data": [{"name": name, **rule.model_dump()} for name, rule in rules.items()]})


async def set_rule(request: Request) -> Response:
    gateway = await admin_gateway(request)
    name = check_project(request.path_params["name"])
    rule: AlertRule = parse(AlertRule, await read_json(request, 64 * 1024))
    await gateway.alerts.set_rule(name, rule)
    return ok({"name": name, **rule.model_dump()})


async def delete_rule(request: Request) -> Response:
    gateway = await admin_gateway(request)
    name = request.path_params["name"]
    await gateway.alerts.set_rule(name, None)
    return ok({"name": name, "deleted": True})


async def list_channels(request: Request) -> Response:
    gateway = await admin_gateway(request)
    channels = await gateway.alerts.channels()
    return ok({"data": [{"name": name, **redacted(channel)} for name, channel in channels.items()]})


async def set_channel(request: Request) -> Response:
    gateway = await admin_gateway(request)
    name = check_project(request.path_params["name"])
    channel: AlertChannel = parse(AlertChannel, await read_json(request, 64 * 1024))
    await gateway.alerts.set_channel(name, channel)
    return ok({"name": name, **redacted(channel)})


async def delete_channel(request: Request) -> Response:
    gateway = await admin_gateway(request)
    name = request.path_params["name"]
    await gateway.alerts.set_channel(name, None)
    return ok({"name": name, "deleted": True})


async def test_channel(request: Request) -> Response:
    gateway = await admin_gateway(request)
    name = request.path_params["name"]
    result = await gateway.alerts.send_test(name)
    if result is None:
        raise NotFound(f"no alert channel {name!r}", code="channel_not_found")
    return ok({"name": name, "delivery": result})


async def list_firings(request: Request) -> Response:
    gateway = await admin_gateway(request)
    return ok({"data": await gateway.alerts.firings()})


async def evaluate_now(request: Request) -> Response:
    gateway = await admin_gateway(request)
    return ok({"data": await gateway.alerts.evaluate()})


ROUTES = [
    Route("/admin/alerts/rules", list_rules, methods=["GET"]),
    Route("/admin/alerts/rules/{name}", set_rule, methods=["PUT"]),
    Route("/admin/alerts/rules/{name}", delete_rule, methods=["DELETE"]),
    Route("/admin/alerts/channels", list_channels, methods=["GET"]),
    Route("/admin/alerts/channels/{name}", set_channel, methods=["PUT"]),
    Route("/admin/alerts/channels/{name}", delete_channel, methods=["DELETE"]),
    Route("/admin/alerts/channels/{name}/test", test_channel, methods=["POST"]),
    Route("/admin/alerts/firings", list_firings, methods=["GET"]),
    Route("/admin/alerts/evaluate", evaluate_now, methods=["POST"]),
    Route("/admin/projects", list_projects, methods=["GET"]),
    Route("/admin/projects/{project}", show_project, methods=["GET"]),
    Route("/admin/projects/{project}", set_project, methods=["PUT"]),
    Route("/admin/projects/{project}", reset_project, methods=["DELETE"]),
    Route("/admin/tokens", create_token, methods=["POST"]),
    Route("/admin/tokens", list_tokens, methods=["GET"]),
    Route("/admin/tokens/{token_id}", show_token, methods=["GET"]),
    Route("/admin/tokens/{token_id}", revoke_token, methods=["DELETE"]),
    Route("/admin/tokens/{token_id}/revoke", revoke_token, methods=["POST"]),
]
