"""The coding assistant: a task in, code and a TODO list out, remembered per conversation.

A plain async function so every surface can share it: `POST /v1/code-agent`,
the MCP `code_agent` tool and the CLI. The model is asked to keep a markdown
TODO checklist first and then the code; the checklist becomes the
conversation's TODO list (a new version in DuckDB), and the next call sees it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from .conversations.model import Conversation, Todo
from .conversations.turns import TurnRequest, run_turn
from .errors import InvalidRequest
from .runtime import Gateway
from .types import Principal

SYSTEM = (
    "You are a senior software engineer acting as a coding agent. Work TODO-driven:\n"
    "1. Start with a section '## TODO' holding a markdown checklist of the steps for this task "
    "(`- [ ] step`), marking steps you complete in this answer as `- [x] step`. If a TODO list exists "
    "already, carry it forward and update it.\n"
    "2. Then give the code in fenced code blocks; put the file path on the line before each block "
    "when it belongs in a file.\n"
    "3. End with a short note on anything left to do. Be concise."
)

_TODO = re.compile(r"^\s*[-*]\s*\[([ xX~])\]\s*(.+?)\s*$", re.MULTILINE)
_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
_QUALITY = {"low", "normal", "high"}


@dataclass
class CodeAgentResult:
    conversation_id: str
    text: str
    code: str
    todos: list[Todo]
    routing_summary: str
    model: str
    provider: str
    tier: str
    input_tokens: int
    output_tokens: int
    cost: Decimal
    duration_ms: int


def new_conversation_id() -> str:
    return "code-" + uuid.uuid4().hex[:16]


def parse_todos(text: str) -> list[Todo]:
    marks = {" ": "pending", "~": "in_progress", "x": "done", "X": "done"}
    return [Todo(item, marks[mark]) for mark, item in _TODO.findall(text)]  # type: ignore[arg-type]


def extract_code(text: str) -> str:
    blocks = _FENCE.findall(text)
    return "\n\n".join(block.rstrip("\n") for block in blocks) if blocks else text.strip()


def _update_todos(conversation: Conversation, answer: str) -> bool:
    todos = parse_todos(answer)
    if not todos or todos == conversation.todos:
        return False
    conversation.todos = todos
    return True


def render_task(task: str, files: Sequence[Any] = (), context: dict[str, Any] | None = None) -> str:
    """The task with its files and context, as the model will read it."""
    parts = [task.strip()]
    if context:
        parts.append("Context:\n" + orjson.dumps(context, option=orjson.OPT_INDENT_2).decode())
    for item in files:
        if isinstance(item, str):
            parts.append(f"File: {item}")
        elif isinstance(item, dict) and isinstance(item.get("path"), str):
            content = item.get("content")
            parts.append(f"File: {item['path']}" + (f"\n```\n{content}\n```" if isinstance(content, str) else ""))
        else:
            raise InvalidRequest(
                "each entry of 'files' must be a path or an object {path, content}", param="files", code="invalid_type"
            )
    return "\n\n".join(parts)


async def code_agent(
    gateway: Gateway,
    task: str,
    *,
    files: Sequence[Any] = (),
    context: dict[str, Any] | None = None,
    quality: str | None = None,
    conversation_id: str | None = None,
    principal: Principal | None = None,
    user_id: str | None = None,
    endpoint: str = "/v1/code-agent",
    approval: str | None = None,
) -> CodeAgentResult:
    """Run one code-agent step; the TODO list lives with the conversation."""
    if not task.strip():
        raise InvalidRequest("'task' must be a non-empty string", param="task", code="invalid_type")
    if quality is not None and quality not in _QUALITY:
        raise InvalidRequest("'quality' must be low, normal or high", param="quality", code="invalid_value")
    principal = principal or Principal()
    request = TurnRequest(
        conversation_id=conversation_id or new_conversation_id(),
        message=render_task(task, files, context),
        principal=principal,
        endpoint=endpoint,
        model="code",
        quality=quality,
        system=SYSTEM,
        user_id=user_id,
        project_id=principal.project,
        after=_update_todos,
        approval=approval,
    )
    result = await run_turn(gateway, request)
    return CodeAgentResult(
        conversation_id=result.conversation.id,
        text=result.text,
        code=extract_code(result.text),
        todos=list(result.conversation.todos),
        routing_summary=result.route_summary,
        model=result.decision.model.id,
        provider=result.decision.provider,
        tier=result.decision.tier,
        input_tokens=result.input_tokens,
        output_tokens=result.output_tokens,
        cost=result.cost,
        duration_ms=result.duration_ms,
    )
