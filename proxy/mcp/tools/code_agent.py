"""code_agent: the gateway's TODO-driven coding assistant (proxy/codeagent.py) as a tool.

Its model calls go through routing, budgets and the usage log like any other
request; the TODO list lives with the conversation, so passing the returned
`conversation_id` back continues the same list.
"""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from ...codeagent import code_agent as run_code_agent
from ...errors import GatewayError
from ..safety import Refused
from ..toolbox import Toolbox, principal_of
from .gateway import CALLS_MODEL


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
        context: Annotated[dict[str, Any] | None, Field(description="Extra context: files, constraints, stack, ...")] = None,
        quality: Annotated[Literal["low", "normal", "high"] | None, Field(description="Move the tier down or up.")] = None,
        conversation_id: Annotated[str | None, Field(description="Continue an earlier code_agent conversation.")] = None,
    ) -> CodeAgentAnswer:
        """A coding assistant routed through the gateway: keeps a TODO list per conversation and returns code, the routing summary, tokens and cost."""
        try:
            result = await run_code_agent(
                gateway, task, context=context, quality=quality, conversation_id=conversation_id,
                principal=principal_of(ctx), endpoint="mcp:code_agent",
            )
        except GatewayError as error:
            raise Refused(f"the gateway refused the request: {error.message}") from None
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
