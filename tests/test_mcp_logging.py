"""MCP log messages: the `logging` capability, `logging/setLevel` (2025-11-25) and the per-request
opt-in (2026-07-28), over HTTP and stdio, with real SDK clients.

Nothing is sent until the client opts in; then only messages at or above its level arrive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.conftest import base_config
from tests.fakes import FakeUpstream
from tests.mcp_support import LogLines, http_client, run, set_log_level, stdio_params, text

TOKEN = "aigw-admin-test-token"


@pytest.fixture
def url(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path) -> str:
    raw = base_config(upstream.url, None, tmp_path / "data", server={"admin_token": TOKEN})
    return str(start_gateway(raw).url)


@pytest.mark.parametrize(("mode", "version"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
def test_logging_capability_is_declared_in_both_eras(url: str, mode: str, version: str) -> None:
    async def scenario() -> tuple[str, Any]:
        async with http_client(url, TOKEN, mode) as client:  # auto: server/discover, not a pinned version
            return client.protocol_version, client.server_capabilities.logging

    negotiated, capability = run(scenario)
    assert negotiated == version and capability is not None


def test_legacy_client_sets_the_level_for_its_session(url: str) -> None:
    lines = LogLines()
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with http_client(url, TOKEN, "legacy", logging_callback=lines) as client:
            await client.call_tool("chat", {"prompt": "hi there"})
            seen["before"] = list(lines.lines)
            seen["set"] = await set_log_level(client, "info")
            answer = await client.call_tool("chat", {"prompt": "hi there"})
            seen["answer"] = answer
            seen["at_info"] = list(lines.lines)
            await set_log_level(client, "warning")
            await client.call_tool("chat", {"prompt": "hi there"})
            seen["at_warning"] = list(lines.lines)
        other = LogLines()
        async with http_client(url, TOKEN, "legacy", logging_callback=other) as client:
            await client.call_tool("chat", {"prompt": "hi there"})
        seen["other_session"] = other.lines

    run(scenario)
    assert seen["set"].model_dump(exclude_none=True) == {}
    assert seen["before"] == []  # no level set yet: nothing is sent
    assert not seen["answer"].is_error, text(seen["answer"])
    ((level, logger, line),) = seen["at_info"]
    assert (level, logger) == ("info", "aigw.chat")
    assert line.startswith("answered by free-small (tier L0)")
    assert seen["at_warning"] == seen["at_info"]  # the info line of the third call was filtered out
    assert seen["other_session"] == []  # the level belongs to the session that set it


def test_legacy_set_level_rejects_an_unknown_level(url: str) -> None:
    async def scenario() -> tuple[MCPError, Any]:
        async with http_client(url, TOKEN, "legacy") as client:
            with pytest.raises(MCPError) as refused:
                await set_log_level(client, "loud")
            return refused.value, await client.call_tool("chat", {"prompt": "hi there"})  # the session goes on

    refused, answer = run(scenario)
    assert refused.error.code == -32602 and refused.error.message == "Invalid request parameters"
    assert not answer.is_error


@pytest.mark.parametrize(("level", "expected"), [(None, []), ("warning", []), ("info", ["info"]), ("debug", ["info"])])
def test_modern_client_opts_in_per_request(url: str, level: str | None, expected: list[str]) -> None:
    lines = LogLines()

    async def scenario() -> Any:
        async with http_client(url, TOKEN, "2026-07-28", logging_callback=lines, log_level=level) as client:
            return await client.call_tool("chat", {"prompt": "hi there"})

    answer = run(scenario)
    assert not answer.is_error, text(answer)
    assert lines.levels() == expected
    assert all(logger == "aigw.chat" and line.startswith("answered by free-small") for _, logger, line in lines.lines)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_stdio_sends_log_messages_in_both_eras(tmp_path: Path, mode: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"providers": {}, "models": []}))  # the built-in demo model
    params = stdio_params(config, tmp_path / "data", tmp_path)
    lines = LogLines()

    async def scenario() -> Any:
        async with Client(params, mode=mode, logging_callback=lines, log_level="debug") as client:
            if mode == "legacy":
                await set_log_level(client, "debug")
            return await client.call_tool("chat", {"prompt": "hello"})

    answer = run(scenario)
    assert not answer.is_error, text(answer)
    ((level, logger, line),) = lines.lines
    assert (level, logger) == ("info", "aigw.chat") and line.startswith("answered by demo")
