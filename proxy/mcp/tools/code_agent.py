"""code_agent: the gateway's TODO-driven coding assistant (proxy/codeagent.py) as a tool.

Its model calls go through routing, budgets and the usage log like any other
request; the TODO list lives with the conversation, so passing the returned
`conversation_id` back continues the same list. A paid tier is approved by the
user as for `chat` (see approval.py); a refused turn stores nothing, so the
approved retry sees the same conversation.
"""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import InputRequiredResult
from pydantic import BaseModel, Field

from ...codeagent import CodeAgentResult, new_conversation_id
from ...codeagent import code_agent as run_code_agent
from ..approval import approved_call, resumed
from ..clientlog import client_log
from ..toolbox import Toolbox, principal_of
from .gateway import CALLS_MODEL, ApprovalArg


class TodoItem(BaseModel):
    text: str
    status: str


class CodeAgentAnswer(BaseModel):
    conversation_id: str = Field(description="Pass this back to continue the same TODO list.")
    code: str
    text: str = Field(description="The whole answer: TODO checklist, code and notes.")
    todos: list[TodoItem]
    routing_summary: str
    model: str
    tier: str
    input_tokens: int
    output_tokens: int
    cost_usd: float


def register(server: MCPServer, toolbox: Toolbox) -> None:
    gateway = toolbox.gateway

    @server.tool(annotations=CALLS_MODEL)
    async def code_agent(
        task: Annotated[str, Field(description="What to build or change.", min_length=1)],
        ctx: Context,
        context: Annotated[
            dict[str, Any] | None, Field(description="Extra context: files, constraints, stack, ...")
        ] = None,
        quality: Annotated[
            Literal["low", "normal", "high"] | None, Field(description="Move the tier down or up.")
        ] = None,
        conversation_id: Annotated[
            str | None, Field(description="Continue an earlier code_agent conversation.")
        ] = None,
        approval_token: ApprovalArg = None,
    ) -> CodeAgentAnswer | InputRequiredResult:
        """A coding assistant routed through the gateway: keeps a TODO list per conversation and returns code, the routing summary, tokens and cost. A paid tier needs the user's approval unless auto-escalation is on."""
        log = client_log(ctx, "code_agent")
        # One id for the whole call, kept across an approval round, so the usage
        # rows of the refused attempt and of the approved one share it.
        conversation = conversation_id or resumed(ctx, "conversation_id") or new_conversation_id()
        principal = principal_of(ctx)
        await log.info(f"working on the task in conversation {conversation}")

        async def attempt(approval: str | None) -> CodeAgentResult:
            return await run_code_agent(
                gateway,
                task,
                context=context,
                quality=quality,
                conversation_id=conversation,
                principal=principal,
                endpoint="mcp:code_agent",
                approval=approval,
            )

        result = await approved_call(
            ctx, attempt, given=approval_token, log=log, keep={"conversation_id": conversation}
        )
        if isinstance(result, InputRequiredResult):
            return result
        done = sum(1 for t in result.todos if t.status == "done")
        await log.info(
            f"answered by {result.model} (tier {result.tier}): {result.input_tokens} tokens in, "
            f"{result.output_tokens} out, ${float(result.cost):.6f}; TODO {done}/{len(result.todos)} done"
        )
        return CodeAgentAnswer(
            conversation_id=result.conversation_id,
            code=result.code,
            text=result.text,
            todos=[TodoItem(text=t.text, status=t.status) for t in result.todos],
            routing_summary=result.routing_summary,
            model=result.model,
            tier=result.tier,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=float(result.cost),
        )
