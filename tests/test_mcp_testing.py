"""run_vitest / run_playwright against a real JS project (tests/fixtures/jsproj).

The project's dependencies are installed once per package-lock into a cache
directory outside the repository (`npm ci`); Playwright drives the system
Chromium (`apt-get install chromium`), never a downloaded browser.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import base_config
from tests.fakes import FakeUpstream
from tests.mcp_support import LogLines, http_client, run, set_log_level, text

TOKEN = "aigw-admin-test-token"
FIXTURE = Path(__file__).parent / "fixtures" / "jsproj"

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="Node.js and npm are not installed"
)


@pytest.fixture(scope="session")
def jsproj() -> Path:
    """The fixture project with node_modules, installed once per lock file in ~/.cache."""
    lock = (FIXTURE / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock + (FIXTURE / "package.json").read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aigw-tests"
    target = cache / f"jsproj-{digest}"
    if not (target / "node_modules" / ".bin" / "vitest").exists():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="jsproj-", dir=cache))
        shutil.copytree(FIXTURE, staging, dirs_exist_ok=True)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=staging,
            check=True,
            timeout=600,
            env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
        )
        try:
            staging.rename(target)
        except OSError:  # another run installed it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return target


def gateway_for(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path, root: Path, **mcp: Any) -> str:
    raw = base_config(
        upstream.url, None, tmp_path / "data", mcp={"roots": [str(root)], **mcp}, server={"admin_token": TOKEN}
    )
    return str(start_gateway(raw).url)


async def call_all(url: str, calls: list[tuple[str, dict[str, Any]]], mode: str = "legacy") -> list[Any]:
    async with http_client(url, TOKEN, mode) as client:
        return [await client.call_tool(name, args) for name, args in calls]


@needs_node
def test_run_vitest_summarises_passes_and_failures(
    start_gateway: Any, upstream: FakeUpstream, tmp_path: Path, jsproj: Path
) -> None:
    url = gateway_for(start_gateway, upstream, tmp_path, jsproj)
    calls: list[tuple[str, dict[str, Any]]] = [
        ("run_vitest", {}),
        ("run_vitest", {"testPath": "tests/sum.test.js"}),
        ("run_vitest", {"testPath": "--reporter=verbose"}),
        ("run_vitest", {"testPath": "../../etc"}),
        ("run_vitest", {"project": "src"}),
    ]
    everything, one_file, option, traversal, no_package = run(lambda: call_all(url, calls, "2026-07-28"))
    summary = everything.structured_content
    assert (summary["passed"], summary["failed"], summary["total"], summary["success"]) == (2, 1, 3, False)
    (failure,) = summary["failures"]
    assert failure["name"] == "is deliberately wrong" and failure["file"] == "tests/broken.test.js"
    assert "expected 4 to be 5" in failure["message"]
    assert "Tests  1 failed | 2 passed" in summary["output_tail"]
    assert one_file.structured_content["success"] is True and one_file.structured_content["passed"] == 2
    assert option.is_error and "must not be empty or start with '-'" in text(option)
    assert traversal.is_error and "'..'" in text(traversal)
    assert no_package.is_error and "no package.json" in text(no_package)


@needs_node
def test_run_vitest_logs_its_progress_to_the_client(
    start_gateway: Any, upstream: FakeUpstream, tmp_path: Path, jsproj: Path
) -> None:
    url = gateway_for(start_gateway, upstream, tmp_path, jsproj)
    lines = LogLines()

    async def scenario() -> list[Any]:
        async with http_client(url, TOKEN, "legacy", logging_callback=lines) as client:
            await set_log_level(client, "info")
            return [await client.call_tool("run_vitest", args) for args in ({"testPath": "tests/sum.test.js"}, {})]

    passing, failing = run(scenario)
    assert passing.structured_content["success"] and not failing.structured_content["success"]
    assert {logger for _, logger, _ in lines.lines} == {"aigw.run_vitest"}
    assert [(level, line) for level, _, line in lines.lines] == [  # no debug lines at level info
        ("info", "running vitest in '.' on tests/sum.test.js (timeout 300 s)"),
        ("info", "vitest: 2 passed, 0 failed, 0 skipped"),
        ("info", "running vitest in '.' on all tests (timeout 300 s)"),
        ("warning", "vitest: 2 passed, 1 failed, 0 skipped; first failure: is deliberately wrong"),
    ]


@needs_node
def test_run_vitest_is_killed_at_its_timeout(
    start_gateway: Any, upstream: FakeUpstream, tmp_path: Path, jsproj: Path
) -> None:
    url = gateway_for(start_gateway, upstream, tmp_path, jsproj, test_timeout_seconds=0.2)
    (result,) = run(lambda: call_all(url, [("run_vitest", {})]))
    assert result.structured_content["timed_out"] is True
    assert result.structured_content["success"] is False and result.structured_content["exit_code"] is None


@needs_node
@pytest.mark.skipif(shutil.which("chromium") is None, reason="no system Chromium (apt-get install chromium)")
def test_run_playwright_against_system_chromium(
    start_gateway: Any, upstream: FakeUpstream, tmp_path: Path, jsproj: Path
) -> None:
    url = gateway_for(start_gateway, upstream, tmp_path, jsproj)
    calls: list[tuple[str, dict[str, Any]]] = [("run_playwright", {})]
    (result,) = run(lambda: call_all(url, calls))
    summary = result.structured_content
    assert not result.is_error, text(result)
    assert (summary["passed"], summary["failed"], summary["success"]) == (1, 1, False), summary
    (failure,) = summary["failures"]
    assert failure["name"] == "heading is wrong on purpose" and failure["file"] == "button.spec.js"
    assert 'Expected: "Goodbye"' in failure["message"] and 'Received: "Hello"' in failure["message"]
    assert not (jsproj / "test-results").exists()  # the runner's output went to a temporary directory
