"""What a usage query returns and the limits it runs under (no DuckDB import: workers use these too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import GatewayError, InvalidRequest, ServiceUnavailable


@dataclass(frozen=True, slots=True)
class SqlLimits:
    max_rows: int = 1000
    timeout_seconds: float = 10.0
    max_chars: int = 10_000


@dataclass(slots=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": self.rows, "row_count": len(self.rows), "truncated": self.truncated}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> QueryResult:
        return cls(list(body["columns"]), list(body["rows"]), bool(body["truncated"]))


def precheck_sql(sql: object, limits: SqlLimits) -> str:
    """The checks that need no parser, so a worker refuses junk without asking the writer."""
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidRequest("send the query as a non-empty string in 'sql'", param="sql", code="invalid_sql")
    if len(sql) > limits.max_chars:
        raise InvalidRequest(
            f"the query is {len(sql)} characters; the limit is {limits.max_chars}", param="sql", code="query_too_long"
        )
    return sql


# A query's answer as it travels between processes (the writer, the Redis ingester):
# {"result": {...}} or {"error": {...the OpenAI error shape...}, "status": n}.


def error_reply(error: GatewayError) -> dict[str, Any]:
    return {"error": error.body()["error"], "status": error.status_code}


def query_answer(reply: dict[str, Any]) -> QueryResult:
    """The result a reply carries, or the error it carries raised as a `GatewayError`."""
    if "error" in reply:
        shape = reply["error"]
        if isinstance(shape, str):  # the writer itself failed, as opposed to refusing the query
            raise ServiceUnavailable(f"the usage log could not answer: {shape}", code="usage_unavailable")
        raise GatewayError(
            shape["message"],
            code=shape.get("code"),
            param=shape.get("param"),
            error_type=shape.get("type"),
            status_code=int(reply.get("status", 500)),
        )
    return QueryResult.from_json(reply["result"])
