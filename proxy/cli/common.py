"""What every client command shares: --url/--token/--json, the client, the escalation prompt, exit codes.

Exit codes: 0 done, 1 the gateway answered an error (or a patch does not apply),
2 bad usage (missing file, bad flag), 3 no gateway at the URL, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from ..config import ConfigError, cli_settings
from .client import ApiError, CliError, Escalation, GatewayClient
from .output import Output

Command = Callable[[argparse.Namespace, Output], int]


def add_client_options(parser: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    group = parser.add_argument_group("gateway")
    group.add_argument("--url", help="gateway URL (default AIGW_URL, MCP_ENDPOINT, or http://localhost:3000)")
    group.add_argument("--token", help="gateway token (default AIGW_TOKEN)")
    group.add_argument(
        "--approve-escalation",
        choices=("ask", "yes", "no"),
        default="ask",
        help="when the gateway wants a paid tier: ask (default), approve, or refuse without asking",
    )
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")


def make_client(args: argparse.Namespace, output: Output, *, stdin_busy: bool = False) -> GatewayClient:
    try:
        settings = cli_settings()
    except ConfigError as error:
        raise CliError(str(error), exit_code=2) from None
    updates: dict[str, object] = {}
    if getattr(args, "url", None):
        updates["url"] = args.url.rstrip("/")
    if getattr(args, "token", None):
        updates["token"] = args.token
    settings = settings.model_copy(update=updates)
    policy = getattr(args, "approve_escalation", "ask")

    def approve(escalation: Escalation) -> bool:
        output.warn(
            f"the gateway wants to escalate to {escalation.tier}: {escalation.reason} "
            f"(estimated cost ${escalation.estimated_cost})"
        )
        if policy != "ask":
            output.info(f"--approve-escalation {policy}: {'approved' if policy == 'yes' else 'refused'}")
            return policy == "yes"
        return confirm("Approve this escalation? [y/N] ", output, stdin_busy=stdin_busy)

    return GatewayClient(settings, approve=approve)


def confirm(question: str, output: Output, *, stdin_busy: bool = False) -> bool:
    """Ask yes/no on the terminal; stdin when it is free, else /dev/tty; no terminal means no."""
    answer = ask(question, output, stdin_busy=stdin_busy)
    return answer.strip().lower() in ("y", "yes")


def ask(question: str, output: Output, *, stdin_busy: bool = False, default: str = "") -> str:
    source: TextIO | None = None
    opened = False
    if not stdin_busy:
        source = sys.stdin
    else:
        try:
            source = open("/dev/tty", encoding="utf-8")  # noqa: SIM115 - closed below
            opened = True
        except OSError:
            output.warn("no terminal to ask on; pass --approve-escalation yes to approve")
            return default
    try:
        output.stderr.write(question)
        output.stderr.flush()
        line = source.readline()
    finally:
        if opened:
            source.close()
    if not line:
        output.stderr.write("\n")
        return default
    return line.rstrip("\n") or default


def run(command: Command) -> Callable[[argparse.Namespace], int]:
    """Wrap a command: CliError -> message on stderr + its exit code; Ctrl-C -> 130."""

    def runner(args: argparse.Namespace) -> int:
        output = Output(json_mode=bool(getattr(args, "json", False)))
        try:
            return command(args, output)
        except CliError as error:
            if output.json_mode:
                detail = error.error if isinstance(error, ApiError) else {"message": error.message, "code": None}
                output.json({"error": detail})
            output.error(error.message)
            return error.exit_code
        except KeyboardInterrupt:
            output.error("interrupted")
            return 130

    return runner
