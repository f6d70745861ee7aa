"""Escalation approval through MCP elicitation: the user approves, not the model.

When routing needs a paid tier and auto-escalation is off, `run_chat` raises
`escalation_required` with a one-time approval token. Where the client can
show a form, the tool asks the user (a standalone `elicitation/create` on
2025-11-25; an `InputRequiredResult` round on 2026-07-28, with the token kept
in the SDK's sealed `request_state`, so neither the model nor the client can
read or forge it) and redeems the token itself. Otherwise the tool answers
with the escalation_required details, token included, and the caller may
repeat the call with `approval_token`.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.elicitation import AcceptedElicitation, render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from ..errors import GatewayError
from .safety import Refused

ASK_KEY = "approve_escalation"


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


def answered_token(ctx: Context) -> str | None:
    """On a 2026-07-28 retry: the token the user approved, or `Refused` if they did not."""
    if not ctx.request_state:
        return None
    try:
        state = json.loads(ctx.request_state)
    except ValueError:
        return None
    token = state.get("escalation_token") if isinstance(state, dict) else None
    if not isinstance(token, str):
        return None
    answer = (ctx.input_responses or {}).get(ASK_KEY)
    if not isinstance(answer, ElicitResult):
        return None
    if answer.action == "accept" and (answer.content or {}).get("approve") is True:
        return token
    raise Refused("the user did not approve the paid tier; the request was not sent to it")


async def ask(ctx: Context, info: dict[str, Any]) -> str | InputRequiredResult:
    """The approved token (2025-11-25), an input round to send (2026-07-28), or `Refused`."""
    token = str(info["approvalToken"])
    if _modern(ctx):
        request = ElicitRequest(
            params=ElicitRequestFormParams(message=question(info), requested_schema=render_elicitation_schema(Approval))
        )
        return InputRequiredResult(input_requests={ASK_KEY: request}, request_state=json.dumps({"escalation_token": token}))
    result = await ctx.elicit(question(info), Approval)
    if isinstance(result, AcceptedElicitation) and result.data.approve:
        return token
    raise Refused("the user did not approve the paid tier; the request was not sent to it")


def not_approved(info: dict[str, Any]) -> Refused:
    """For clients without elicitation: the details, and how to approve by repeating the call."""
    details = {key: info.get(key) for key in ("fromTier", "proposedTier", "proposedModel", "reason",
                                               "estimatedCostUsd", "approvalToken", "expiresInSeconds")}
    return Refused(
        "escalation_required: " + json.dumps(details)
        + " -- to approve, call the tool again with the same arguments and approval_token set to approvalToken"
    )
