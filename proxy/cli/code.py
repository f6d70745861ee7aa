"""`aigw code FILE "instruction"` (review, suggestions) and `aigw diff FILE "instruction"` (a patch).

`aigw code - "..."` reads the code from stdin. `aigw diff` prints only a patch
that `git apply --check` accepted on a temporary copy of the file, so
`aigw diff app.py "fix the leak" | git apply` either applies or prints nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .assist import DIFF_RULES, Answer, ask, request_body
from .client import CliError
from .common import add_client_options, make_client, run
from .context import gather, git_root
from .output import Output
from .patch import check, extract_new_file, extract_patch, make_diff, repair
from .render import answer_once, show_answer


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    code = subparsers.add_parser("code", help="review a file (or - for stdin) and suggest improvements")
    code.add_argument("file", help="the file to review, or - to read it from stdin")
    code.add_argument("instruction", nargs="+", help='what to look at, e.g. "review for bugs"')
    code.add_argument("--model", help="model, tier or task to ask (default: the gateway's choice for reviews)")
    add_client_options(code)
    code.set_defaults(run=run(review))

    diff = subparsers.add_parser("diff", help="ask for a change to FILE and print it as a patch for `git apply`")
    diff.add_argument("file", help="the file to change")
    diff.add_argument("instruction", nargs="+", help='the change, e.g. "add error handling"')
    diff.add_argument("--model", help="model, tier or task to ask (default: the gateway's choice for code)")
    add_client_options(diff)
    diff.set_defaults(run=run(make_patch))


def read_source(name: str) -> tuple[str, str]:
    """(path to show, text); exit code 2 when it cannot be read."""
    if name == "-":
        return "stdin", sys.stdin.read()
    path = Path(name)
    try:
        return name, path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"{name}: no such file", exit_code=2) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"{name}: cannot read it as text ({error})", exit_code=2) from None


def review(args: argparse.Namespace, output: Output) -> int:
    shown, text = read_source(args.file)
    instruction = " ".join(args.instruction)
    cwd = Path.cwd()
    with make_client(args, output, stdin_busy=args.file == "-") as client:
        context = gather(cwd, [(shown, text)], client.settings.context_bytes)
        return answer_once(
            client, output, request_body("code", instruction, context, model=args.model), busy="reviewing"
        )


def repo_path(file: Path, cwd: Path) -> str:
    """The path `git apply` expects: from the repository root, else from the working directory."""
    root = git_root(cwd) or cwd
    absolute = file.resolve()
    try:
        return absolute.relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(os.path.relpath(absolute, cwd)).as_posix()


def patch_from(answer: Answer, path: str, original: str) -> tuple[str | None, str | None]:
    """(patch, why it does not apply): the repaired diff, or one made from a whole new file."""
    found = answer.patch or extract_patch(answer.message)
    candidates: list[str] = []
    if found:
        candidates = [repair(found, path), repair(found, path, trim=True)]
    else:
        new_file = extract_new_file(answer.message)
        if new_file is not None and new_file != original:
            candidates = [make_diff(path, original, new_file)]
    if not candidates:
        return None, "the answer contains no diff"
    problem: str | None = None
    for candidate in candidates:
        problem = check(candidate, path, original)
        if problem is None:
            return candidate, None
    return candidates[0], problem


def make_patch(args: argparse.Namespace, output: Output) -> int:
    if args.file == "-":
        raise CliError("aigw diff needs a file path (a patch must name the file it changes)", exit_code=2)
    shown, original = read_source(args.file)
    cwd = Path.cwd()
    path = repo_path(Path(args.file), cwd)
    instruction = " ".join(args.instruction)
    with make_client(args, output) as client:
        context = gather(cwd, [(path, original)], client.settings.context_bytes)
        body = request_body("diff", f"{instruction}\n\n{DIFF_RULES.format(path=path)}", context, model=args.model)
        with output.spinner("writing the patch"):
            answer = ask(client, body)
    patch, problem = patch_from(answer, path, original)
    answer.patch = patch
    if output.json_mode:
        output.json({**answer.to_json(), "path": path, "applies": problem is None, "problem": problem})
        if problem:
            output.error(f"the patch does not apply to {shown}: {problem}")
        return 1 if problem else 0
    if problem or patch is None:
        output.error(f"the patch does not apply to {shown}: {problem}")
        output.err.print(answer.message, markup=False, highlight=False)
        return 1
    output.diff(patch)
    show_answer(output, answer, body=False)
    return 0
