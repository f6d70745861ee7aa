"""`/mcp` in the gateway's app, with the MCP SDK loaded on the first request to it.

The SDK and the tools behind it cost a worker about 35 MiB and a second of
imports; a gateway that only serves OpenAI traffic never needs them. The route
exists from start; the first /mcp request imports `proxy.mcp.http` and starts
the server's session manager in a task of its own (anyio requires a task
group to be left by the task that entered it, so it cannot live in a request
task), which runs until the app stops.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ..runtime import Gateway

if TYPE_CHECKING:
    from .http import McpHttp


class McpMount:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        # Turning HTTP on by a reload needs a restart (see proxy.mcp.http).
        self.enabled_at_start = gateway.config.mcp.http_enabled
        self._ready: asyncio.Future[McpHttp] | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def started(self) -> McpHttp:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._run(self._ready), name="mcp-http")
        return await asyncio.shield(self._ready)

    async def _run(self, ready: asyncio.Future[McpHttp]) -> None:
        from .http import serve

        try:
            async with serve(self.gateway) as mcp:
                ready.set_result(mcp)
                await self._stop.wait()
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
                self._ready = None  # the next request tries again
            raise

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class LazyMcpEndpoint:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from .http import McpEndpoint

        app = scope["app"]
        mount: McpMount = app.state.mcp_mount
        if mount.enabled_at_start and mount.gateway.config.mcp.http_enabled:
            app.state.mcp = await mount.started()
        await McpEndpoint()(scope, receive, send)


ROUTES: list[BaseRoute] = [Route("/mcp", endpoint=LazyMcpEndpoint())]
