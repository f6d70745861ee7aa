"""fs_read, fs_write, fs_list: files inside the workspace roots, with size limits."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resolve import Resolve
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from ..safety import Refused, Workspace, check_size, os_refusals
from ..toolbox import Toolbox

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)

PathArg = Annotated[str, Field(description="Path relative to the workspace root, e.g. 'src/app.ts'.")]


class FileText(BaseModel):
    path: str
    content: str
    size: int = Field(description="Size of the whole file in bytes.")
    truncated: bool = Field(description="True when only the first mcp.max_read_bytes were returned.")


class Written(BaseModel):
    path: str
    bytes_written: int
    created: bool


class Entry(BaseModel):
    path: str
    type: Literal["file", "dir", "symlink", "other"]
    size: int | None = None


class Listing(BaseModel):
    root: str
    entries: list[Entry]
    truncated: bool


def register(server: MCPServer, toolbox: Toolbox) -> None:
    WorkspaceArg = Annotated[Workspace, Resolve(toolbox.workspace)]

    @server.tool(annotations=READ_ONLY)
    def fs_read(path: PathArg, ws: WorkspaceArg) -> FileText:
        """Read a UTF-8 text file from the workspace. Large files are cut at the configured limit (see `truncated`)."""
        with os_refusals(path):
            root, real = ws.resolve(path)
            if not real.is_file():
                raise Refused(f"{path!r} is not a file in the workspace")
            size = real.stat().st_size
            with real.open("rb") as handle:
                data = handle.read(toolbox.settings.max_read_bytes)
            if b"\x00" in data:
                raise Refused(f"{path!r} looks like a binary file; only text files can be read")
            return FileText(
                path=ws.relative(root, real),
                content=data.decode("utf-8", "replace"),
                size=size,
                truncated=size > len(data),
            )

    @server.tool(annotations=WRITES)
    def fs_write(
        path: PathArg,
        content: Annotated[str, Field(description="The whole new content of the file (UTF-8 text).")],
        ws: WorkspaceArg,
        create_dirs: Annotated[bool, Field(description="Create missing parent directories.")] = False,
    ) -> Written:
        """Create or overwrite a text file in the workspace with the given content."""
        with os_refusals(path):
            data = content.encode("utf-8")
            check_size("content", len(data), toolbox.settings.max_write_bytes)
            root, real = ws.resolve(path)
            if real == root or real.is_dir():
                raise Refused(f"{path!r} is a directory; give a file path")
            if not real.parent.is_dir():
                if not create_dirs:
                    raise Refused(f"the directory of {path!r} does not exist (pass create_dirs=true to create it)")
                real.parent.mkdir(parents=True, exist_ok=True)
            created = not real.exists()
            # O_NOFOLLOW: a symlink swapped in after the check is not written through.
            fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return Written(path=ws.relative(root, real), bytes_written=len(data), created=created)

    @server.tool(annotations=READ_ONLY)
    def fs_list(
        ws: WorkspaceArg,
        path: Annotated[str, Field(description="Directory relative to the workspace root.")] = ".",
        recursive: Annotated[
            bool,
            Field(
                description="List subdirectories too (symlinked directories are not followed; .git and node_modules are skipped)."
            ),
        ] = False,
    ) -> Listing:
        """List a directory of the workspace: names, types and sizes."""
        with os_refusals(path):
            root, real = ws.resolve(path)
            if not real.is_dir():
                raise Refused(f"{path!r} is not a directory in the workspace")
            entries: list[Entry] = []
            truncated = False
            limit = toolbox.settings.max_list_entries
            for item in _walk(real, recursive):
                if len(entries) >= limit:
                    truncated = True
                    break
                entries.append(_entry(ws, root, item))
            return Listing(root=ws.relative(root, real), entries=entries, truncated=truncated)


_SKIP = {".git", "node_modules", "__pycache__", ".venv"}


def _walk(directory: Path, recursive: bool) -> Iterator[Path]:
    for item in sorted(directory.iterdir(), key=lambda p: p.name):
        yield item
        if recursive and item.is_dir() and not item.is_symlink() and item.name not in _SKIP:
            yield from _walk(item, recursive)


def _entry(ws: Workspace, root: Path, item: Path) -> Entry:
    rel = item.relative_to(root).as_posix()
    if len(ws.roots) > 1 and root != ws.roots[0]:
        rel = f"{root.name}/{rel}"
    if item.is_symlink():
        return Entry(path=rel, type="symlink")
    if item.is_dir():
        return Entry(path=rel, type="dir")
    if item.is_file():
        return Entry(path=rel, type="file", size=item.stat().st_size)
    return Entry(path=rel, type="other")
