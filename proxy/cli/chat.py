"""`aigw chat`: an interactive chat in the terminal, or `aigw chat "question"` answered once.

Interactive: answers stream in as rendered Markdown; slash commands change the
model or tier, show the session's cost, start over, or leave; Ctrl-C stops the
answer being written and returns to the prompt. Without a question and with
stdin not a terminal (`echo "..." | aigw chat`), stdin is the question.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .assist import Answer, ask_streaming, request_body
from .client import ApiError, CliError, GatewayClient
from .code import read_source
from .common import add_client_options, make_client, run
from .context import WorkContext, gather
from .output import Output
from .render import answer_once, stream_answer

TIERS = ("L0", "L1", "L2", "L3")
HELP = """commands:
  /model [NAME]   show or set the model (a model id, auto, a task, or a tier)
  /tier [L0-L3]   ask for a tier (same as /model L1); /tier auto lets the gateway choose
  /cost           tokens and cost of this session
  /clear          forget the conversation and start a new one
  /exit           leave (Ctrl-D works too)
Ctrl-C stops an answer while it is being written."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("chat", help="chat with the gateway (interactive, or one question)")
    parser.add_argument("message", nargs="*", help="a question to answer once; none starts an interactive chat")
    parser.add_argument("--model", help="model, tier (L0-L3) or task to ask (default: the gateway's choice for chat)")
    parser.add_argument("-f", "--file", action="append", default=[], help="send this file as context (repeatable)")
    add_client_options(parser)
    parser.set_defaults(run=run(chat))


def chat(args: argparse.Namespace, output: Output) -> int:
    message = " ".join(args.message).strip()
    interactive = not message and sys.stdin.isatty()
    if not message and not interactive:
        message = sys.stdin.read().strip()
        if not message:
            raise CliError("nothing to ask: give a question or pipe one on stdin", exit_code=2)
    if interactive and output.json_mode:
        raise CliError('--json needs a question: aigw chat --json "..."', exit_code=2)
    files = [read_source(name) for name in args.file]
    with make_client(args, output, stdin_busy=interactive) as client:
        context = gather(Path.cwd(), files, client.settings.context_bytes)
        if interactive:
            return ChatSession(client, output, context, model=args.model).loop()
        return answer_once(client, output, request_body("chat", message, context, model=args.model), busy="thinking")


@dataclass
class Totals:
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0

    def add(self, answer: Answer) -> None:
        self.turns += 1
        self.input_tokens += answer.tokens["input"]
        self.output_tokens += answer.tokens["output"]
        if answer.cost is None:
            self.unpriced += 1
        else:
            self.cost += answer.cost


@dataclass
class ChatSession:
    """One interactive conversation; the gateway keeps its history under `conversation_id`."""

    client: GatewayClient
    output: Output
    context: WorkContext
    model: str | None = None
    conversation_id: str = ""
    turns_stored: int = 0
    totals: Totals = field(default_factory=Totals)
    prices: dict[str, tuple[float, float]] | None = None

    def __post_init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """A new conversation id: the gateway starts from nothing, the context goes along again."""
        self.conversation_id = "cli-" + uuid.uuid4().hex[:16]
        self.turns_stored = 0

    def loop(self) -> int:
        _enable_line_editing()
        self.output.info(
            f"aigw chat with {self.client.url} (model {self.model or 'chosen by the gateway'}); "
            "/help for commands, /exit to leave"
        )
        while True:
            try:
                line = input("you> ").strip()
            except EOFError:
                self.output.stderr.write("\n")
                return 0
            except KeyboardInterrupt:
                self.output.stderr.write("\n")
                self.output.info("(Ctrl-C at the prompt does nothing; /exit or Ctrl-D to leave)")
                continue
            if not line:
                continue
            if line.startswith("/"):
                if self.command(line) == "exit":
                    return 0
                continue
            self.turn(line)

    def turn(self, text: str) -> None:
        # The working context goes with the first turn only; the gateway remembers it after that.
        context = self.context if self.turns_stored == 0 else None
        body = request_body("chat", text, context, model=self.model, conversation_id=self.conversation_id)
        try:
            with ask_streaming(self.client, body) as stream:
                answer = stream_answer(self.output, stream)
        except KeyboardInterrupt:
            # Dropping the connection stops the upstream; the gateway keeps no half answer.
            self.output.warn("answer stopped")
            return
        except ApiError as error:
            self.output.error(error.message)
            return
        self.turns_stored += 1
        if answer.cost is None:
            answer.cost = self.price(answer)
        self.totals.add(answer)

    def price(self, answer: Answer) -> float | None:
        """Streams carry tokens, not cost: price them from the gateway's model list."""
        if self.prices is None:
            try:
                models = self.client.get("/v1/models").body.get("data") or []
            except CliError:
                return None
            self.prices = {
                str(m["id"]): (float(m["pricing"]["input_per_1m"]), float(m["pricing"]["output_per_1m"]))
                for m in models
                if isinstance(m.get("pricing"), dict)
            }
        found = self.prices.get(answer.model)
        if found is None:
            return None
        return (answer.tokens["input"] * found[0] + answer.tokens["output"] * found[1]) / 1_000_000

    def command(self, line: str) -> str | None:
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/exit", "/quit"):
            return "exit"
        if name == "/help":
            self.output.info(HELP)
        elif name == "/model":
            if rest:
                self.model = None if rest == "auto" else rest
            self.output.info(f"model: {self.model or 'auto'}")
        elif name == "/tier":
            if rest.upper() in TIERS:
                self.model = rest.upper()
            elif rest == "auto":
                self.model = None
            elif rest:
                self.output.error(f"unknown tier {rest!r}: use L0, L1, L2, L3 or auto")
                return None
            self.output.info(f"model: {self.model or 'auto'}")
        elif name == "/cost":
            totals = self.totals
            cost = f"${totals.cost:.6f}" + (f" (+{totals.unpriced} unpriced turns)" if totals.unpriced else "")
            self.output.info(
                f"{totals.turns} turns, {totals.input_tokens} input + {totals.output_tokens} output tokens, {cost}"
            )
        elif name == "/clear":
            self.clear()
            self.output.info(f"conversation cleared (new conversation {self.conversation_id})")
        else:
            self.output.error(f"unknown command {name}; /help lists them")
        return None


def _enable_line_editing() -> None:
    try:
        import readline  # noqa: F401  (arrow keys and history for input())
    except ImportError:  # pragma: no cover - not on every platform
        pass
