"""What the CLI tells the model about where the user is: cwd, `git status`, the named files.

The total is kept under `context_bytes` (AIGW_CONTEXT_BYTES): git status is cut
first to a few kilobytes, then each file is cut with a visible marker, so a
large file never silently crowds the question out.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GIT_STATUS_SHARE = 4_000


@dataclass(frozen=True)
class FileContext:
    path: str
    content: str
    truncated_bytes: int = 0


@dataclass
class WorkContext:
    cwd: str
    git_status: str | None
    files: list[FileContext] = field(default_factory=list)

    def seed_json(self) -> dict[str, Any]:
        """The seed's `/v1/mcp-cli` `context`; files as `{path, content}` so a remote gateway sees them."""
        files = [
            {
                "path": f.path,
                "content": f.content
                + (f"\n[... {f.truncated_bytes} more bytes of {f.path} not shown]" if f.truncated_bytes else ""),
            }
            for f in self.files
        ]
        return {"cwd": self.cwd, "files": files, "gitStatus": self.git_status or ""}


def git_status(cwd: Path) -> str | None:
    """`git status --short --branch`, or None outside a repository (or without git)."""
    try:
        done = subprocess.run(
            ["git", "status", "--short", "--branch"], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_root(cwd: Path) -> Path | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def _cut(text: str, limit: int) -> tuple[str, int]:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, 0
    return data[:limit].decode("utf-8", "ignore"), len(data) - limit


def gather(cwd: Path, files: list[tuple[str, str]], limit: int) -> WorkContext:
    """Build the context for named files (path as the user wrote it, text) within `limit` bytes."""
    status = git_status(cwd)
    if status is not None:
        status, cut = _cut(status, min(GIT_STATUS_SHARE, limit // 4))
        if cut:
            status += f"\n[... {cut} more bytes of git status]"
    budget = max(0, limit - len((status or "").encode()))
    contexts: list[FileContext] = []
    for index, (path, text) in enumerate(files):
        share = budget // (len(files) - index)  # what is left, spread over the files still to come
        shown, cut = _cut(text, share)
        budget -= len(shown.encode())
        contexts.append(FileContext(path, shown, cut))
    return WorkContext(str(cwd), status, contexts)
