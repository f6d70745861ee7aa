"""Who is calling: request headers -> `Principal`.

Until gateway tokens exist the gateway runs open (loopback only); the project a
request is charged to comes from the `x-gateway-project` header.
"""

from __future__ import annotations

import re

from starlette.requests import Request

from .errors import InvalidRequest
from .types import Principal

_PROJECT = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
DEFAULT = Principal()


def authenticate(request: Request) -> Principal:
    project = request.headers.get("x-gateway-project")
    if project is None:
        return DEFAULT
    if not _PROJECT.match(project):
        raise InvalidRequest(
            "x-gateway-project must be 1-64 letters, digits, '_', '.', ':' or '-'", param="x-gateway-project"
        )
    return Principal(project=project)
