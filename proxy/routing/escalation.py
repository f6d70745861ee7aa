"""Escalation: when an answer fails, and how a client approves a paid tier.

Pure helpers (`answer_problem`, `handoff_message`, `fingerprint`) and the
approval-token store. The protocol, as the README documents it:

1. An answer fails (upstream error after retries and fallbacks, timeout, empty
   or truncated output, invalid JSON for a JSON response format, a refusal).
2. With `routing.auto_escalate` the gateway retries one tier up (up to the
   project's max tier) with a compact handoff system message.
3. Without it, a move to a paid tier answers HTTP 402 `escalation_required`
   with the proposed tier, the reason, the estimated cost and a one-time
   approval token (stored in Redis under `redis_prefix` when configured, so
   any worker accepts it; in process otherwise).
4. The client repeats the same request with `x-gateway-approve-escalation:
   <token>`; the gateway starts directly at the approved tier. A token works
   once, for the same project and messages, until it expires.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..config import Tier
from ..types import JSON

log = logging.getLogger("proxy.escalation")

_REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry,? but |sorry,? |unfortunately,? )?i (?:can(?:'|no)?t|cannot|am unable to|won'?t) "
    r"(?:help|assist|comply|provide|do that|fulfil)",
    re.IGNORECASE,
)


def answer_problem(body: JSON, response: JSON) -> str | None:
    """Why a (non-streamed) answer does not count as an answer, or None when it does."""
    choices = response.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return "empty"
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    if message.get("tool_calls") or message.get("function_call"):
        return None
    if message.get("refusal"):
        return "refusal"
    if choice.get("finish_reason") == "length" and not (body.get("max_tokens") or body.get("max_completion_tokens")):
        # The client set no limit, so the model stopped short of its answer.
        return "truncated"
    if not text.strip():
        return "empty"
    if len(text) < 400 and _REFUSAL.match(text):
        return "refusal"
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        try:
            orjson.loads(_strip_fence(text))
        except orjson.JSONDecodeError:
            return "invalid_json"
    return None


def _strip_fence(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped


def handoff_message(task: str, tried: list[str], reason: str) -> JSON:
    """The compact note a higher tier gets: the task, what was tried, why it failed."""
    return {
        "role": "system",
        "content": (
            f"[gateway handoff] Task type: {task}. Tried before you: {', '.join(tried) or 'none'}. "
            f"It failed: {reason}. Answer the user's request completely and correctly."
        ),
    }


def fingerprint(project: str, body: JSON) -> str:
    """What an approval token is bound to: the project and the conversation."""
    payload = orjson.dumps([project, body.get("messages"), body.get("tools")], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()[:32]


@dataclass
class Grant:
    """What an approval token approves."""

    project: str
    fingerprint: str
    tier: Tier
    from_tier: Tier
    reason: str

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Grant | None:
        try:
            data: dict[str, Any] = orjson.loads(raw)
            return cls(**data)
        except (orjson.JSONDecodeError, TypeError):
            return None


@dataclass
class ApprovalStore:
    """One-time approval tokens: Redis when configured (all workers see them), else this process."""

    redis: aioredis.Redis | None
    prefix: str
    ttl_seconds: float
    local: dict[str, tuple[float, Grant]] = field(default_factory=dict)

    def _key(self, token: str) -> str:
        return f"{self.prefix}escalation:{token}"

    async def issue(self, grant: Grant) -> str:
        token = "esc_" + secrets.token_urlsafe(18)
        if self.redis is not None:
            try:
                await self.redis.set(self._key(token), grant.to_json(), px=int(self.ttl_seconds * 1000))
                return token
            except (RedisError, OSError) as error:
                log.warning("redis unavailable for escalation tokens, keeping this one in process: %s", error)
        self._sweep()
        self.local[token] = (time.monotonic() + self.ttl_seconds, grant)
        return token

    async def redeem(self, token: str) -> Grant | None:
        """The token's grant, consumed: a second redeem of the same token finds nothing."""
        if not token.startswith("esc_") or len(token) > 64:
            return None
        if self.redis is not None:
            try:
                raw = await self.redis.getdel(self._key(token))
            except (RedisError, OSError) as error:
                log.warning("redis unavailable for escalation tokens: %s", error)
                raw = None
            if raw is not None:
                return Grant.from_json(raw)
        entry = self.local.pop(token, None)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def _sweep(self) -> None:
        now = time.monotonic()
        for token in [t for t, (expires, _) in self.local.items() if expires < now]:
            del self.local[token]
