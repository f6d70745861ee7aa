"""/mcp behind gateway tokens: the admin token or a valid gateway token, never open.

A gateway token's project is what the tools charge; a session opened with one
credential does not answer to another.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import base_config
from tests.fakes import FakeUpstream
from tests.mcp_support import http_client, run, text

ADMIN = "aigw-admin-test-token"


def test_gateway_tokens_open_mcp_and_charge_their_project(
    start_gateway: Any, upstream: FakeUpstream, tmp_path: Path
) -> None:
    raw = base_config(upstream.url, None, tmp_path / "data", server={"admin_token": ADMIN})
    url = str(start_gateway(raw).url)
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10) as admin:
        created = admin.post("/admin/tokens", json={"project": "team-mcp"})
        assert created.status_code == 201, created.text
        token = created.json()
        revoked = admin.post("/admin/tokens", json={"project": "gone"}).json()
        assert admin.delete(f"/admin/tokens/{revoked['id']}").status_code == 200

    async def scenario() -> Any:
        async with http_client(url, token["secret"], "2026-07-28") as client:
            return await client.call_tool("chat", {"prompt": "hello"})

    result = run(scenario)
    assert not result.is_error, text(result)
    assert TOKEN_NOT_UPSTREAM(upstream, token["secret"])

    deadline = time.time() + 15
    while True:

        async def usage() -> Any:
            async with http_client(url, ADMIN) as client:
                return await client.call_tool("usage_sql", {"sql": "SELECT project, token_id FROM usage"})

        rows = run(usage).structured_content["rows"]
        if rows or time.time() > deadline:
            break
        time.sleep(0.1)
    assert rows == [["team-mcp", token["id"]]]

    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28"}
    for secret in (revoked["secret"], "aigw-not-a-real-token", None):
        sent = {**headers, **({"authorization": f"Bearer {secret}"} if secret else {})}
        response = httpx.post(url + "/mcp", json=body, headers=sent)
        assert response.status_code == 401, (secret, response.text)


def TOKEN_NOT_UPSTREAM(upstream: FakeUpstream, secret: str) -> bool:  # noqa: N802
    return all(secret not in str(request["headers"]) for request in upstream.requests) and bool(upstream.requests)
