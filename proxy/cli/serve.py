"""`aigw serve`: run the gateway under uvicorn, with one or several workers."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from starlette.applications import Starlette

from ..config import ConfigError, find_config_path, load_config
from ..logsetup import configure_logging


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="run the gateway HTTP server")
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1, AIGW_HOST, or server.host)")
    parser.add_argument("--port", type=int, help="port (default 3000, API_PORT, or server.port)")
    parser.add_argument("--config", help="config file (default ./config.yaml, then the packaged example)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (more than 1 needs REDIS_URL)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..app import create_app

    if args.workers < 1:
        print("aigw: --workers must be at least 1", file=sys.stderr)
        return 2
    # Workers are separate processes that load the config themselves; the
    # command line reaches them through the documented environment variables.
    if args.host:
        os.environ["AIGW_HOST"] = args.host
    if args.port:
        os.environ["API_PORT"] = str(args.port)
    os.environ["AIGW_CONFIG"] = str(find_config_path(args.config).resolve())
    try:
        config = load_config()
    except ConfigError as error:
        print(f"aigw: {error}", file=sys.stderr)
        return 2
    if args.workers > 1 and not config.redis_url:
        print(
            f"aigw: --workers {args.workers} needs REDIS_URL (or redis_url in the config). The cache, budgets, "
            "rate limits, tokens and usage ingest are shared through Redis; without it each worker would keep "
            "its own copy and enforce limits wrongly. Start Redis and set REDIS_URL, or use one worker.",
            file=sys.stderr,
        )
        return 2
    if config.mode == "mcp":
        from .mcp import serve_stdio

        return serve_stdio(config)
    configure_logging(config)
    # uvicorn re-raises the signal that stopped it once shutdown is done; a
    # no-op handler turns that into a clean exit 0 after a graceful stop.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    # Several workers need an import string so each process builds its own app.
    app: str | Starlette = "proxy.app:app_from_env" if args.workers > 1 else create_app(config)
    uvicorn.run(
        app,
        factory=args.workers > 1,
        workers=args.workers if args.workers > 1 else None,
        host=config.server.host,
        port=config.server.port,
        log_level=config.server.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    return 0
