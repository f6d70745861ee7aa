"""LiteLLM and Portkey, installed outside the repository and pointed at the same nginx."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .targets import Target
from .upstream import Nginx


def start(name: str, nginx: Nginx, cpu: int | None, root: Path, say: Callable[[str], None]) -> Target:
    raise SystemExit(f"peer {name!r} is not supported yet")
