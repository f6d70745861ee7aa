"""The admin dashboard's static files and the gateway's own log (tail and download)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..auth import require_admin
from ..logbuffer import LogBuffer
from .chat import gateway_of, json_response


def _buffer(request: Request) -> LogBuffer:
    require_admin(request, gateway_of(request).admin_token)
    buffer: LogBuffer = request.app.state.log_buffer
    return buffer


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() else default


async def logs(request: Request) -> Response:
    buffer = _buffer(request)
    query = request.query_params
    lines = buffer.since(
        _int(query.get("after"), 0),
        level=query.get("level"),
        text=query.get("q"),
        limit=min(_int(query.get("limit"), 500), 2000),
    )
    if query.get("format") == "text":
        return PlainTextResponse(
            "\n".join(line.as_text() for line in lines) + "\n",
            headers={"content-disposition": 'attachment; filename="aigw.log"'},
        )
    return json_response(orjson.dumps({"lines": [line.as_dict() for line in lines]}))


async def log_stream(request: Request) -> Response:
    buffer = _buffer(request)
    query = request.query_params
    level, text = query.get("level"), query.get("q")

    async def events() -> AsyncIterator[ServerSentEvent]:
        seq = _int(query.get("after"), 0)
        while True:
            lines = buffer.since(seq, level=level, text=text)
            for line in lines:
                yield ServerSentEvent(data=orjson.dumps(line.as_dict()).decode(), id=str(line.seq))
            if lines:
                seq = lines[-1].seq
            elif buffer.lines:
                seq = max(seq, buffer.lines[-1].seq)
            await buffer.wait(seq, timeout=15)

    return EventSourceResponse(events(), ping=15)


async def to_dashboard(request: Request) -> Response:
    return RedirectResponse("/dashboard/")


ROUTES: list[BaseRoute] = [
    Route("/admin/logs", logs, methods=["GET"]),
    Route("/admin/logs/stream", log_stream, methods=["GET"]),
    Route("/dashboard", to_dashboard, methods=["GET"]),
    Mount("/dashboard", StaticFiles(packages=[("proxy", "dashboard/static")], html=True), name="dashboard"),
]
