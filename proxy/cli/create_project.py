"""`aigw create-project "description"`: scaffold a project through the gateway's code agent, within a budget.

One conversation with the code agent (`POST /v1/code-agent`): first a plan (its
TODO list names the files), then one call per file. Before each call the CLI
compares what is spent plus the dearest call so far with the budget and stops
cleanly, with the files written so far, when the next one could exceed it.
Every call carries `x-gateway-max-tier: <max layer>`, so the gateway itself
never routes, escalates or cross-checks above it; the CLI still checks the tier
of each answer as a second line of defence. An escalation the gateway proposes
is shown with its reason and estimated cost and asked about (or decided by
`--approve-escalation yes|no`); a declined one stops the run like the budget does.
Exit codes: 0 complete, 4 stopped at the budget, the max layer or a declined
escalation (others as every command).
"""

from __future__ import annotations

import argparse
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .client import JSON, ApiError, CliError, Escalation, EscalationRequired, GatewayClient
from .common import add_client_options, ask, make_client, run
from .output import Output
from .patch import fenced_blocks

TIERS = ("L0", "L1", "L2", "L3")
STOPPED_AT_LIMIT = 4
MAX_TIER_HEADER = "x-gateway-max-tier"
# Gateway answers that end the run cleanly instead of as an error.
_STOPPING_CODES = ("escalation_required", "tier_ceiling")
_PATH = re.compile(r"`?((?:[\w.-]+/)*[\w-]+(?:\.[\w-]+)+|(?:[\w.-]+/)*(?:Makefile|Dockerfile|LICENSE))`?")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("create-project", help="scaffold a new project with the code agent, within a budget")
    parser.add_argument("description", nargs="+", help='what to build, e.g. "Todo app with React"')
    parser.add_argument("--budget", type=float, help="most to spend, in USD (asked when not given)")
    parser.add_argument("--max-layer", choices=TIERS, help="highest tier to use (asked when not given)")
    parser.add_argument("--tests", action=argparse.BooleanOptionalAction, default=None, help="include tests")
    parser.add_argument(
        "--debug", action=argparse.BooleanOptionalAction, default=None, help="include debug logging and configuration"
    )
    parser.add_argument("--dir", help="where to write it (default: a new folder named after the description)")
    add_client_options(parser)
    parser.set_defaults(run=run(create_project))


@dataclass
class Options:
    description: str
    budget: float
    max_layer: str
    tests: bool
    debug: bool
    directory: Path


@dataclass
class Step:
    path: str
    cost: float
    model: str
    tier: str


@dataclass
class Progress:
    budget: float
    spent: float = 0.0
    dearest: float = 0.0
    steps: list[Step] = field(default_factory=list)

    def add(self, step: Step) -> None:
        self.steps.append(step)
        self.spent += step.cost
        self.dearest = max(self.dearest, step.cost)

    def next_fits(self) -> bool:
        """The next call is assumed to cost as much as the dearest one so far."""
        return self.spent + self.dearest <= self.budget


def slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())[:5]
    return "-".join(words) or "project"


def ask_options(args: argparse.Namespace, output: Output) -> Options:
    description = " ".join(args.description).strip()
    budget = args.budget
    if budget is None:
        raw = ask("Budget (USD) [0.50]: ", output, default="0.50")
        try:
            budget = float(raw)
        except ValueError:
            raise CliError(f"budget {raw!r} is not a number of dollars", exit_code=2) from None
    if budget <= 0:
        raise CliError("the budget must be more than $0", exit_code=2)
    max_layer = args.max_layer or ask("Max layer (L0-L3) [L1]: ", output, default="L1").upper()
    if max_layer not in TIERS:
        raise CliError(f"max layer {max_layer!r}: use L0, L1, L2 or L3", exit_code=2)
    tests = args.tests if args.tests is not None else _yes(ask("Enable tests? [Y/n]: ", output, default="y"))
    debug = args.debug if args.debug is not None else _yes(ask("Debug mode? [y/N]: ", output, default="n"))
    directory = Path(args.dir) if args.dir else Path.cwd() / slug(description)
    if directory.exists() and any(directory.iterdir()):
        raise CliError(f"{directory} exists and is not empty; choose another --dir", exit_code=2)
    return Options(description, budget, max_layer, tests, debug, directory)


def _yes(answer: str) -> bool:
    return answer.strip().lower() in ("y", "yes")


def requirements(options: Options) -> str:
    lines = [f"Project: {options.description}"]
    lines.append("Include unit tests and a way to run them." if options.tests else "Do not write tests.")
    if options.debug:
        lines.append("Include debug logging and a debug configuration.")
    return "\n".join(lines)


def plan_task(options: Options) -> str:
    return (
        f"{requirements(options)}\n\nPlan this new project. Do not write code yet: answer with the '## TODO' "
        "checklist only, one item per file to create, each item as `- [ ] path/to/file: what it holds`, "
        "paths relative to the project root, at most 12 files."
    )


def file_task(options: Options, path: str) -> str:
    return (
        f"{requirements(options)}\n\nWrite the file `{path}` of this project, following the plan. Answer with its "
        "complete content in one fenced code block, and mark its TODO item done."
    )


def planned_files(todos: list[JSON]) -> list[str]:
    """The file paths named by the plan's TODO items; nothing absolute, nothing outside the project."""
    found: list[str] = []
    for item in todos:
        match = _PATH.search(str(item.get("text") or ""))
        if not match:
            continue
        path = PurePosixPath(match.group(1))
        if path.is_absolute() or ".." in path.parts or str(path) in found:
            continue
        found.append(str(path))
    return found


def file_content(result: JSON) -> str:
    blocks = fenced_blocks(str(result.get("response") or ""))
    content = blocks[0][1] if blocks else str(result.get("code") or "")
    return content if content.endswith("\n") else content + "\n"


class Agent:
    """The code agent, one conversation for the whole project."""

    def __init__(self, client: GatewayClient, output: Output, max_layer: str) -> None:
        self.client = client
        self.output = output
        self.conversation_id = "project-" + uuid.uuid4().hex[:16]
        self.headers = {MAX_TIER_HEADER: max_layer}  # enforced by the gateway, on every call

    def run(self, task: str, files: list[JSON] | None = None) -> tuple[JSON, Step]:
        body: dict[str, Any] = {"conversationId": self.conversation_id, "task": task, "files": files or []}
        reply = self.client.post("/v1/code-agent", body, headers=self.headers)
        result: JSON = reply.body.get("result") or {}
        performance: JSON = reply.body.get("performance") or {}
        tier = str((reply.body.get("routing") or {}).get("tier") or reply.headers.get("x-gateway-tier") or "?")
        return result, Step("", float(performance.get("cost") or 0.0), str(result.get("model") or "?"), tier)


def create_project(args: argparse.Namespace, output: Output) -> int:
    options = ask_options(args, output)
    progress = Progress(options.budget)
    files: list[str] = []
    written: list[str] = []
    stopped: str | None = None
    with make_client(args, output) as client:
        approve = client.approve

        def within_limits(escalation: Escalation) -> bool:
            """Escalations above the max layer or beyond the budget are refused without asking."""
            if escalation.tier in TIERS and TIERS.index(escalation.tier) > TIERS.index(options.max_layer):
                output.warn(f"the gateway wants {escalation.tier}, above max layer {options.max_layer}: refused")
                return False
            try:
                estimate = float(escalation.estimated_cost)
            except ValueError:
                estimate = 0.0
            if progress.spent + estimate > options.budget:
                output.warn(f"escalating would cost about ${estimate:.4f}, past the budget: refused")
                return False
            return approve is not None and approve(escalation)

        client.approve = within_limits
        agent = Agent(client, output, options.max_layer)
        try:
            with output.spinner("planning the project"):
                plan, step = agent.run(plan_task(options))
        except ApiError as error:
            if error.code not in _STOPPING_CODES:
                raise
            stopped = f"stopped before the plan: {_why(error)}"
        else:
            step.path = "(plan)"
            progress.add(step)
            files = planned_files(list(plan.get("todos") or []))
            if not files:
                raise CliError("the code agent's plan names no files to create; try a more specific description")
            output.info(
                f"plan: {len(files)} files · {step.model} ({step.tier}) · "
                f"${progress.spent:.4f} of ${options.budget:.2f}"
            )
            if _check_tier(step, options, output):
                stopped = _write_files(agent, options, progress, files, written, output)
            else:
                stopped = f"stopped after the plan: the gateway answered from {step.tier}, above max layer {options.max_layer}"
    if output.json_mode:
        output.json(
            {
                "directory": str(options.directory),
                "planned": files,
                "written": written,
                "steps": [vars(s) for s in progress.steps],
                "cost": round(progress.spent, 8),
                "budget": options.budget,
                "maxLayer": options.max_layer,
                "complete": stopped is None,
                "stopped": stopped,
            }
        )
    if stopped:
        output.warn(stopped)
        output.warn(f"{len(written)} of {len(files)} files written to {options.directory}")
        return STOPPED_AT_LIMIT
    output.info(f"done: {len(written)} files in {options.directory} for ${progress.spent:.4f}")
    return 0


def _write_files(
    agent: Agent, options: Options, progress: Progress, files: list[str], written: list[str], output: Output
) -> str | None:
    """One code-agent call per planned file; why it stopped early, or None when every file is written."""
    for index, path in enumerate(files, 1):
        if not progress.next_fits():
            return (
                f"stopped before {path}: ${progress.spent:.4f} spent, the next file may cost about "
                f"${progress.dearest:.4f} and the budget is ${options.budget:.2f}"
            )
        try:
            with output.spinner(f"writing {path}"):
                result, step = agent.run(file_task(options, path))
        except ApiError as error:
            if error.code not in _STOPPING_CODES:
                raise
            return f"stopped before {path}: {_why(error)}"
        step.path = path
        progress.add(step)
        target = options.directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file_content(result), encoding="utf-8")
        written.append(path)
        output.info(
            f"[{index}/{len(files)}] {path} · {step.model} ({step.tier}) · "
            f"${progress.spent:.4f} of ${options.budget:.2f}"
        )
        if not _check_tier(step, options, output):
            return f"stopped after {path}: the gateway answered from {step.tier}, above max layer {options.max_layer}"
    return None


def _why(error: ApiError) -> str:
    if isinstance(error, EscalationRequired):
        found = error.escalation
        return f"the escalation to {found.tier} ({found.reason}, about ${found.estimated_cost}) was not approved"
    return f"nothing at or below the max layer could answer ({error.message})"


def _check_tier(step: Step, options: Options, output: Output) -> bool:
    if step.tier in TIERS and TIERS.index(step.tier) > TIERS.index(options.max_layer):
        output.warn(f"{step.path} was answered by {step.tier}, above max layer {options.max_layer}")
        return False
    return True
