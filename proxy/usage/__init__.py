"""The usage log: schema migrations, the spool, the DuckDB writer process, the Redis ingester, SQL."""

from .log import UsageLog
from .results import QueryResult, SqlLimits

__all__ = ["QueryResult", "SqlLimits", "UsageLog"]
