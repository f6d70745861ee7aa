"""Escalation approval through MCP elicitation: the user approves, not the model.

When routing needs a paid tier and auto-escalation is off, `run_chat` raises
`escalation_required` with a one-time approval token. Where the client can
show a form, the tool asks the user (a standalone `elicitation/create` on
2025-11-25; an `InputRequiredResult` round on 2026-07-28, with the token kept
in the SDK's sealed `request_state`, so neither the model nor the client can
read or forge it) and redeems the token itself. Otherwise the tool answers
with the escalation_required details, token included, and the caller may
repeat the call with `approval_token`; a client that can ask the user never
has that argument honoured, so there only the user approves.

`approved_call` is that whole flow for any tool whose model call may need
the approval (`chat`, `code_agent`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mcp.server.elicitation import AcceptedElicitation, render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from ..errors import GatewayError
from .clientlog import ClientLog
from .safety import Refused

ASK_KEY = "approve_escalation"
T = TypeVar("T")


class Approval(BaseModel):
    approve: bool = Field(description="Allow this one request to use the paid tier.")


def escalation_of(error: GatewayError) -> dict[str, Any] | None:
    """The escalation details when `error` is an escalation_required refusal."""
    if error.code != "escalation_required":
        return None
    info = error.extra.get("escalation")
    return info if isinstance(info, dict) and info.get("approvalToken") else None


def question(info: dict[str, Any]) -> str:
    return (
        f"The gateway wants to move this request to paid tier {info.get('proposedTier')} "
        f"({info.get('proposedModel')}), estimated ${info.get('estimatedCostUsd')}, because tier "
        f"{info.get('fromTier')} could not answer ({info.get('reason')}). Allow it for this one request?"
    )


def _modern(ctx: Context) -> bool:
    version = ctx.protocol_version
    return version is not None and is_version_at_least(version, "2026-07-28")


def can_elicit(ctx: Context) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    return _modern(ctx) or bool(ctx.session.can_send_request)


def _state(ctx: Context) -> dict[str, Any]:
    """What `ask` sealed into the input round (the SDK verifies it came from this server)."""
    if not ctx.request_state:
        return {}
    try:
        state = json.loads(ctx.request_state)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def resumed(ctx: Context, key: str) -> str | None:
    """On a 2026-07-28 retry: a value the tool kept in the sealed state (e.g. its conversation id)."""
    value = _state(ctx).get(key)
    return value if isinstance(value, str) else None


def answered_token(ctx: Context) -> str | None:
    """On a 2026-07-28 retry: the token the user approved, or `Refused` if they did not."""
    token = _state(ctx).get("escalation_token")
    if not isinstance(token, str):
        return None
    answer = (ctx.input_responses or {}).get(ASK_KEY)
    if not isinstance(answer, ElicitResult):
        return None
    if answer.action == "accept" and (answer.content or {}).get("approve") is True:
        return token
    raise Refused("the user did not approve the paid tier; the request was not sent to it")


async def ask(ctx: Context, info: dict[str, Any], keep: dict[str, str] | None = None) -> str | InputRequiredResult:
    """The approved token (2025-11-25), an input round to send (2026-07-28), or `Refused`.

    `keep`: values the retry needs back (read them with `resumed`).
    """
    token = str(info["approvalToken"])
    if _modern(ctx):
        request = ElicitRequest(
            params=ElicitRequestFormParams(message=question(info), requested_schema=render_elicitation_schema(Approval))
        )
        state = json.dumps({**(keep or {}), "escalation_token": token})
        return InputRequiredResult(input_requests={ASK_KEY: request}, request_state=state)
    result = await ctx.elicit(question(info), Approval)
    if isinstance(result, AcceptedElicitation) and result.data.approve:
        return token
    raise Refused("the user did not approve the paid tier; the request was not sent to it")


def not_approved(info: dict[str, Any]) -> Refused:
    """For clients without elicitation: the details, and how to approve by repeating the call."""
    details = {
        key: info.get(key)
        for key in (
            "fromTier",
            "proposedTier",
            "proposedModel",
            "reason",
            "estimatedCostUsd",
            "approvalToken",
            "expiresInSeconds",
        )
    }
    return Refused(
        "escalation_required: "
        + json.dumps(details)
        + " -- to approve, call the tool again with the same arguments and approval_token set to approvalToken"
    )


def _refused(error: GatewayError) -> Refused:
    return Refused(f"the gateway refused the request: {error.message}")


async def approved_call(
    ctx: Context,
    attempt: Callable[[str | None], Awaitable[T]],
    *,
    given: str | None,
    log: ClientLog,
    keep: dict[str, str] | None = None,
) -> T | InputRequiredResult:
    """Run `attempt(approval)`; when it needs a paid tier, get the user's approval and run it once more.

    `given` is the tool's `approval_token` argument, used only where the client
    cannot ask the user. Every other refusal becomes a tool error.
    """
    try:
        approval = answered_token(ctx)
    except Refused as declined:
        await log.warning("the user declined the paid tier; nothing was sent to it")
        raise declined
    if approval is None and not can_elicit(ctx):
        approval = given
    try:
        return await attempt(approval)
    except GatewayError as error:
        info = escalation_of(error)
        if info is None:
            raise _refused(error) from None
    if not can_elicit(ctx):
        await log.notice(f"paid tier {info.get('proposedTier')} needs approval; returning its approval token")
        raise not_approved(info)
    await log.notice(f"asking the user to approve paid tier {info.get('proposedTier')} ({info.get('proposedModel')})")
    try:
        answer = await ask(ctx, info, keep)
    except Refused as declined:
        await log.warning("the user declined the paid tier; nothing was sent to it")
        raise declined
    if isinstance(answer, InputRequiredResult):
        return answer
    try:
        return await attempt(answer)
    except GatewayError as again:
        raise _refused(again) from None
