"""`/mcp`: the MCP server over Streamable HTTP inside the gateway's own app.

The route exists from start; the MCP server and its session manager are built
in the app's lifespan (after the `Gateway`), and the session manager's own
lifespan runs inside it. Every request needs the admin token or a gateway
token; the caller's token is checked here and never reaches a provider. The
SDK checks Host and Origin (DNS-rebinding protection) on both protocol eras.

A config reload applies here too: `mcp.http_enabled: false` closes /mcp at
once, and new `mcp.allowed_hosts` / `allowed_origins` go into the settings
object the SDK reads on every request. Only `mcp.stateless_http` (the session
manager's mode) and turning HTTP on need a restart: the first /mcp request
after such a reload logs a warning, or answers 404 saying so.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ..apitokens import looks_like_token
from ..auth import bearer_token
from ..config import Config, McpConfig
from ..errors import AuthenticationError, GatewayError, NotFound
from ..runtime import Gateway
from ..types import Principal
from .server import build_server
from .toolbox import PRINCIPAL_KEY, Toolbox

log = logging.getLogger("proxy.mcp")

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass
class McpHttp:
    server: MCPServer
    manager: StreamableHTTPSessionManager
    toolbox: Toolbox
    # The `mcp` settings last applied to the transport (a reload makes a new object).
    applied: McpConfig = field(init=False)

    def __post_init__(self) -> None:
        self.applied = self.toolbox.settings

    def follow(self, config: Config) -> None:
        """Bring the transport's Host/Origin checks up to a reloaded config."""
        settings = config.mcp
        if settings is self.applied:
            return
        fresh, live = security_settings(config), self.manager.security_settings
        if live is not None and (fresh.allowed_hosts, fresh.allowed_origins) != (
            live.allowed_hosts,
            live.allowed_origins,
        ):
            live.allowed_hosts, live.allowed_origins = fresh.allowed_hosts, fresh.allowed_origins
            log.info("/mcp: Host and Origin checks follow the reloaded mcp.allowed_hosts / mcp.allowed_origins")
        if settings.stateless_http != self.applied.stateless_http:
            log.warning(
                "/mcp: mcp.stateless_http changed to %s; it takes effect after a restart", settings.stateless_http
            )
        self.applied = settings


def security_settings(config: Config) -> TransportSecuritySettings:
    hosts = [f"{host}:*" for host in _LOOPBACK_HOSTS] + list(_LOOPBACK_HOSTS)
    origins = [f"http://{host}:*" for host in _LOOPBACK_HOSTS] + [f"http://{host}" for host in _LOOPBACK_HOSTS]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts + list(config.mcp.allowed_hosts),
        allowed_origins=origins + list(config.mcp.allowed_origins),
    )


@asynccontextmanager
async def serve(gateway: Gateway) -> AsyncIterator[McpHttp]:
    """Build the server for `gateway` and run its session manager until the app stops."""
    toolbox = Toolbox.build(gateway, trust_client_roots=False)
    server = build_server(toolbox)
    server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=gateway.config.mcp.stateless_http,
        transport_security=security_settings(gateway.config),
        max_request_body_size=gateway.config.server.max_body_bytes,
    )
    manager = server.session_manager
    try:
        async with manager.run():
            yield McpHttp(server, manager, toolbox)
    finally:
        await toolbox.close()


async def _refuse(error: GatewayError, scope: Scope, receive: Receive, send: Send) -> None:
    headers = dict(error.headers)
    if error.status_code == 401:
        headers["www-authenticate"] = 'Bearer realm="aigw"'
    response = Response(error.json(), status_code=error.status_code, headers=headers, media_type="application/json")
    await response(scope, receive, send)


async def _principal(gateway: Gateway, request: Request, given: str | None) -> Principal:
    """The admin token or a valid gateway token; /mcp is never open, not even on loopback."""
    if given and hmac.compare_digest(given.encode(), gateway.admin_token.encode()):
        return Principal()
    if given and looks_like_token(given):
        return await gateway.auth.principal(request)  # refuses unknown, revoked or expired tokens
    raise AuthenticationError(
        "/mcp needs a gateway token (or the admin token): send 'Authorization: Bearer <token>'",
        code="gateway_token_required",
    )


class McpEndpoint:
    """ASGI endpoint: gateway-token check, then the SDK's Streamable HTTP handling."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        mcp: McpHttp | None = getattr(request.app.state, "mcp", None)
        gateway: Gateway = request.app.state.gateway
        if not gateway.config.mcp.http_enabled:
            await _refuse(NotFound("MCP over HTTP is disabled (mcp.http_enabled: false)"), scope, receive, send)
            return
        if mcp is None:
            message = "MCP over HTTP was off when the gateway started (mcp.http_enabled); restart it to serve /mcp"
            await _refuse(NotFound(message), scope, receive, send)
            return
        mcp.follow(gateway.config)
        given = bearer_token(request)
        try:
            principal = await _principal(gateway, request, given)
        except GatewayError as error:
            await _refuse(error, scope, receive, send)
            return
        assert given is not None
        # The tools charge this principal; the SDK binds each session (and its
        # sealed request state) to the credential that opened it.
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        digest = hashlib.sha256(given.encode()).hexdigest()
        scope["user"] = AuthenticatedUser(
            AccessToken(token=digest, client_id=principal.token_id or "aigw-admin", scopes=[], subject=digest[:16])
        )
        await mcp.manager.handle_request(scope, receive, send)


ROUTES: list[BaseRoute] = [Route("/mcp", endpoint=McpEndpoint())]
