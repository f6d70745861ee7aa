"""What a usage query returns and the limits it runs under (no DuckDB import: workers use these too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidRequest


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
