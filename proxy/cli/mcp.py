"""`aigw mcp`: the gateway's tools as an MCP server on stdin/stdout.

For `claude_desktop_config.json`, VS Code's `mcp.json` and any client that
starts its servers as processes. stdout carries only MCP messages; logs go to
stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..config import Config, ConfigError, load_config


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("mcp", help="serve the gateway's tools over MCP on stdio")
    parser.add_argument("--config", help="config file (default ./config.yaml, then the packaged example)")
    parser.add_argument(
        "--root", action="append", default=[], help="workspace root when the client sends none (repeatable)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"aigw: {error}", file=sys.stderr)
        return 2
    if args.root:
        config = config.model_copy(update={"mcp": config.mcp.model_copy(update={"roots": tuple(args.root)})})
    return serve_stdio(config)


def serve_stdio(config: Config) -> int:
    import anyio
    import duckdb

    logging.basicConfig(
        stream=sys.stderr,
        level=config.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        anyio.run(_serve, config)
    except duckdb.IOException as error:
        print(
            f"aigw mcp: cannot open the usage log in {config.server.data_dir} ({error}); "
            "is `aigw serve` running on the same DATA_DIR? Give this process its own DATA_DIR, "
            "or connect the client to that gateway's /mcp instead.",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0


async def _serve(config: Config) -> None:
    from ..mcp.server import build_server
    from ..mcp.toolbox import Toolbox
    from ..runtime import Gateway

    gateway = await Gateway.start(config)
    toolbox = Toolbox.build(gateway, trust_client_roots=True)
    try:
        await build_server(toolbox).run_stdio_async()
    finally:
        await toolbox.close()
        await gateway.close()
