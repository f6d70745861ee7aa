"""run_vitest and run_playwright: the workspace's own test runners, summarised.

The runner is the project's own `node_modules/.bin/<runner>` started from an
argument list (never a shell), with a timeout that kills its process group, a
small environment (the gateway's provider keys are not passed on), and its
machine-readable report written to a temporary directory outside the workspace.
Where the client opted in to MCP log messages, the start of a run and its
outcome are logged to it as they happen.
"""

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Resolve
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from ..clientlog import ClientLog, client_log
from ..safety import Refused, Workspace, plain_argument
from ..toolbox import CommandResult, Toolbox, run_command, tail

RUNS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "CHROMIUM_PATH", "NODE_OPTIONS")


class Failure(BaseModel):
    name: str
    file: str | None = None
    message: str


class TestSummary(BaseModel):
    runner: Literal["vitest", "playwright"]
    success: bool
    passed: int
    failed: int
    skipped: int
    total: int
    failures: list[Failure]
    exit_code: int | None
    timed_out: bool
    output_tail: str = Field(description="The last part of the runner's console output.")


TestPathArg = Annotated[
    str | None, Field(description="Run only this test file or directory (relative to the project); omit for all.")
]
ProjectArg = Annotated[
    str, Field(description="Directory of the JS project (with package.json), relative to the workspace.")
]


def register(server: MCPServer, toolbox: Toolbox) -> None:
    WorkspaceArg = Annotated[Workspace, Resolve(toolbox.workspace)]

    def locate(ws: Workspace, project: str, runner: str, test_path: str | None) -> tuple[Path, Path, list[str]]:
        root, project_dir = ws.resolve(project)
        if not (project_dir / "package.json").is_file():
            raise Refused(f"{project!r} has no package.json")
        if shutil.which("node") is None:
            raise Refused("Node.js is not installed on the gateway's machine (node is not on PATH)")
        binary = project_dir / "node_modules" / ".bin" / runner
        if not binary.exists():
            raise Refused(f"{runner} is not installed in {project!r} (run npm install there first)")
        selection: list[str] = []
        if test_path:
            plain_argument("testPath", test_path.strip())
            _, target = ws.resolve(str(Path(project) / test_path))
            if not target.exists():
                raise Refused(f"testPath {test_path!r} does not exist in {project!r}")
            if not target.is_relative_to(project_dir):
                raise Refused(f"testPath {test_path!r} is outside the project")
            selection = [target.relative_to(project_dir).as_posix()]
        return project_dir, binary, selection

    def environment(extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
        return {**env, "CI": "1", "NO_COLOR": "1", "FORCE_COLOR": "0", **extra}

    def summary(
        runner: Literal["vitest", "playwright"], counts: tuple[int, int, int], failures: list[Failure], result: Any
    ) -> TestSummary:
        passed, failed, skipped = counts
        output = _ANSI.sub("", result.stdout + ("\n" + result.stderr if result.stderr.strip() else ""))
        return TestSummary(
            runner=runner,
            success=result.returncode == 0 and failed == 0 and not result.timed_out,
            passed=passed,
            failed=failed,
            skipped=skipped,
            total=passed + failed + skipped,
            failures=failures[:50],
            exit_code=result.returncode,
            timed_out=result.timed_out,
            output_tail=tail(output, toolbox.settings.max_output_bytes // 4),
        )

    async def run_logged(
        log: ClientLog, runner: str, project: str, selection: list[str], argv: list[str], cwd: Path, env: dict[str, str]
    ) -> CommandResult:
        timeout = toolbox.settings.test_timeout_seconds
        await log.info(
            f"running {runner} in {project!r} on {', '.join(selection) or 'all tests'} (timeout {timeout:g} s)"
        )
        await log.debug("command: " + " ".join(argv))
        started = time.monotonic()
        result = await run_command(argv, cwd=cwd, timeout=timeout, env=env)
        await log.debug(f"{runner} exited with {result.returncode} after {time.monotonic() - started:.1f} s")
        return result

    @server.tool(annotations=RUNS)
    async def run_vitest(
        ws: WorkspaceArg, ctx: Context, testPath: TestPathArg = None, project: ProjectArg = "."
    ) -> TestSummary:  # noqa: N803
        """Run the project's vitest suite (or one test file) and return passed/failed counts, failures with messages and the output tail."""
        project_dir, binary, selection = locate(ws, project, "vitest", testPath)
        log = client_log(ctx, "run_vitest")
        with tempfile.TemporaryDirectory(prefix="aigw-vitest-") as scratch:
            report = Path(scratch) / "report.json"
            argv = [
                str(binary),
                "run",
                "--reporter=default",
                "--reporter=json",
                f"--outputFile.json={report}",
                *selection,
            ]
            result = await run_logged(log, "vitest", project, selection, argv, project_dir, environment({}))
            data = _load(report)
        failures = [
            Failure(
                name=test.get("fullName") or test.get("title", "?"),
                file=_rel(suite.get("name"), project_dir),
                message=_ANSI.sub("", "\n".join(test.get("failureMessages") or []))[:2000],
            )
            for suite in data.get("testResults", [])
            for test in suite.get("assertionResults", [])
            if test.get("status") == "failed"
        ]
        for suite in data.get("testResults", []):
            if suite.get("status") == "failed" and not suite.get("assertionResults") and suite.get("message"):
                failures.append(
                    Failure(
                        name="(suite failed to load)",
                        file=_rel(suite.get("name"), project_dir),
                        message=_ANSI.sub("", suite["message"])[:2000],
                    )
                )
        counts = (
            int(data.get("numPassedTests", 0)),
            int(data.get("numFailedTests", 0)) or len(failures),
            int(data.get("numPendingTests", 0)) + int(data.get("numTodoTests", 0)),
        )
        return await reported(log, summary("vitest", counts, failures, result))

    @server.tool(annotations=RUNS)
    async def run_playwright(
        ws: WorkspaceArg, ctx: Context, testPath: TestPathArg = None, project: ProjectArg = "."
    ) -> TestSummary:  # noqa: N803
        """Run the project's Playwright tests (or one spec file) and return passed/failed counts, failures with messages and the output tail."""
        project_dir, binary, selection = locate(ws, project, "playwright", testPath)
        log = client_log(ctx, "run_playwright")
        with tempfile.TemporaryDirectory(prefix="aigw-playwright-") as scratch:
            report = Path(scratch) / "report.json"
            argv = [str(binary), "test", "--reporter=json,line", f"--output={Path(scratch) / 'results'}", *selection]
            env = environment({"PLAYWRIGHT_JSON_OUTPUT_NAME": str(report), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
            result = await run_logged(log, "playwright", project, selection, argv, project_dir, env)
            data = _load(report)
        failures: list[Failure] = []
        for spec, file in _specs(data.get("suites", [])):
            for test in spec.get("tests", []):
                results = test.get("results") or [{}]
                last = results[-1]
                if test.get("status") == "unexpected" or last.get("status") in ("failed", "timedOut"):
                    message = (last.get("error") or {}).get("message", "") or last.get("status", "failed")
                    failures.append(
                        Failure(name=spec.get("title", "?"), file=file, message=_ANSI.sub("", message)[:2000])
                    )
        for error in data.get("errors", []):
            failures.append(Failure(name="(run error)", message=_ANSI.sub("", error.get("message", ""))[:2000]))
        stats = data.get("stats", {})
        counts = (
            int(stats.get("expected", 0)) + int(stats.get("flaky", 0)),
            int(stats.get("unexpected", 0)),
            int(stats.get("skipped", 0)),
        )
        return await reported(log, summary("playwright", counts, failures, result))


async def reported(log: ClientLog, summary: TestSummary) -> TestSummary:
    """Log the outcome (a warning when tests failed or the run timed out), then hand the summary on."""
    counts = f"{summary.passed} passed, {summary.failed} failed, {summary.skipped} skipped"
    if summary.timed_out:
        await log.warning(f"{summary.runner} was stopped at its timeout ({counts} reported before)")
    elif not summary.success:
        await log.warning(
            f"{summary.runner}: {counts}" + (f"; first failure: {summary.failures[0].name}" if summary.failures else "")
        )
    else:
        await log.info(f"{summary.runner}: {counts}")
    return summary


def _load(report: Path) -> dict[str, Any]:
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _rel(name: str | None, project_dir: Path) -> str | None:
    if not name:
        return None
    path = Path(name)
    return path.relative_to(project_dir).as_posix() if path.is_absolute() and path.is_relative_to(project_dir) else name


def _specs(suites: list[dict[str, Any]], file: str | None = None) -> list[tuple[dict[str, Any], str | None]]:
    found: list[tuple[dict[str, Any], str | None]] = []
    for suite in suites:
        here = suite.get("file") or file
        found.extend((spec, spec.get("file") or here) for spec in suite.get("specs", []))
        found.extend(_specs(suite.get("suites", []), here))
    return found
