"""The compact package a higher tier receives instead of the whole history.

When a turn escalates, the stronger (dearer) model gets what it needs to
finish the job, in few tokens: the conversation's summary, the current task,
what was tried and why it fell short, and the issues known so far.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Conversation

_EXCERPT = 400


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try that fell short: which model, at which tier, and why."""

    model: str
    tier: str
    failure: str


def handoff_messages(
    conversation: Conversation, task: str, attempts: list[Attempt], *, reason: str, system: str | None = None
) -> list[dict[str, str]]:
    """Chat messages for the higher tier: a system handoff package, then the task itself."""
    lines = ["HANDOFF PACKAGE: a lower tier could not finish this task; you are taking over."]
    if system:
        lines += ["", system]
    lines += ["", "## Context summary"]
    if conversation.summary is not None:
        lines.append(conversation.summary.text)
    if conversation.recent:
        lines.append("Latest messages:")
        for message in conversation.recent[-2:]:
            lines.append(f"- {message.role}: {_clip(message.content)}")
    if conversation.summary is None and not conversation.recent:
        lines.append("(new conversation)")
    lines += ["", "## Current task", _clip(task, 2000), "", "## Previous attempts"]
    for index, attempt in enumerate(attempts, 1):
        lines.append(f"{index}. {attempt.model} ({attempt.tier}): {_clip(attempt.failure)}")
    if not attempts:
        lines.append("(none recorded)")
    issues = [reason, *sorted({a.failure for a in attempts} - {reason})]
    pending = [t.text for t in conversation.todos if t.status != "done"]
    lines += ["", "## Known issues", *(f"- {_clip(issue)}" for issue in issues)]
    if pending:
        lines += ["", "## Open TODO items", *(f"- {item}" for item in pending)]
    lines += ["", "Answer the current task directly and completely."]
    return [{"role": "system", "content": "\n".join(lines)}, {"role": "user", "content": task}]


def _clip(text: str, limit: int = _EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
