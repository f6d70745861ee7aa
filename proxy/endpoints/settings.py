"""Admin API for runtime configuration: providers, models, tiers and settings.

Changes are runtime overrides layered over config.yaml and the environment
(see proxy/overrides.py for where they are kept). Each change is validated as
a whole config before it is stored, applied here, and announced to the other
workers and replicas.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth import require_admin
from ..config import Config, ConfigError
from ..errors import InvalidRequest
from ..reload import ConfigWatcher
from ..requests import read_json
from .chat import gateway_of, json_response

_SECRET_KEYS = {"api_key", "admin_token"}


def redact(value: Any) -> Any:
    """Secrets are never sent back: only whether they are set."""
    if isinstance(value, dict):
        return {k: (("set" if v else None) if k in _SECRET_KEYS else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def _watcher(request: Request) -> ConfigWatcher:
    require_admin(request, gateway_of(request).admin_token)
    watcher: ConfigWatcher = request.app.state.config_watcher
    return watcher


async def _view(watcher: ConfigWatcher, config: Config) -> Response:
    body = {
        "effective": redact(config.model_dump(mode="json")),
        "overrides": redact(await watcher.overrides.get()),
        "storedIn": watcher.overrides.location,
        "configFile": str(watcher.path) if watcher.path else None,
        "reloadError": watcher.last_error,
    }
    return json_response(orjson.dumps(body))


async def get_config(request: Request) -> Response:
    watcher = _watcher(request)
    return await _view(watcher, gateway_of(request).config)


async def patch_config(request: Request) -> Response:
    watcher = _watcher(request)
    change = await read_json(request, 1024 * 1024)
    try:
        config = await watcher.change_overrides(change)
    except ConfigError as error:
        raise InvalidRequest(str(error), code="invalid_config") from None
    return await _view(watcher, config)


async def reset_config(request: Request) -> Response:
    watcher = _watcher(request)
    await watcher.overrides.put({})
    await watcher.reload()
    return await _view(watcher, gateway_of(request).config)


ROUTES = [
    Route("/admin/config", get_config, methods=["GET"]),
    Route("/admin/config", patch_config, methods=["PATCH"]),
    Route("/admin/config/overrides", reset_config, methods=["DELETE"]),
]
