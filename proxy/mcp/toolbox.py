"""What the MCP tools act on, built once per server: the gateway, limits, roots.

Each `tools/` module registers its tools with closures over one `Toolbox`; no
state lives in module globals. Settings are read from the gateway's live
config on every call (never copied at start), so a config reload reaches the
tools of a running server, sessions already open included. The workspace a file tool sees is resolved per
call from the client's MCP roots (asked through the SDK's `ListRoots`
resolver, which works in both protocol eras) or else the configured roots.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import ListRoots, Resolve
from mcp_types import ListRootsResult
from mcp_types.version import is_version_at_least

from ..config import McpConfig
from ..runtime import Gateway
from ..types import Principal
from .db import WorkspaceDB
from .safety import Refused, Workspace, confine, roots_from_uris

# Where /mcp leaves the authenticated caller in the ASGI scope's state.
PRINCIPAL_KEY = "mcp_principal"


def principal_of(ctx: Context) -> Principal:
    """Who the gateway charges for this call: the HTTP caller's token, else the default project (stdio)."""
    request = ctx.request_context.request
    scope = getattr(request, "scope", None)
    found = scope.get("state", {}).get(PRINCIPAL_KEY) if isinstance(scope, dict) else None
    return found if isinstance(found, Principal) else Principal()


def client_roots(ctx: Context) -> ListRoots | None:
    """Ask for the client's roots when it declared it has some and can be asked."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.roots is None:
        return None
    version = ctx.protocol_version
    modern = version is not None and is_version_at_least(version, "2026-07-28")
    if not modern and not ctx.session.can_send_request:
        return None
    return ListRoots()


@dataclass
class Toolbox:
    gateway: Gateway
    # stdio: the client is the user's own desktop app, so its roots are the
    # workspace. HTTP: its roots only narrow the configured ones.
    trust_client_roots: bool
    db: WorkspaceDB
    # The workspace when mcp.roots is empty: the directory aigw started in.
    start_dir: Path

    @classmethod
    def build(cls, gateway: Gateway, *, trust_client_roots: bool) -> Toolbox:
        db = WorkspaceDB(Path(gateway.config.server.data_dir) / "workspace.duckdb", lambda: gateway.config.mcp)
        return cls(gateway, trust_client_roots, db, Path.cwd().resolve())

    @property
    def settings(self) -> McpConfig:
        """The live `mcp` settings: read on every call, so a config reload applies to the next one."""
        return self.gateway.config.mcp

    @property
    def default_roots(self) -> tuple[Path, ...]:
        return tuple(Path(p).expanduser().resolve() for p in self.settings.roots) or (self.start_dir,)

    async def close(self) -> None:
        await asyncio.to_thread(self.db.close)

    def workspace(self, listed: Annotated[Any, Resolve(client_roots)]) -> Workspace:
        """Resolver: the roots this call may touch."""
        uris = [str(root.uri) for root in listed.roots] if isinstance(listed, ListRootsResult) else []
        paths = roots_from_uris(uris)
        if paths and not self.trust_client_roots:
            paths = confine(paths, self.default_roots)
            if not paths:
                raise Refused("none of the client's roots lies inside the gateway's configured mcp.roots")
        return Workspace.from_paths(paths or self.default_roots)


@dataclass(frozen=True)
class CommandResult:
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool


async def run_command(
    argv: list[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None
) -> CommandResult:
    """Run an argument list (never a shell string); kill its whole process group on timeout."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise Refused(f"{argv[0]} is not installed or not on PATH") from None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
        timed_out = False
    except TimeoutError:
        _kill_group(process.pid)
        stdout, stderr = await process.communicate()
        timed_out = True
    except asyncio.CancelledError:
        _kill_group(process.pid)
        raise
    return CommandResult(
        None if timed_out else process.returncode,
        stdout.decode("utf-8", "replace"),
        stderr.decode("utf-8", "replace"),
        timed_out,
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def tail(text: str, limit: int) -> str:
    """The last `limit` bytes of `text` (what a failing run printed last matters most)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return "...[truncated]\n" + data[-limit:].decode("utf-8", "ignore")
