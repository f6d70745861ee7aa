"""Conversation context for the seed's stateful API: two tiers, compression, handoff."""

from .model import Conversation, Message, Summary, Todo
from .store import ConversationStore

__all__ = ["Conversation", "ConversationStore", "Message", "Summary", "Todo"]
