"""Terminal output that fits pipes: colour, Markdown and spinners only on a terminal.

Answers go to stdout (plain text when piped, rendered Markdown on a terminal);
errors, warnings, progress and spinners go to stderr, so `aigw diff ... | git apply`
and `aigw chat --json ... | jq` only ever see the answer.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import orjson
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.syntax import Syntax


class Output:
    def __init__(self, *, json_mode: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.tty = self.stdout.isatty()
        # rich decides on colour itself (and honours NO_COLOR); on a pipe it writes plain text.
        self.out = Console(file=self.stdout, highlight=False, soft_wrap=not self.tty)
        self.err = Console(file=self.stderr, highlight=False, soft_wrap=True)

    def json(self, value: Any) -> None:
        self.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
        self.stdout.flush()

    def text(self, text: str) -> None:
        """Raw text, exactly as given (a patch, a piped answer)."""
        self.stdout.write(text if text.endswith("\n") else text + "\n")
        self.stdout.flush()

    def markdown(self, text: str) -> None:
        if self.tty:
            self.out.print(Markdown(text, code_theme="monokai"))
        else:
            self.text(text)

    def diff(self, patch: str) -> None:
        if self.tty:
            self.out.print(Syntax(patch, "diff", theme="monokai", background_color="default"))
        else:
            self.text(patch)

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]aigw: error:[/] {message}", markup=True, highlight=False)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]aigw:[/] {message}", markup=True, highlight=False)

    def info(self, message: str) -> None:
        """Progress and figures for the user: stderr, dim on a terminal."""
        self.err.print(f"[dim]{message}[/]", markup=True, highlight=False)

    @contextmanager
    def spinner(self, message: str) -> Iterator[None]:
        if self.err.is_terminal:
            with self.err.status(message, spinner="dots"):
                yield
        else:
            yield

    @contextmanager
    def live_markdown(self) -> Iterator[StreamView]:
        """Show an answer as it streams: re-rendered Markdown on a terminal, raw deltas on a pipe."""
        view = StreamView(self)
        if not self.tty:
            yield view
            self.stdout.write("\n" if view.text and not view.text.endswith("\n") else "")
            self.stdout.flush()
            return
        with Live(console=self.out, auto_refresh=False, vertical_overflow="visible", transient=False) as live:
            view.live = live
            yield view
            view.refresh(force=True)


class StreamView:
    """Receives deltas; on a terminal re-renders at most ~12 times a second."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.text = ""
        self.live: Live | None = None
        self._last = 0.0

    def add(self, delta: str) -> None:
        self.text += delta
        if self.live is None:
            self.output.stdout.write(delta)
            self.output.stdout.flush()
        else:
            self.refresh()

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.live is not None and (force or now - self._last > 0.08):
            self._last = now
            self.live.update(Markdown(self.text or " ", code_theme="monokai"), refresh=True)
