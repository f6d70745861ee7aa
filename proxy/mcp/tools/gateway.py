"""chat, route_explain, usage_sql, budget_status: the gateway itself as tools.

`chat` goes the same way as an HTTP request (route -> upstream -> usage log)
through `run_chat`; the MCP client's own credentials are never part of the
upstream request. `route_explain` is the routing decision without the call.
`usage_sql` is the usage log's own read-only SQL (proxy/usage/sql.py).
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from ...errors import GatewayError
from ...pipeline import ChatCall, run_chat
from ...types import Principal, RouteDecision
from ..safety import Refused
from ..toolbox import Toolbox
from .fs import READ_ONLY

CALLS_MODEL = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
Quality = Literal["low", "normal", "high"]

PromptArg = Annotated[str, Field(description="The user message.", min_length=1)]
ModelArg = Annotated[str, Field(description="'auto', a tier L0-L3, a task (chat, code, analyze, create_project) or a model id.")]
QualityArg = Annotated[Quality | None, Field(description="Move the tier down (low) or up (high).")]


class Route(BaseModel):
    model: str
    provider: str
    tier: str
    task: str
    complexity: str
    reasons: list[str]
    candidates: list[str] = Field(description="Models that fit at that tier, best first.")
    price_per_million: dict[str, float] = Field(description="USD per million input and output tokens of the chosen model.")


class ChatAnswer(BaseModel):
    content: str
    route: Route
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_estimated: bool


class UsageRows(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class ProjectSpend(BaseModel):
    project: str
    requests_today: int
    cost_today_usd: float
    cost_month_usd: float
    daily_limit_usd: float | None = None
    monthly_limit_usd: float | None = None


class BudgetStatus(BaseModel):
    as_of: str
    projects: list[ProjectSpend]
    note: str


def route_of(decision: RouteDecision) -> Route:
    return Route(
        model=decision.model.id,
        provider=decision.provider,
        tier=decision.tier,
        task=decision.task,
        complexity=decision.complexity,
        reasons=list(decision.reasons),
        candidates=[m.id for m in decision.candidates],
        price_per_million={"input": decision.model.price.input, "output": decision.model.price.output},
    )


def body_for(prompt: str, model: str, system: str | None = None, max_tokens: int | None = None) -> dict[str, Any]:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    body: dict[str, Any] = {"model": model, "messages": messages}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def register(server: MCPServer, toolbox: Toolbox) -> None:
    gateway = toolbox.gateway
    principal = Principal()

    @server.tool(annotations=CALLS_MODEL)
    async def chat(
        prompt: PromptArg,
        model: ModelArg = "auto",
        system: Annotated[str | None, Field(description="Optional system prompt.")] = None,
        quality: QualityArg = None,
        max_tokens: Annotated[int | None, Field(description="Cap on the answer's tokens.", gt=0)] = None,
    ) -> ChatAnswer:
        """Ask a model through the gateway: routed to the cheapest fitting tier, costed and logged."""
        body = body_for(prompt, model, system, max_tokens)
        call = ChatCall(principal=principal, endpoint="mcp:chat", quality=quality, client="mcp")
        try:
            outcome = await run_chat(gateway, body, call)
        except GatewayError as error:
            raise Refused(f"the gateway refused the request: {error.message}") from None
        response = outcome.response or {}
        choice = (response.get("choices") or [{}])[0]
        usage = response.get("usage") or {}
        return ChatAnswer(
            content=(choice.get("message") or {}).get("content") or "",
            route=route_of(outcome.decision),
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            cost_usd=float(outcome.headers.get("x-gateway-cost", "0") or 0),
            cost_estimated=outcome.headers.get("x-gateway-cost-estimated") == "true",
        )

    @server.tool(annotations=READ_ONLY)
    def route_explain(prompt: PromptArg, model: ModelArg = "auto", quality: QualityArg = None) -> Route:
        """Explain which model, tier and task the gateway would pick for this prompt, without calling any model."""
        try:
            decision = gateway.router.route(body_for(prompt, model), quality=quality, principal=principal)
        except GatewayError as error:
            raise Refused(error.message) from None
        return route_of(decision)

    async def usage_query(sql: str) -> tuple[list[str], list[list[Any]], bool]:
        if gateway.usage is None:
            raise Refused("the usage log is disabled on this gateway (usage.enabled: false)")
        try:
            result = await gateway.usage.query(sql, gateway.redis)
        except GatewayError as error:
            raise Refused(error.message) from None
        return result.columns, result.rows, result.truncated

    @server.tool(annotations=READ_ONLY)
    async def usage_sql(
        sql: Annotated[str, Field(description="One SELECT over `usage` (ts, project, task, tier, routed_model, provider, input_tokens, output_tokens, cost_usd, latency_ms, status, ...) or the views usage_daily, cost_by_model, cost_by_tier, cost_by_project, latency_by_model, cache_savings, escalations.")],
    ) -> UsageRows:
        """Query the gateway's usage log with read-only SQL (DuckDB dialect)."""
        columns, rows, truncated = await usage_query(sql)
        return UsageRows(columns=columns, rows=rows, truncated=truncated)

    @server.tool(annotations=READ_ONLY)
    async def budget_status() -> BudgetStatus:
        """Spend so far today and this month, per project, from the usage log."""
        now = datetime.now(UTC)
        day = now.strftime("%Y-%m-%d")
        month = now.strftime("%Y-%m-01")
        # Literal dates made here (no caller text): the usage SQL API takes no parameters.
        sql = (
            f"SELECT project, count(*) FILTER (WHERE ts >= TIMESTAMPTZ '{day} 00:00:00+00'), "
            f"coalesce(sum(cost_usd) FILTER (WHERE ts >= TIMESTAMPTZ '{day} 00:00:00+00'), 0), "
            f"coalesce(sum(cost_usd), 0) FROM usage WHERE ts >= TIMESTAMPTZ '{month} 00:00:00+00' "
            "GROUP BY project ORDER BY project"
        )
        _, rows, _ = await usage_query(sql)
        projects = [
            ProjectSpend(project=str(p), requests_today=int(n), cost_today_usd=float(d), cost_month_usd=float(m))
            for p, n, d, m in rows
        ]
        return BudgetStatus(
            as_of=now.isoformat(timespec="seconds"),
            projects=projects,
            note="spend from the usage log (UTC days and months); no budget limits are configured on this gateway",
        )
