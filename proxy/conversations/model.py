"""A conversation as the gateway keeps it: plain data, shared by both tiers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

TodoStatus = Literal["pending", "in_progress", "done"]


@dataclass(slots=True)
class Message:
    seq: int
    role: str
    content: str
    created_at: float = field(default_factory=time.time)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "role": self.role,
            "content": self.content,
            "createdAt": self.created_at,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Message:
        return cls(
            int(raw["seq"]), str(raw["role"]), str(raw["content"]), float(raw["createdAt"]), dict(raw["metadata"])
        )

    def as_chat(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(slots=True)
class Todo:
    text: str
    status: TodoStatus = "pending"

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "status": self.status}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Todo:
        status = raw.get("status")
        return cls(str(raw["text"]), status if status in ("pending", "in_progress", "done") else "pending")


@dataclass(slots=True)
class Summary:
    """A version of the summary; it stands for every message with `seq <= through_seq`."""

    text: str
    version: int
    through_seq: int
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "version": self.version,
            "throughSeq": self.through_seq,
            "createdAt": self.created_at,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Summary:
        return cls(str(raw["text"]), int(raw["version"]), int(raw["throughSeq"]), float(raw["createdAt"]))


@dataclass(slots=True)
class Conversation:
    """The working set of one conversation.

    `recent` holds the messages the summary does not cover, verbatim and in
    order; summary + recent is what a model sees of the past.
    """

    id: str
    user_id: str | None = None
    project_id: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    message_count: int = 0
    summary: Summary | None = None
    recent: list[Message] = field(default_factory=list)
    todos: list[Todo] = field(default_factory=list)
    todos_version: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def add(self, role: str, content: str, metadata: dict[str, Any] | None = None) -> Message:
        message = Message(self.message_count + 1, role, content, metadata=metadata or {})
        self.message_count = message.seq
        self.recent.append(message)
        self.updated_at = message.created_at
        return message

    def meta_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "userId": self.user_id,
            "projectId": self.project_id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "messageCount": self.message_count,
            "todosVersion": self.todos_version,
            "metadata": self.metadata,
        }

    @classmethod
    def from_meta(cls, raw: dict[str, Any]) -> Conversation:
        return cls(
            id=str(raw["id"]),
            user_id=raw.get("userId"),
            project_id=raw.get("projectId"),
            created_at=float(raw["createdAt"]),
            updated_at=float(raw["updatedAt"]),
            message_count=int(raw["messageCount"]),
            todos_version=int(raw.get("todosVersion") or 0),
            metadata=dict(raw.get("metadata") or {}),
        )


def encode(conversation: Conversation) -> bytes:
    """The whole working set as JSON (the in-process hot tier and the cold tier's replies)."""
    return orjson.dumps(
        {
            "meta": conversation.meta_json(),
            "summary": conversation.summary.to_json() if conversation.summary else None,
            "recent": [m.to_json() for m in conversation.recent],
            "todos": [t.to_json() for t in conversation.todos],
        }
    )


def decode(raw: bytes | str) -> Conversation:
    data = orjson.loads(raw)
    conversation = Conversation.from_meta(data["meta"])
    conversation.summary = Summary.from_json(data["summary"]) if data["summary"] else None
    conversation.recent = [Message.from_json(m) for m in data["recent"]]
    conversation.todos = [Todo.from_json(t) for t in data["todos"]]
    return conversation
