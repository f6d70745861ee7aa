"""chat, route_explain, usage_sql, budget_status: the gateway itself as tools.

`chat` goes the same way as an HTTP request (route -> upstream -> usage log)
through `run_chat`; the MCP client's own credentials are never part of the
upstream request. `route_explain` is the routing decision without the call.
`usage_sql` is the usage log's own read-only SQL (proxy/usage/sql.py).
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, Field

from ...errors import GatewayError
from ...pipeline import ChatCall, ChatOutcome, run_chat
from ...routing.explain import explain
from ...types import Principal, RouteDecision
from ..approval import approved_call
from ..clientlog import client_log
from ..safety import Refused
from ..toolbox import Toolbox, principal_of
from .fs import READ_ONLY

CALLS_MODEL = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
Quality = Literal["low", "normal", "high"]

PromptArg = Annotated[str, Field(description="The user message.", min_length=1)]
ModelArg = Annotated[
    str, Field(description="'auto', a tier L0-L3, a task (chat, code, analyze, create_project) or a model id.")
]
QualityArg = Annotated[Quality | None, Field(description="Move the tier down (low) or up (high).")]
ApprovalArg = Annotated[
    str | None,
    Field(
        description=(
            "Only after an escalation_required answer from this tool: its approvalToken, to approve the paid tier once "
            "(ignored where the client asks the user itself)."
        )
    ),
]


class Route(BaseModel):
    model: str
    provider: str
    tier: str
    task: str
    complexity: str
    reasons: list[str]
    candidates: list[str] = Field(description="Models that fit at that tier, best first.")
    price_per_million: dict[str, float] = Field(
        description="USD per million input and output tokens of the chosen model."
    )
    max_tier: str | None = Field(None, description="The highest tier this request may reach.")
    escalation_path: list[str] = Field(default_factory=list, description="Tier:model steps tried if answers fail.")
    auto_escalate: bool | None = Field(None, description="False: paid tiers above the first need the user's approval.")


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


class BudgetPeriod(BaseModel):
    period: str
    limit_usd: float | None
    spent_usd: float
    reserved_usd: float
    resets_at: str | None = None


class ScopeBudget(BaseModel):
    scope: str = Field(description="'project:NAME' or 'token:ID'.")
    limits: dict[str, Any]
    periods: list[BudgetPeriod]


class BudgetStatus(BaseModel):
    as_of: str
    budgets: list[ScopeBudget] = Field(
        description="The caller's project (and token) budgets: limit, spent, reserved per period."
    )
    projects: list[ProjectSpend] = Field(description="Spend per project from the usage log.")
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


def answer_of(outcome: ChatOutcome) -> ChatAnswer:
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


def register(server: MCPServer, toolbox: Toolbox) -> None:
    gateway = toolbox.gateway

    async def complete(
        body: dict[str, Any], quality: str | None, approval: str | None, principal: Principal
    ) -> ChatOutcome:
        call = ChatCall(principal=principal, endpoint="mcp:chat", quality=quality, client="mcp", approval=approval)
        return await run_chat(gateway, body, call)

    @server.tool(annotations=CALLS_MODEL)
    async def chat(
        prompt: PromptArg,
        ctx: Context,
        model: ModelArg = "auto",
        system: Annotated[str | None, Field(description="Optional system prompt.")] = None,
        quality: QualityArg = None,
        max_tokens: Annotated[int | None, Field(description="Cap on the answer's tokens.", gt=0)] = None,
        approval_token: ApprovalArg = None,
    ) -> ChatAnswer | InputRequiredResult:
        """Ask a model through the gateway: routed to the cheapest fitting tier, costed and logged. A paid tier needs the user's approval unless auto-escalation is on."""
        body = body_for(prompt, model, system, max_tokens)
        principal = principal_of(ctx)
        log = client_log(ctx, "chat")
        outcome = await approved_call(
            ctx, lambda approval: complete(body, quality, approval, principal), given=approval_token, log=log
        )
        if isinstance(outcome, InputRequiredResult):
            return outcome
        answer = answer_of(outcome)
        route = answer.route
        await log.info(
            f"answered by {route.model} (tier {route.tier}): {answer.input_tokens} tokens in, "
            f"{answer.output_tokens} out, ${answer.cost_usd:.6f}"
        )
        return answer

    @server.tool(annotations=READ_ONLY)
    def route_explain(prompt: PromptArg, ctx: Context, model: ModelArg = "auto", quality: QualityArg = None) -> Route:
        """Explain which model, tier and task the gateway would pick for this prompt, and where it would escalate, without calling any model."""
        try:
            found = explain(gateway.router, body_for(prompt, model), quality=quality, principal=principal_of(ctx))
        except GatewayError as error:
            raise Refused(error.message) from None
        chosen = next((c for c in found["candidates"] if c["model"] == found["model"]), None)
        price = chosen["price"] if chosen else {}
        return Route(
            model=found["model"],
            provider=found["provider"],
            tier=found["tier"],
            task=found["task"],
            complexity=found["complexity"],
            reasons=list(found["reasons"]),
            candidates=[c["model"] for c in found["candidates"]],
            price_per_million={"input": float(price.get("input", 0)), "output": float(price.get("output", 0))},
            max_tier=found.get("maxTier"),
            escalation_path=[f"{step['tier']}:{step['model']}" for step in found.get("escalation", [])],
            auto_escalate=found.get("autoEscalate"),
        )

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
        sql: Annotated[
            str,
            Field(
                description="One SELECT over `usage` (ts, project, task, tier, routed_model, provider, input_tokens, output_tokens, cost_usd, latency_ms, status, ...) or the views usage_daily, cost_by_model, cost_by_tier, cost_by_project, latency_by_model, cache_savings, escalations."
            ),
        ],
    ) -> UsageRows:
        """Query the gateway's usage log with read-only SQL (DuckDB dialect)."""
        columns, rows, truncated = await usage_query(sql)
        return UsageRows(columns=columns, rows=rows, truncated=truncated)

    @server.tool(annotations=READ_ONLY)
    async def budget_status(ctx: Context) -> BudgetStatus:
        """The caller's budgets (limit, spent, reserved per period) and spend today and this month per project."""
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
        principal = principal_of(ctx)
        scopes = [(f"project:{principal.project}", await gateway.budgets.project_limits(principal.project))]
        if principal.token_id is not None and principal.token_limits is not None:
            scopes.append((f"token:{principal.token_id}", principal.token_limits))
        budgets = []
        for scope, limits in scopes:
            report = await gateway.budgets.report(scope, limits)
            periods = [BudgetPeriod(period=name, **values) for name, values in report["spend"].items()]
            budgets.append(ScopeBudget(scope=scope, limits=report["limits"], periods=periods))
        return BudgetStatus(
            as_of=now.isoformat(timespec="seconds"),
            budgets=budgets,
            projects=projects,
            note="budgets from the gateway's ledger; per-project spend from the usage log (UTC days and months)",
        )
