"""Where the MCP tools may act: workspace roots, path checks and size limits.

A tool names files relative to the workspace. Everything that could leave it is
refused with a `ToolError` (the message reaches the model, the server goes on):
absolute paths, `..` components, NUL bytes, and symlinks whose target lies
outside the root they were reached through. With several roots, a path may start
with a root's directory name to pick it; otherwise the first root is meant.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from mcp.server.mcpserver.exceptions import ToolError

_DRIVE = re.compile(r"^[A-Za-z]:")


class Refused(ToolError):
    """A request the tools will not carry out; the message says why."""


@dataclass(frozen=True)
class Workspace:
    roots: tuple[Path, ...]

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> Workspace:
        roots = tuple(dict.fromkeys(Path(p).expanduser().resolve() for p in paths))
        if not roots:
            raise Refused("no workspace root is configured (mcp.roots) and the client sent none")
        return cls(roots)

    def describe(self) -> str:
        return ", ".join(str(root) for root in self.roots)

    def resolve(self, path: str) -> tuple[Path, Path]:
        """(root, absolute path) for a workspace-relative `path`, or `Refused`."""
        parts = _relative_parts(path)
        root = self.roots[0]
        if len(self.roots) > 1 and parts:
            for candidate in self.roots:
                if parts[0] == candidate.name:
                    root, parts = candidate, parts[1:]
                    break
        target = root.joinpath(*parts) if parts else root
        # resolve() follows every symlink on the way, so a link anywhere in the
        # path (not only the last part) that points outside is caught here.
        try:
            real = target.resolve()
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
            raise Refused(f"{path!r} cannot be resolved (a symlink loop?); refused") from None
        if real != root and not real.is_relative_to(root):
            raise Refused(f"{path!r} leads outside the workspace (through a symlink); refused")
        return root, real

    def relative(self, root: Path, real: Path) -> str:
        rel = real.relative_to(root).as_posix()
        prefix = f"{root.name}/" if len(self.roots) > 1 and root != self.roots[0] else ""
        return prefix + rel if rel != "." else (prefix.rstrip("/") or ".")


def _relative_parts(path: str) -> list[str]:
    if not isinstance(path, str):
        raise Refused("path must be a string")
    if "\x00" in path:
        raise Refused("path contains a NUL byte; refused")
    cleaned = path.strip()
    if cleaned.startswith(("/", "\\", "~")) or _DRIVE.match(cleaned) or os.path.isabs(cleaned):
        raise Refused(f"{path!r} is an absolute path; give a path relative to the workspace root")
    parts = [part for part in re.split(r"[\\/]+", cleaned) if part not in ("", ".")]
    if ".." in parts:
        raise Refused(f"{path!r} contains '..'; paths must stay inside the workspace")
    return parts


def roots_from_uris(uris: Sequence[str]) -> list[Path]:
    """The local directories of the client's `file://` roots (others are ignored)."""
    paths = []
    for uri in uris:
        parsed = urlparse(uri)
        if parsed.scheme == "file" and parsed.path:
            paths.append(Path(unquote(parsed.path)))
    return paths


def confine(client_roots: Sequence[Path], allowed: Sequence[Path]) -> list[Path]:
    """Client roots that lie inside one of `allowed` (used where the client is not local)."""
    kept = []
    for root in client_roots:
        real = root.resolve()
        if any(real == base or real.is_relative_to(base) for base in (a.resolve() for a in allowed)):
            kept.append(real)
    return kept


def check_size(what: str, size: int, limit: int) -> None:
    if size > limit:
        raise Refused(f"{what} is {size} bytes; the limit is {limit} (mcp.max_write_bytes)")


def plain_argument(name: str, value: str) -> str:
    """A value that goes on a command line: never one that could be read as an option."""
    if not value or value.startswith("-"):
        raise Refused(f"{name} {value!r} must not be empty or start with '-'")
    if "\x00" in value or "\n" in value:
        raise Refused(f"{name} contains control characters; refused")
    return value


@contextmanager
def os_refusals(path: str) -> Iterator[None]:
    """A file-system error (permission, vanished file, full disk) as a tool error, not a crash."""
    try:
        yield
    except OSError as error:
        raise Refused(f"{path!r}: {error.strerror or error}") from None
