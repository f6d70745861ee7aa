"""Where the gateway's log goes: stderr, one line per record, at the configured level.

Called by `aigw serve` in its own process and by each worker `--workers N`
starts (a worker is a fresh interpreter: without this its records would reach
only the dashboard's in-memory tail, never the operator's terminal or journal).
"""

from __future__ import annotations

import logging
import sys

from .config import Config

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(config: Config) -> None:
    logging.basicConfig(stream=sys.stderr, level=config.server.log_level.upper(), format=FORMAT)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream call is noise
