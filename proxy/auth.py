"""Who is calling: a gateway token -> `Principal`; and the admin check.

Secure by default: a gateway bound to anything but loopback refuses every
guarded request without a valid token. Bound to loopback, with
`auth.open_on_loopback` and no token created yet, it runs open (and says so at
start); the project then comes from the `x-gateway-project` header.

`AuthMiddleware` guards every path except the exempt prefixes below, so an
endpoint added later is protected without remembering to be.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import secrets
from dataclasses import replace
from pathlib import Path

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .apitokens import TokenRecord, TokenStore, hash_secret, looks_like_token
from .config import TIERS, Config
from .errors import AuthenticationError, GatewayError, InvalidRequest, PermissionDenied, ServiceUnavailable
from .types import Principal, RouteDecision

log = logging.getLogger("proxy.auth")

_PROJECT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DEFAULT = Principal()
# Paths with their own guard (admin token) or nothing worth guarding.
# /mcp authenticates itself (admin or gateway token, never open): proxy/mcp/http.py.
EXEMPT_PREFIXES = ("/health", "/admin", "/v1/admin", "/dashboard", "/favicon.ico", "/mcp")
# Lowers the ceiling for one request (never raises it): `aigw create-project --max-layer` sends it.
MAX_TIER_HEADER = "x-gateway-max-tier"


def bearer_token(request: Request) -> str | None:
    """The caller's secret from `Authorization: Bearer` or `x-api-key` (Anthropic clients)."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_project(project: str) -> str:
    if not _PROJECT.match(project):
        raise InvalidRequest(
            "x-gateway-project must be 1-64 letters, digits, '_', '.', ':' or '-'", param="x-gateway-project"
        )
    return project


class Authenticator:
    """Turns a request's credentials into a `Principal`, or refuses it."""

    # Records last read from the store, by secret hash: while Redis is briefly
    # unreachable, known tokens keep working (revocations then wait for it).
    KNOWN_MAX = 10_000

    def __init__(self, config: Config, store: TokenStore) -> None:
        self.store = store
        self.may_run_open = config.auth.open_on_loopback and is_loopback(config.server.host)
        self.tokens_exist = False
        self.known: dict[str, TokenRecord] = {}

    async def is_open(self) -> bool:
        """Open only while no token exists: creating the first one closes the gateway for good."""
        if not self.may_run_open or self.tokens_exist:
            return False
        try:
            self.tokens_exist = await self.store.has_tokens()
        except (RedisError, OSError) as error:
            log.warning("token store unreachable (%s); keeping the last known auth mode", type(error).__name__)
        return not self.tokens_exist

    async def lookup(self, secret: str) -> TokenRecord | None:
        digest = hash_secret(secret)
        try:
            record = await self.store.lookup(secret)
        except (RedisError, OSError) as error:
            if digest in self.known:
                return self.known[digest]
            raise ServiceUnavailable(
                "the token store is unreachable; try again shortly", code="token_store_unavailable"
            ) from error
        if record is not None:
            if len(self.known) >= self.KNOWN_MAX:
                self.known.clear()
            self.known[digest] = record
        return record

    async def principal(self, request: Request) -> Principal:
        secret = bearer_token(request)
        if secret and looks_like_token(secret):
            return await self._token_principal(secret)
        if await self.is_open():
            project = request.headers.get("x-gateway-project")
            return DEFAULT if project is None else Principal(project=check_project(project))
        raise AuthenticationError(
            "this gateway needs a gateway token: send 'Authorization: Bearer <token>' or 'x-api-key: <token>' "
            "(an admin creates one with `aigw tokens create`)",
            code="missing_api_key" if not secret else "invalid_api_key",
        )

    async def _token_principal(self, secret: str) -> Principal:
        record = await self.lookup(secret)
        # The message never repeats the secret, not even in part.
        if record is None:
            raise AuthenticationError("the gateway token is not valid", code="invalid_api_key")
        if not record.usable():
            raise AuthenticationError(f"the gateway token {record.id} is {record.status()}", code="invalid_api_key")
        limits = record.limit
        return Principal(
            project=record.project,
            token_id=record.id,
            max_tier=limits.max_tier,
            allowed_models=record.allowed_models,
            token_limits=limits,
        )


class AuthMiddleware:
    """Authenticates guarded paths and leaves the `Principal` in `request.state.principal`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = scope["app"].state.gateway.auth
        try:
            principal = await authenticator.principal(Request(scope))
        except GatewayError as error:
            response = Response(
                error.json(), status_code=error.status_code, headers=error.headers, media_type="application/json"
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def authenticate(request: Request) -> Principal:
    """The `Principal` the middleware found for this request, under the request's own `x-gateway-max-tier`."""
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        project = request.headers.get("x-gateway-project")
        principal = DEFAULT if project is None else Principal(project=check_project(project))
    ceiling = request.headers.get(MAX_TIER_HEADER)
    return principal if ceiling is None else lower_ceiling(principal, ceiling)


def lower_ceiling(principal: Principal, value: str) -> Principal:
    """The principal with `max_tier` lowered to `value` for one request; a higher value changes nothing."""
    wanted = value.strip().upper()
    tier = next((t for t in TIERS if t == wanted), None)
    if tier is None:
        raise InvalidRequest(
            f"{MAX_TIER_HEADER} must be one of {', '.join(TIERS)} (got {value[:20]!r})",
            param=MAX_TIER_HEADER,
            code="invalid_value",
        )
    current = principal.max_tier
    lowered = tier if current is None or TIERS.index(tier) < TIERS.index(current) else current
    return replace(principal, max_tier=lowered, request_max_tier=tier)


def authorize_model(principal: Principal, decision: RouteDecision) -> None:
    """A token limited to some models may use them by id or by the name it sent."""
    allowed = principal.allowed_models
    if allowed and decision.model.id not in allowed and decision.requested_model not in allowed:
        raise PermissionDenied(
            f"this token may not use model {decision.model.id!r} (allowed: {', '.join(allowed)})",
            param="model",
            code="model_not_allowed",
        )


def admin_token(config: Config) -> str:
    """The configured admin token, else the one kept in `data_dir/admin_token` (created once)."""
    if config.server.admin_token:
        return config.server.admin_token
    path = Path(config.server.data_dir) / "admin_token"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        token = "aigw-admin-" + secrets.token_urlsafe(24)
        # O_EXCL: when several workers start at once, the first one's token wins.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(token)
        return token


def require_admin(request: Request, expected: str) -> None:
    """Refuse unless the request carries the admin token (compared in constant time)."""
    given = bearer_token(request)
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise AuthenticationError(
            "this endpoint needs the admin token: send 'Authorization: Bearer <admin token>'",
            code="admin_token_required",
        )
