"""Compression: older messages become a new summary version; the recent ones stay verbatim.

Triggered past `compress_after_messages` verbatim messages (the seed's 50) or
when the prompt would pass `compress_at_context_fraction` of the model's
context window. The summary is written by a cheap model (`summary_model`)
through the ordinary pipeline, so it is routed, costed and logged like any
other call, linked to the conversation.
"""

from __future__ import annotations

import logging

from ..config import ConversationConfig
from ..errors import GatewayError
from ..pipeline import ChatCall, run_chat
from ..runtime import Gateway
from ..tokencount import estimate_messages_tokens
from ..types import JSON, Principal
from .model import Conversation, Summary

log = logging.getLogger("proxy.conversations")

SUMMARY_INSTRUCTIONS = (
    "You keep the running summary of a conversation between a user and an AI assistant. "
    "Merge the previous summary (if any) with the new messages into one updated summary. "
    "Keep what later turns will need: the user's goals, decisions made, facts and names "
    "(files, functions, libraries, numbers), code written, open questions and unfinished work. "
    "Drop greetings and repetition. Write plain prose or short bullets, at most 300 words. "
    "Output only the summary."
)


def compression_reason(
    conversation: Conversation, prompt: list[JSON], context_window: int, settings: ConversationConfig
) -> str | None:
    """Why this conversation should be compressed before the next call, or None."""
    if len(conversation.recent) < 2:
        return None
    if len(conversation.recent) >= settings.compress_after_messages:
        return "messages"
    if estimate_messages_tokens(prompt) > context_window * settings.compress_at_context_fraction:
        return "tokens"
    return None


def _transcript(conversation: Conversation, keep: int) -> str:
    parts = []
    if conversation.summary is not None:
        parts.append(f"Previous summary (version {conversation.summary.version}):\n{conversation.summary.text}\n")
    parts.append("New messages:")
    for message in conversation.recent[: len(conversation.recent) - keep]:
        parts.append(f"[{message.seq}] {message.role}: {message.content}")
    return "\n".join(parts)


async def compress(gateway: Gateway, conversation: Conversation, reason: str, principal: Principal) -> bool:
    """Summarise all but the recent messages into a new summary version; False if it could not."""
    settings = gateway.config.conversations
    keep = (
        settings.keep_recent_messages
        if reason == "messages"
        else min(settings.keep_recent_messages, len(conversation.recent) // 2)
    )
    keep = max(1, min(keep, len(conversation.recent) - 1))
    body: JSON = {
        "model": settings.summary_model,
        "messages": [
            {"role": "system", "content": SUMMARY_INSTRUCTIONS},
            {"role": "user", "content": _transcript(conversation, keep)},
        ],
    }
    call = ChatCall(principal=principal, endpoint="conversation:summary", conversation_id=conversation.id)
    try:
        outcome = await run_chat(gateway, body, call)
    except GatewayError as error:
        log.warning("could not summarise conversation %s (%s); keeping it verbatim", conversation.id, error.message)
        return False
    assert outcome.response is not None
    choices = outcome.response.get("choices") or [{}]
    text = str(((choices[0] or {}).get("message") or {}).get("content") or "").strip()
    if not text:
        log.warning("summary model returned nothing for conversation %s; keeping it verbatim", conversation.id)
        return False
    covered = conversation.recent[: len(conversation.recent) - keep]
    version = conversation.summary.version + 1 if conversation.summary else 1
    conversation.summary = Summary(text, version, covered[-1].seq)
    conversation.recent = conversation.recent[len(covered) :]
    conversation.metadata["lastCompression"] = {
        "reason": reason,
        "version": version,
        "messagesSummarised": len(covered),
    }
    return True
