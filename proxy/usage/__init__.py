"""The usage log: schema migrations, the spool, the DuckDB store, the Redis ingester, SQL."""

from .log import UsageLog
from .sql import QueryResult, SqlLimits, check_sql

__all__ = ["QueryResult", "SqlLimits", "UsageLog", "check_sql"]
