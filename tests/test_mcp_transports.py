"""The MCP server over both transports and both protocol eras, driven by the SDK's client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mcp import Client

from tests.conftest import base_config
from tests.fakes import FakeUpstream, ServerThread
from tests.mcp_support import ERAS, http_client, run, stdio_params, text

TOOLS = {"fs_read", "fs_write", "fs_list", "git_status", "git_diff"}
TOKEN = "aigw-admin-test-token"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "hello.txt").write_text("hello from the workspace\n")
    return root


@pytest.fixture
def mcp_gateway(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path, workspace: Path) -> ServerThread:
    raw = base_config(
        upstream.url, None, tmp_path / "data", mcp={"roots": [str(workspace)]}, server={"admin_token": TOKEN}
    )
    return start_gateway(raw)  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ERAS)
def test_http_lists_tools_and_reads_a_file(mcp_gateway: ServerThread, mode: str) -> None:
    async def scenario() -> tuple[str, set[str], Any, Any]:
        async with http_client(mcp_gateway.url, TOKEN, mode) as client:
            tools = await client.list_tools()
            result = await client.call_tool("fs_read", {"path": "src/hello.txt"})
            return client.protocol_version, {t.name for t in tools.tools}, tools, result

    version, names, tools, result = run(scenario)
    assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert TOOLS <= names
    by_name = {t.name: t for t in tools.tools}
    assert by_name["fs_read"].annotations.read_only_hint is True
    assert by_name["fs_write"].annotations.destructive_hint is True
    assert by_name["fs_read"].output_schema["properties"]["content"]["type"] == "string"
    assert not result.is_error, text(result)
    assert result.structured_content["content"] == "hello from the workspace\n"


@pytest.mark.parametrize("mode", ERAS)
def test_stdio_lists_tools_and_refuses_traversal(tmp_path: Path, workspace: Path, mode: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"providers": {}, "models": []}))
    params = stdio_params(config, tmp_path / "data", workspace)

    async def scenario() -> tuple[str, set[str], Any, Any]:
        async with Client(params, mode=mode) as client:
            tools = await client.list_tools()
            ok = await client.call_tool("fs_list", {"path": "src"})
            refused = await client.call_tool("fs_read", {"path": "../../etc/passwd"})
            return client.protocol_version, {t.name for t in tools.tools}, ok, refused

    version, names, ok, refused = run(scenario)
    assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
    assert TOOLS <= names
    assert [e["path"] for e in ok.structured_content["entries"]] == ["src/hello.txt"]
    assert refused.is_error and "'..'" in text(refused)


def test_http_needs_the_gateway_token(mcp_gateway: ServerThread) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28"}
    missing = httpx.post(mcp_gateway.url + "/mcp", json=body, headers=headers)
    wrong = httpx.post(mcp_gateway.url + "/mcp", json=body, headers={**headers, "authorization": "Bearer nope"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "gateway_token_required"

    async def scenario() -> None:
        async with http_client(mcp_gateway.url, "wrong-token") as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 401 as its own error type
        run(scenario)


def test_http_checks_host_and_origin(mcp_gateway: ServerThread) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {TOKEN}"}
    url = mcp_gateway.url + "/mcp"
    ok = httpx.post(url, json=init, headers=headers)
    assert ok.status_code == 200
    rebinding = httpx.post(url, json=init, headers={**headers, "host": "evil.example:80"})
    assert rebinding.status_code == 421
    foreign = httpx.post(url, json=init, headers={**headers, "origin": "https://evil.example"})
    assert foreign.status_code == 403
    local_origin = httpx.post(url, json=init, headers={**headers, "origin": f"http://localhost:{mcp_gateway.port}"})
    assert local_origin.status_code == 200


def test_http_disabled_answers_404(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path) -> None:
    raw = base_config(upstream.url, None, tmp_path, mcp={"http_enabled": False}, server={"admin_token": TOKEN})
    gateway = start_gateway(raw)
    response = httpx.post(gateway.url + "/mcp", json={}, headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("MCP over HTTP is disabled")


@pytest.mark.parametrize("mode", ERAS)
def test_stateless_http_serves_both_eras(
    start_gateway: Any, upstream: FakeUpstream, tmp_path: Path, workspace: Path, mode: str
) -> None:
    raw = base_config(
        upstream.url,
        None,
        tmp_path / "data",
        mcp={"roots": [str(workspace)], "stateless_http": True},
        server={"admin_token": TOKEN},
    )
    gateway = start_gateway(raw)

    async def scenario() -> Any:
        async with http_client(gateway.url, TOKEN, mode) as client:
            await client.list_tools()
            return await client.call_tool("fs_read", {"path": "src/hello.txt"})

    result = run(scenario)
    assert result.structured_content["content"] == "hello from the workspace\n"


def test_mode_mcp_makes_serve_speak_stdio(tmp_path: Path, workspace: Path) -> None:
    from mcp import StdioServerParameters

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"providers": {}, "models": [], "mcp": {"roots": [str(workspace)]}}))
    base = stdio_params(config, tmp_path / "data")
    params = StdioServerParameters(
        command=base.command,
        args=["-m", "proxy", "serve", "--config", str(config)],
        cwd=base.cwd,
        env={**(base.env or {}), "MODE": "mcp"},
    )

    async def scenario() -> Any:
        async with Client(params, mode="legacy") as client:
            return await client.call_tool("fs_read", {"path": "src/hello.txt"})

    assert run(scenario).structured_content["content"] == "hello from the workspace\n"
