"""Turn a model's answer into a unified diff that `git apply` accepts, and prove it does.

Models get the mechanics of diffs wrong in predictable ways: hunk line counts
that do not add up, paths relative to somewhere else, a blank line where a
context line was a lone space, or a whole new file instead of a diff. Each is
repaired here; what still does not apply is reported, never printed as if good.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import tempfile
from pathlib import Path

_FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")
_NO_NEWLINE = "\\ No newline at end of file"


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each ``` block, in order."""
    return [(match.group(1).lower(), match.group(2)) for match in _FENCE.finditer(text)]


def extract_patch(answer: str) -> str | None:
    """The diff in an answer: a ```diff block, else bare `---`/`+++`/`@@` lines."""
    for language, body in fenced_blocks(answer):
        if language in ("diff", "patch", "udiff") or ("\n+++ " in body and "@@" in body):
            return body
    lines = answer.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith(("diff --git ", "--- ")) and any(later.startswith("@@") for later in lines[index:]):
            return "".join(lines[index:])
    return None


def extract_new_file(answer: str) -> str | None:
    """A single non-diff code block is taken to be the whole new file."""
    blocks = [body for language, body in fenced_blocks(answer) if language not in ("diff", "patch", "udiff")]
    return blocks[0] if len(blocks) == 1 else None


def make_diff(path: str, old: str, new: str) -> str:
    """A unified diff with `a/`, `b/` names and correct no-newline markers."""

    def lines(text: str) -> list[str]:
        items = text.splitlines(keepends=True)
        if items and not items[-1].endswith("\n"):
            items[-1] += "\n" + _NO_NEWLINE + "\n"
        return items

    return "".join(difflib.unified_diff(lines(old), lines(new), f"a/{path}", f"b/{path}", n=3))


def repair(patch: str, path: str, *, trim: bool = False) -> str:
    """Name the one file `a/PATH` `b/PATH` and recount every hunk header (models miscount them).

    An empty line inside a hunk is read as an empty context line whose space was
    stripped; at a hunk's end it may instead be spacing, which `trim` drops.
    """
    lines = patch.splitlines()
    out = [f"--- a/{path}\n", f"+++ b/{path}\n"]
    index = 0
    while index < len(lines) and not _HUNK.match(lines[index]):
        index += 1  # `diff --git`, `index`, `---`, `+++`: replaced by the two lines above
    while index < len(lines):
        match = _HUNK.match(lines[index])
        if match is None:
            break  # a second file or trailing prose: this command patches one file
        body: list[str] = []
        index += 1
        while index < len(lines) and not _HUNK.match(lines[index]) and not _next_file(lines, index):
            line = lines[index]
            if line and line[:1] not in (" ", "+", "-") and line != _NO_NEWLINE:
                break
            body.append(line)
            index += 1
        while trim and body and body[-1] == "":
            body.pop()
        body = [line or " " for line in body]
        old = sum(1 for line in body if line[:1] in (" ", "-"))
        new = sum(1 for line in body if line[:1] in (" ", "+"))
        out.append(f"@@ -{match.group(1)},{old} +{match.group(2)},{new} @@{match.group(3)}\n")
        out.extend(line + "\n" for line in body)
        if index < len(lines) and not _HUNK.match(lines[index]):
            break
    return "".join(out)


def _next_file(lines: list[str], index: int) -> bool:
    """`--- x` followed by `+++ y` starts another file; a lone `--- x` is a removed line `-- x`."""
    line = lines[index]
    if line.startswith("diff --git "):
        return True
    return line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ ")


def check(patch: str, path: str, original: str) -> str | None:
    """`git apply --check` against a temporary copy of the file; None when it applies, else why not."""
    with tempfile.TemporaryDirectory(prefix="aigw-diff-") as tmp:
        target = Path(tmp) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(original, encoding="utf-8")
        try:
            done = subprocess.run(
                ["git", "apply", "--check", "-"],
                cwd=tmp,
                input=patch,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError as error:
            return f"cannot run git to check the patch: {error}"
        if done.returncode == 0:
            return None
        return done.stderr.strip() or f"git apply --check exited with {done.returncode}"
