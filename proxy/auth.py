"""Who is calling: request headers -> `Principal`; and the admin check.

Until gateway tokens exist the gateway runs open (loopback only); the project a
request is charged to comes from the `x-gateway-project` header.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from pathlib import Path

from starlette.requests import Request

from .config import Config
from .errors import AuthenticationError, InvalidRequest
from .types import Principal

_PROJECT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DEFAULT = Principal()


def bearer_token(request: Request) -> str | None:
    """The caller's secret from `Authorization: Bearer` or `x-api-key` (Anthropic clients)."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def authenticate(request: Request) -> Principal:
    project = request.headers.get("x-gateway-project")
    if project is None:
        return DEFAULT
    if not _PROJECT.match(project):
        raise InvalidRequest(
            "x-gateway-project must be 1-64 letters, digits, '_', '.', ':' or '-'", param="x-gateway-project"
        )
    return Principal(project=project)


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
