"""fs_* and git_* tools: what they do, and every way out of the workspace refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.conftest import base_config
from tests.fakes import FakeUpstream, ServerThread
from tests.mcp_support import http_client, run, text

TOKEN = "aigw-admin-test-token"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("TOP SECRET\n")
    return secret


@pytest.fixture
def workspace(tmp_path: Path, outside: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.js").write_text("export const x = 1;\n")
    (root / "big.txt").write_text("x" * 5000)
    (root / "blob.bin").write_bytes(b"\x00\x01\x02")
    os.symlink(outside / "secret.txt", root / "leak.txt")
    os.symlink(outside, root / "leakdir")
    os.symlink(root / "src" / "app.js", root / "inside-link.js")
    os.symlink(root / "loop-b", root / "loop-a")
    os.symlink(root / "loop-a", root / "loop-b")
    return root


@pytest.fixture
def gateway_url(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path, workspace: Path) -> str:
    raw = base_config(
        upstream.url,
        None,
        tmp_path / "data",
        mcp={"roots": [str(workspace)], "max_read_bytes": 1000, "max_write_bytes": 2000},
        server={"admin_token": TOKEN},
    )
    server: ServerThread = start_gateway(raw)
    return server.url


async def call_all(
    url: str, calls: list[tuple[str, dict[str, Any]]], mode: str = "legacy", **options: Any
) -> list[Any]:
    async with http_client(url, TOKEN, mode, **options) as client:
        return [await client.call_tool(name, args) for name, args in calls]


ESCAPES: list[tuple[str, dict[str, Any], str]] = [
    ("fs_read", {"path": "../outside/secret.txt"}, "'..'"),
    ("fs_read", {"path": "src/../../outside/secret.txt"}, "'..'"),
    ("fs_read", {"path": "..\\outside\\secret.txt"}, "'..'"),
    ("fs_read", {"path": "/etc/passwd"}, "absolute path"),
    ("fs_read", {"path": "~/.ssh/id_rsa"}, "absolute path"),
    ("fs_read", {"path": "C:/Windows/win.ini"}, "absolute path"),
    ("fs_read", {"path": "leak.txt"}, "outside the workspace"),
    ("fs_read", {"path": "leakdir/secret.txt"}, "outside the workspace"),
    ("fs_read", {"path": "src/app.js\x00.png"}, "NUL byte"),
    ("fs_read", {"path": "loop-a"}, "symlink loop"),
    ("fs_write", {"path": "../outside/new.txt", "content": "x"}, "'..'"),
    ("fs_write", {"path": "/tmp/aigw-escape.txt", "content": "x"}, "absolute path"),
    ("fs_write", {"path": "leak.txt", "content": "overwritten"}, "outside the workspace"),
    ("fs_write", {"path": "leakdir/planted.txt", "content": "x"}, "outside the workspace"),
    ("fs_list", {"path": "leakdir"}, "outside the workspace"),
    ("fs_list", {"path": ".."}, "'..'"),
    ("git_status", {"path": "../outside"}, "'..'"),
    ("git_diff", {"path": "/etc"}, "absolute path"),
    ("git_diff", {"ref": "--output=/tmp/aigw-pwned"}, "must not be empty or start with '-'"),
    ("git_diff", {"ref": "-p"}, "must not be empty or start with '-'"),
    ("git_diff", {"path": "-rf"}, "must not be empty or start with '-'"),
    ("git_diff", {"ref": "HEAD;rm -rf /"}, "not a valid commit"),
]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_every_escape_is_refused(gateway_url: str, outside: Path, mode: str) -> None:
    results = run(lambda: call_all(gateway_url, [(name, args) for name, args, _ in ESCAPES], mode))
    for (name, args, expected), result in zip(ESCAPES, results, strict=True):
        assert result.is_error, (name, args, result)
        assert expected in text(result), (name, args, text(result))
        assert "TOP SECRET" not in text(result)
    assert (outside / "secret.txt").read_text() == "TOP SECRET\n"
    assert not (outside / "planted.txt").exists() and not (outside / "new.txt").exists()
    assert not Path("/tmp/aigw-escape.txt").exists() and not Path("/tmp/aigw-pwned").exists()


def test_read_write_list_inside_the_workspace(gateway_url: str, workspace: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("fs_write", {"path": "src/new/file.ts", "content": "let y = 2;\n"}),
        ("fs_write", {"path": "src/new/file.ts", "content": "let y = 2;\n", "create_dirs": True}),
        ("fs_read", {"path": "src/new/file.ts"}),
        ("fs_read", {"path": "big.txt"}),
        ("fs_read", {"path": "blob.bin"}),
        ("fs_read", {"path": "inside-link.js"}),
        ("fs_write", {"path": "huge.txt", "content": "y" * 2001}),
        ("fs_write", {"path": "src", "content": "x"}),
        ("fs_list", {}),
        ("fs_list", {"path": "src", "recursive": True}),
    ]
    (no_dir, wrote, read, big, blob, link, huge, onto_dir, top, deep) = run(lambda: call_all(gateway_url, calls))
    assert no_dir.is_error and "create_dirs" in text(no_dir)
    assert wrote.structured_content == {"path": "src/new/file.ts", "bytes_written": 11, "created": True}
    assert (workspace / "src" / "new" / "file.ts").read_text() == "let y = 2;\n"
    assert read.structured_content["content"] == "let y = 2;\n"
    assert big.structured_content["truncated"] is True and len(big.structured_content["content"]) == 1000
    assert big.structured_content["size"] == 5000
    assert blob.is_error and "binary" in text(blob)
    assert link.structured_content["content"] == "export const x = 1;\n"
    assert huge.is_error and "limit is 2000" in text(huge) and not (workspace / "huge.txt").exists()
    assert onto_dir.is_error and "directory" in text(onto_dir)
    kinds = {e["path"]: e["type"] for e in top.structured_content["entries"]}
    assert kinds["src"] == "dir" and kinds["leak.txt"] == "symlink" and kinds["big.txt"] == "file"
    assert kinds["loop-a"] == "symlink"
    assert {e["path"] for e in deep.structured_content["entries"]} == {"src/app.js", "src/new", "src/new/file.ts"}


def test_client_roots_narrow_but_never_widen_over_http(gateway_url: str, workspace: Path, outside: Path) -> None:
    from mcp_types import ListRootsResult, Root

    def roots_for(*paths: Path) -> Any:
        async def list_roots(context: Any) -> ListRootsResult:
            return ListRootsResult(roots=[Root(uri=p.as_uri()) for p in paths])  # type: ignore[arg-type]

        return list_roots

    narrowed = run(lambda: call_all(gateway_url, [("fs_list", {})], list_roots_callback=roots_for(workspace / "src")))
    assert [e["path"] for e in narrowed[0].structured_content["entries"]] == ["app.js"]
    widened = run(
        lambda: call_all(gateway_url, [("fs_read", {"path": "secret.txt"})], list_roots_callback=roots_for(outside))
    )
    assert widened[0].is_error and "configured mcp.roots" in text(widened[0])
    modern = run(
        lambda: call_all(gateway_url, [("fs_list", {})], "2026-07-28", list_roots_callback=roots_for(workspace / "src"))
    )
    assert [e["path"] for e in modern[0].structured_content["entries"]] == ["app.js"]


def test_git_status_and_diff(gateway_url: str, workspace: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(workspace), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "add", "src/app.js")
    git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "first")
    (workspace / "src" / "app.js").write_text("export const x = 2;\n")
    (workspace / "notes.md").write_text("new\n")
    git("add", "notes.md")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("git_status", {}),
        ("git_diff", {}),
        ("git_diff", {"staged": True}),
        ("git_diff", {"ref": "HEAD", "path": "src"}),
        ("git_diff", {"ref": "no-such-branch"}),
    ]
    status, unstaged, staged, against_head, bad_ref = run(lambda: call_all(gateway_url, calls))
    assert status.structured_content["branch"].startswith("main")
    assert " M src/app.js" in status.structured_content["changes"]
    assert "A  notes.md" in status.structured_content["changes"]
    assert status.structured_content["clean"] is False
    assert unstaged.structured_content["files_changed"] == ["src/app.js"]
    assert "+export const x = 2;" in unstaged.structured_content["diff"]
    assert staged.structured_content["files_changed"] == ["notes.md"]
    assert against_head.structured_content["files_changed"] == ["src/app.js"]
    assert bad_ref.is_error and "git failed" in text(bad_ref)


def test_git_outside_a_repository_is_a_tool_error(gateway_url: str) -> None:
    (result,) = run(lambda: call_all(gateway_url, [("git_status", {})]))
    assert result.is_error and "not a git repository" in text(result).lower()


def test_in_process_client_sees_the_same_tools(tmp_path: Path) -> None:
    """The builder needs no transport: the SDK's in-process client drives it too."""
    import anyio

    from proxy import config_from_dict
    from proxy.mcp.server import build_server
    from proxy.mcp.toolbox import Toolbox
    from proxy.runtime import Gateway

    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "a.txt").write_text("a")

    async def scenario() -> Any:
        config = config_from_dict(
            {"server": {"data_dir": str(tmp_path / "d")}, "mcp": {"roots": [str(tmp_path / "ws")]}}, env={}
        )
        gateway = await Gateway.start(config)
        toolbox = Toolbox.build(gateway, trust_client_roots=True)
        try:
            async with Client(build_server(toolbox)) as client:
                return await client.call_tool("fs_read", {"path": "a.txt"})
        finally:
            await toolbox.close()
            await gateway.close()

    result = anyio.run(scenario)
    assert result.structured_content["content"] == "a"
