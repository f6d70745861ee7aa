"""git_status and git_diff: read-only git over the workspace.

git runs from an argument list with a fixed set of options: refs and paths may
not start with '-', paths go after '--', no output-file option exists, and
repository config that could run programs (external diff, textconv, fsmonitor,
pager) is switched off on the command line.
"""

import os
import re
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resolve import Resolve
from pydantic import BaseModel, Field

from ..safety import Refused, Workspace, plain_argument
from ..toolbox import Toolbox, run_command
from .fs import READ_ONLY

_REF = re.compile(r"^[A-Za-z0-9_./~^@{}:+-]{1,200}$")
_SAFE_CONFIG = [
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.pager=cat",
    "-c",
    "diff.external=",
    "-c",
    "core.untrackedCache=false",
    "-c",
    "color.ui=false",
]


class GitStatus(BaseModel):
    branch: str | None = Field(description="Current branch line from git (e.g. 'main...origin/main [ahead 1]').")
    changes: list[str] = Field(description="Porcelain v1 lines: two status letters, then the path.")
    clean: bool


class GitDiff(BaseModel):
    diff: str = Field(description="Unified diff (cut at mcp.max_output_bytes).")
    files_changed: list[str]
    truncated: bool


def register(server: MCPServer, toolbox: Toolbox) -> None:
    WorkspaceArg = Annotated[Workspace, Resolve(toolbox.workspace)]

    async def git(ws: Workspace, path: str | None, args: list[str]) -> str:
        root, real = ws.resolve(path or ".")
        pathspec: list[str] = []
        if path:
            plain_argument("path", path.strip())
            pathspec = ["--", real.relative_to(root).as_posix()]
        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")},
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",
            "GIT_PAGER": "cat",
        }
        argv = ["git", "--no-pager", *_SAFE_CONFIG, "-C", str(root), *args, *pathspec]
        timeout = toolbox.settings.git_timeout_seconds
        result = await run_command(argv, cwd=root, timeout=timeout, env=env)
        if result.timed_out:
            raise Refused(f"git did not finish within {timeout:g}s")
        if result.returncode != 0:
            message = result.stderr.strip().splitlines()
            raise Refused("git failed: " + (message[0] if message else f"exit status {result.returncode}"))
        return result.stdout

    @server.tool(annotations=READ_ONLY)
    async def git_status(
        ws: WorkspaceArg,
        path: Annotated[str | None, Field(description="Limit to this path (relative to the workspace root).")] = None,
    ) -> GitStatus:
        """Show the working tree status of the workspace's git repository: branch and changed files."""
        out = await git(ws, path, ["status", "--porcelain=v1", "--branch", "--untracked-files=normal"])
        lines = [line for line in out.splitlines() if line]
        branch = lines[0][3:] if lines and lines[0].startswith("## ") else None
        changes = [line for line in lines if not line.startswith("## ")]
        return GitStatus(branch=branch, changes=changes, clean=not changes)

    @server.tool(annotations=READ_ONLY)
    async def git_diff(
        ws: WorkspaceArg,
        staged: Annotated[bool, Field(description="Show staged changes (the index) instead of unstaged ones.")] = False,
        path: Annotated[
            str | None, Field(description="Limit the diff to this path (relative to the workspace root).")
        ] = None,
        ref: Annotated[
            str | None, Field(description="Compare against this commit, branch or tag instead of the index.")
        ] = None,
    ) -> GitDiff:
        """Show the workspace's uncommitted changes as a unified diff (optionally staged only, one path, or against a ref)."""
        args = ["diff", "--no-ext-diff", "--no-textconv", "--no-color"]
        if staged:
            args.append("--cached")
        if ref is not None:
            plain_argument("ref", ref)
            if not _REF.match(ref):
                raise Refused(f"ref {ref!r} is not a valid commit, branch or tag name")
            args.append(ref)
        out = await git(ws, path, args)
        names = re.findall(r"^diff --git a/(.+?) b/", out, flags=re.MULTILINE)
        data = out.encode()
        limit = toolbox.settings.max_output_bytes
        cut = len(data) > limit
        text = data[:limit].decode("utf-8", "ignore") + "\n...[truncated]" if cut else out
        return GitDiff(diff=text, files_changed=names, truncated=cut)
