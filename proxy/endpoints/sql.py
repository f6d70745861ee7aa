"""POST /v1/admin/sql: read-only SQL over the usage log, for the admin token only.

Body `{"sql": "SELECT ..."}`; answer `{"columns", "rows", "row_count",
"truncated"}`. Whichever worker answers, the query runs where the DuckDB file
is held (see `proxy.usage.log`), with the row and time limits of `usage.sql_*`.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth import require_admin
from ..errors import ServiceUnavailable
from ..requests import read_json
from .chat import gateway_of, json_response


async def admin_sql(request: Request) -> Response:
    gateway = gateway_of(request)
    require_admin(request, gateway.admin_token)
    if gateway.usage is None:
        raise ServiceUnavailable("the usage log is disabled (usage.enabled: false)", code="usage_disabled")
    body = await read_json(request, gateway.config.usage.sql_max_chars * 4 + 1024)
    result = await gateway.usage.query(body.get("sql") or "", gateway.redis)
    return json_response(orjson.dumps(result.as_json()))


ROUTES = [Route("/v1/admin/sql", admin_sql, methods=["POST"])]
