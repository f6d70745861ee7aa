"""Read-only SQL over the usage log: the guard, and execution with row and time limits.

The guard gives clear refusals; the store's connection is the real wall (file
access is switched off and the configuration locked), so a query that slips
past a keyword still cannot read or write a file.
"""

from __future__ import annotations

import re
import threading
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import duckdb

from ..errors import InvalidRequest
from .results import QueryResult, SqlLimits, precheck_sql

# Statements that only read. Everything else (INSERT, COPY, ATTACH, SET, PRAGMA,
# CREATE, EXPORT, LOAD, CALL, ...) is refused.
_READ_ONLY = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
# Table functions that read files or run other SQL; refused by name for a clear message.
_FORBIDDEN = re.compile(
    r"\b(read_\w+|glob|sniff_csv|parquet_\w+|iceberg_\w+|delta_scan|query|query_table|getenv|current_setting"
    r"|duckdb_secrets|duckdb_extensions)\s*\(",
    re.IGNORECASE,
)
_STRING = re.compile(r"'(?:[^']|'')*'")


def check_sql(sql: str, limits: SqlLimits) -> str:
    """The one statement to run, or `InvalidRequest` saying why not."""
    sql = precheck_sql(sql, limits)
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise InvalidRequest(f"the query does not parse: {error}", param="sql", code="invalid_sql") from None
    if len(statements) != 1:
        raise InvalidRequest("send exactly one statement", param="sql", code="invalid_sql")
    if statements[0].type not in _READ_ONLY:
        kind = statements[0].type.name
        raise InvalidRequest(f"only SELECT queries are allowed here, not {kind}", param="sql", code="read_only")
    found = _FORBIDDEN.search(_STRING.sub("''", sql))
    if found:
        name = found.group(1).lower()
        raise InvalidRequest(
            f"{name} is not allowed: queries may read only the usage database", param="sql", code="read_only"
        )
    return sql


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return str(value)


def run_query(cursor: duckdb.DuckDBPyConnection, sql: str, limits: SqlLimits) -> QueryResult:
    """Run a checked query on its own cursor; interrupt it after the time limit."""
    timer = threading.Timer(limits.timeout_seconds, cursor.interrupt)
    timer.start()
    try:
        cursor.execute(sql)
        columns = [column[0] for column in cursor.description or []]
        rows = cursor.fetchmany(limits.max_rows + 1)
    except duckdb.InterruptException:
        raise InvalidRequest(
            f"the query ran longer than {limits.timeout_seconds:g}s and was stopped", param="sql", code="query_timeout"
        ) from None
    except duckdb.Error as error:
        raise InvalidRequest(f"the query failed: {error}", param="sql", code="invalid_sql") from None
    finally:
        timer.cancel()
        cursor.close()
    truncated = len(rows) > limits.max_rows
    return QueryResult(columns, [[_plain(v) for v in row] for row in rows[: limits.max_rows]], truncated)
