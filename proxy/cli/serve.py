"""`aigw serve`: run the gateway under uvicorn."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from ..config import ConfigError, load_config


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="run the gateway HTTP server")
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1, or server.host)")
    parser.add_argument("--port", type=int, help="port (default 3000, API_PORT, or server.port)")
    parser.add_argument("--config", help="config file (default ./config.yaml, then the packaged example)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..app import create_app

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"aigw: {error}", file=sys.stderr)
        return 2
    overrides = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    if overrides:
        config = config.model_copy(update={"server": config.server.model_copy(update=overrides)})
    logging.basicConfig(
        level=config.server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise
    # uvicorn re-raises the signal that stopped it once shutdown is done; a
    # no-op handler turns that into a clean exit 0 after a graceful stop.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    uvicorn.run(
        create_app(config),
        host=config.server.host,
        port=config.server.port,
        log_level=config.server.log_level,
        access_log=False,
        loop="auto",
        http="auto",
    )
    return 0
