"""Real MCP clients for the tests: the `mcp` SDK's Client over Streamable HTTP or stdio."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import (
    EmptyResult,
    LoggingLevel,
    LoggingMessageNotificationParams,
    SetLevelRequest,
    SetLevelRequestParams,
)

T = TypeVar("T")
ERAS = ("legacy", "2026-07-28")  # initialize handshake (2025-11-25) and the stateless era
ROOT = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def http_client(url: str, token: str | None, mode: str = "legacy", **options: Any) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with create_mcp_http_client(headers=headers) as http:
        async with Client(streamable_http_client(url + "/mcp", http_client=http), mode=mode, **options) as client:
            yield client


def stdio_params(config_path: Path, data_dir: Path, *roots: Path) -> StdioServerParameters:
    args = ["-m", "proxy", "mcp", "--config", str(config_path)]
    for root in roots:
        args += ["--root", str(root)]
    return StdioServerParameters(
        command=sys.executable,
        args=args,
        cwd=str(ROOT),
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "DATA_DIR": str(data_dir), "LOG_LEVEL": "warning"},
    )


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(scenario)


def text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def set_log_level(client: Client, level: LoggingLevel | str) -> EmptyResult:
    """`logging/setLevel` on the wire (the SDK's `set_logging_level` wrapper warns: logging is deprecated in
    2026). Built without validation, so a test can send a level the server must refuse."""
    params = SetLevelRequestParams.model_construct(level=level)  # type: ignore[arg-type]
    return await client.session.send_request(SetLevelRequest(params=params), EmptyResult)


class LogLines:
    """(level, logger, text) of every `notifications/message` a client received; pass as `logging_callback`.

    Not a list subclass: the SDK tests the callback for truth, and an empty list is false.
    """

    def __init__(self) -> None:
        self.lines: list[tuple[str, str | None, str]] = []

    async def __call__(self, params: LoggingMessageNotificationParams) -> None:
        self.lines.append((params.level, params.logger, str(params.data)))

    def levels(self) -> list[str]:
        return [level for level, _, _ in self.lines]
