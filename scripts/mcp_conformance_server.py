"""The gateway for the MCP conformance suite: /mcp with the admin token filled in.

The conformance runner cannot send an Authorization header, so this wraps the
real app (`create_app`) in a tiny ASGI layer that adds the gateway's admin
token to every request. Everything else is the gateway as shipped: the SDK's
Streamable HTTP handling, both protocol eras and the Host/Origin checks. The
token check itself is covered by tests/test_mcp_transports.py.

    python scripts/mcp_conformance_server.py PORT DATA_DIR WORKSPACE
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

from proxy import config_from_dict, create_app

TOKEN = "aigw-conformance-token"


def main() -> None:
    port, data_dir, workspace = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    config = config_from_dict(
        {"server": {"data_dir": data_dir, "admin_token": TOKEN, "port": port}, "mcp": {"roots": [workspace]}},
        env={},
        source="<conformance>",
    )
    app = create_app(config)

    async def with_token(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
            scope = {**scope, "headers": [*headers, (b"authorization", f"Bearer {TOKEN}".encode())]}
        await app(scope, receive, send)

    uvicorn.run(with_token, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
