"""`create_app(config)`: routes, the error handlers, and the lifespan that owns clients."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from .auth import AuthMiddleware
from .config import Config, load_config
from .endpoints import (
    admin,
    chat,
    dashboard,
    health,
    messages,
    metrics,
    models,
    passthrough,
    responses,
    seed,
    settings,
    sql,
    stats,
)
from .errors import GatewayError
from .logbuffer import LogBuffer
from .logsetup import configure_logging
from .mcp import mount as mcp_mount
from .reload import ConfigWatcher
from .runtime import Gateway

log = logging.getLogger("proxy")

_HTTP_ERROR_TYPES = {404: ("not_found", "invalid_request_error"), 405: ("method_not_allowed", "invalid_request_error")}


async def gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return Response(exc.json(), status_code=exc.status_code, headers=exc.headers, media_type="application/json")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, kind = _HTTP_ERROR_TYPES.get(exc.status_code, ("http_error", "invalid_request_error"))
    message = (
        f"{request.method} {request.url.path} does not exist on this gateway"
        if exc.status_code == 404
        else f"{request.method} is not allowed on {request.url.path}"
        if exc.status_code == 405
        else str(exc.detail)
    )
    error = GatewayError(message, code=code, status_code=exc.status_code, error_type=kind)
    return await gateway_error(request, error)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    error = GatewayError("the gateway hit an internal error; it has been logged", code="internal_error")
    return await gateway_error(request, error)


# Each endpoint module lists its own routes; adding a family is one line here.
# Starlette tries routes in order, one regex each: the client endpoints come first.
ENDPOINT_MODULES = (
    chat,
    messages,
    responses,
    models,
    passthrough,
    health,
    admin,
    settings,
    seed,
    mcp_mount,
    sql,
    stats,
    metrics,
    dashboard,
)


def routes() -> list[BaseRoute]:
    return [route for module in ENDPOINT_MODULES for route in module.ROUTES]


def app_from_env() -> Starlette:
    """App factory for `uvicorn --factory` workers: each worker loads the config itself."""
    config = load_config()
    configure_logging(config)
    return create_app(config)


def create_app(config: Config) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Installed first so the dashboard's log tail shows start-up too.
        log_buffer = LogBuffer()
        logging.getLogger().addHandler(log_buffer)
        app.state.log_buffer = log_buffer
        gateway = await Gateway.start(config)
        app.state.gateway = gateway
        source = Path(config.source)
        watcher = ConfigWatcher(gateway, source if source.is_file() else None)
        app.state.config_watcher = watcher
        await watcher.start()
        mount = mcp_mount.McpMount(gateway)
        app.state.mcp_mount = mount
        try:
            yield
        finally:
            await mount.close()
            await watcher.stop()
            await gateway.close()
            logging.getLogger().removeHandler(log_buffer)

    return Starlette(
        routes=routes(),
        lifespan=lifespan,
        middleware=[Middleware(AuthMiddleware)],
        exception_handlers={
            GatewayError: gateway_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
    )
