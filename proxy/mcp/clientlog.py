"""Log messages to the MCP client (`notifications/message`), at the level it asked for.

Tools tell the user what they are doing (a test run started and how it ended,
which model answered, an approval being asked) as MCP log messages on the tool
call's own stream. The two protocol eras opt in differently:

- 2025-11-25: the client sends `logging/setLevel`. The level is kept with the
  connection (the SDK's per-connection `Connection.state`), so it holds for
  the session on stdio and stateful HTTP; messages below it are dropped.
- 2026-07-28: `logging/setLevel` no longer exists; each request opts in with
  the `io.modelcontextprotocol/logLevel` `_meta` key, and the SDK's own
  `allowed_log_levels` says which levels that request may receive.

Until a client opts in, nothing is sent, in both eras. The SDK's `ctx.log` is
marked deprecated (logging is deprecated as of 2026-07-28, SEP-2577) and warns
on every call, so the same notification goes out through the session's plain
`send_notification`, gated here exactly as the SDK would gate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from mcp.server.connection import Connection, allowed_log_levels
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.session import ServerSession
from mcp_types import (
    EmptyResult,
    LoggingLevel,
    LoggingMessageNotification,
    LoggingMessageNotificationParams,
    SetLevelRequestParams,
)
from mcp_types.version import is_version_at_least

LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)  # least to most severe
_STATE_KEY = "aigw.log_level"


def _connection_state(session: ServerSession) -> dict[str, Any] | None:
    """The connection's scratch state. The SDK keeps the `Connection` on the session
    but does not expose it to handlers yet (its `Context.connection` is not wired up)."""
    connection = getattr(session, "_connection", None)
    return connection.state if isinstance(connection, Connection) else None


def install(server: MCPServer) -> None:
    """Serve `logging/setLevel` (2025-11-25 clients), which also declares the `logging` capability.

    MCPServer has no decorator for it; the SDK's documented way to serve a method
    the 2026 revision removed is the low-level server's `add_request_handler`.
    """

    async def set_level(ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        state = _connection_state(ctx.session)
        if state is not None:
            state[_STATE_KEY] = params.level
        return EmptyResult()

    server._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, set_level)


def wanted(ctx: Context, level: LoggingLevel) -> bool:
    """Whether the client asked for messages of `level` on this request."""
    request = ctx.request_context
    version = request.protocol_version
    if level not in allowed_log_levels(version, request.meta):
        return False
    if is_version_at_least(version, "2026-07-28"):
        return True
    state = _connection_state(request.session) or {}
    chosen = state.get(_STATE_KEY)
    return chosen in LEVELS and LEVELS.index(level) >= LEVELS.index(chosen)


@dataclass(frozen=True)
class ClientLog:
    """Log lines for one tool call, named `aigw.<tool>` so a client can tell the sources apart."""

    ctx: Context
    logger: str

    async def send(self, level: LoggingLevel, message: str) -> None:
        """Best effort: the SDK drops a notification whose stream has gone."""
        if not wanted(self.ctx, level):
            return
        request = self.ctx.request_context
        params = LoggingMessageNotificationParams(level=level, data=message, logger=self.logger)
        await request.session.send_notification(
            LoggingMessageNotification(params=params), related_request_id=request.request_id
        )

    async def debug(self, message: str) -> None:
        await self.send("debug", message)

    async def info(self, message: str) -> None:
        await self.send("info", message)

    async def notice(self, message: str) -> None:
        await self.send("notice", message)

    async def warning(self, message: str) -> None:
        await self.send("warning", message)


def client_log(ctx: Context, tool: str) -> ClientLog:
    return ClientLog(ctx, f"aigw.{tool}")
