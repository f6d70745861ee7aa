"""Classify a chat request: task type and complexity, with reason codes.

Pure and in-process: no I/O and no model call, so it costs microseconds.
"""

from __future__ import annotations

import re
from typing import Any

from ..config import Complexity, Task
from ..types import Classification

_CODE_FENCE = re.compile(r"```")
_CODE_SYNTAX = re.compile(
    r"(\bdef \w+\(|\bfunction\s+\w+\s*\(|\bclass \w+[:({]|=>|#include\b|\bimport \w+|\bconst \w+ =|"
    r"\bSELECT\b.+\bFROM\b|\bpublic static\b|\bfn \w+\(|\bfunc \w+\(|;\s*$)",
    re.MULTILINE,
)
_PROJECT = re.compile(
    r"\b(scaffold|boilerplate|from scratch|new project|create (a|an|the) (new )?(project|app|application|service|repo)|"
    r"build (a|an|me a) (full|complete|whole|new)? ?(app|application|project|website|service|saas)|"
    r"multi-file|project structure|full[- ]stack app)\b",
    re.IGNORECASE,
)
_CODE_VERB = re.compile(
    r"\b(write|implement|code|refactor|fix|port|convert|generate|add|create)\b.{0,40}\b"
    r"(function|method|class|script|test|tests|regex|query|sql|endpoint|component|module|program|code|bug|api|cli)\b",
    re.IGNORECASE,
)
_ANALYZE = re.compile(
    r"\b(review|analy[sz]e|audit|explain (what|how) (this|the) (code|function)|why (does|is) (this|my)|"
    r"root cause|compare|assess|evaluate|what does this (code|function)|find (the )?(bug|issue|problem))\b",
    re.IGNORECASE,
)
_CRITICAL = re.compile(
    r"\b(production|security|vulnerab\w*|payments?|medical|safety[- ]critical|critical|distributed|consensus|"
    r"cryptograph\w*|proof|formally|exploit)\b",
    re.IGNORECASE,
)
_HIGH = re.compile(
    r"\b(architecture|design|concurren\w*|race condition|deadlock|performance|optimi[sz]e|scalab\w*|"
    r"multi-?threaded|algorithm|debug\w*|memory leak|migration)\b",
    re.IGNORECASE,
)
_SIMPLE = re.compile(r"\b(quick|simple|just|short|brief|one[- ]liner|hello world|tl;?dr)\b", re.IGNORECASE)

_QUALITY_SHIFT = {"low": -1, "normal": 0, "high": 1}
_LEVELS: tuple[Complexity, ...] = ("low", "medium", "high", "critical")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def classify(body: dict[str, Any], quality: str | None = None) -> Classification:
    """Decide task and complexity from the whole request body."""
    messages = body.get("messages") or []
    user_text = ""
    all_text_len = 0
    for message in messages:
        text = _text(message.get("content"))
        all_text_len += len(text)
        if message.get("role") == "user":
            user_text = text
    reasons: list[str] = []

    if _PROJECT.search(user_text):
        task: Task = "create_project"
        reasons.append("task:project_words")
    elif _ANALYZE.search(user_text):
        task = "analyze"
        reasons.append("task:analyze_words")
    elif _CODE_FENCE.search(user_text) or _CODE_VERB.search(user_text) or _CODE_SYNTAX.search(user_text):
        task = "code"
        reasons.append("task:code_signals")
    elif body.get("tools"):
        task = "code"
        reasons.append("task:tools")
    else:
        task = "chat"
        reasons.append("task:default_chat")

    level = 0
    if _CRITICAL.search(user_text):
        level = 3
        reasons.append("complexity:critical_words")
    elif _HIGH.search(user_text):
        level = 2
        reasons.append("complexity:hard_words")
    elif task in ("code", "analyze") or len(user_text) > 400:
        level = 1
        reasons.append("complexity:standard")
    if task == "create_project":
        level = max(level, 2)
    if all_text_len > 24_000:
        level = max(level, 2)
        reasons.append("complexity:long_context")
    if level > 0 and _SIMPLE.search(user_text) and level < 3:
        level -= 1
        reasons.append("complexity:simple_words")

    shift = _QUALITY_SHIFT.get(quality or "normal", 0)
    if shift:
        level = min(3, max(0, level + shift))
        reasons.append(f"quality:{quality}")
    return Classification(task=task, complexity=_LEVELS[level], reasons=tuple(reasons))
