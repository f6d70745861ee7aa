"""Read-only SQL for tools a model drives: one SELECT over named tables, nothing else.

DuckDB parses the statement (`json_serialize_sql`), and the tree is checked:
exactly one SELECT, every table it reads is on the allowed list (or a CTE of
the query itself), and no table function or file-reading function appears, so
`read_csv('/etc/passwd')` or `FROM 'file.parquet'` are refused before they run.
The query then runs inside a READ ONLY transaction that is rolled back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from typing import Any

import duckdb

from .safety import Refused

_FILE_FUNCTIONS = re.compile(
    r"^(read_|glob$|getenv$|sniff_csv$|parquet_|query$|query_table$|iceberg_|delta_|http|s3|load_|install_|json_execute)",
    re.IGNORECASE,
)


def check_select(db: duckdb.DuckDBPyConnection, sql: str, allowed_tables: Collection[str]) -> None:
    """Raise `Refused` unless `sql` is one SELECT reading only `allowed_tables`."""
    if not isinstance(sql, str) or not sql.strip():
        raise Refused("sql must be a non-empty SELECT statement")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise Refused(f"the SQL does not parse: {_first_line(error)}") from None
    if len(statements) != 1:
        raise Refused(f"send exactly one statement (got {len(statements)}); this tool is read-only")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise Refused(f"only SELECT is allowed here (got {kind.name}); this tool is read-only")
    row = db.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        raise Refused(f"the SQL cannot be checked: {tree.get('error_message', 'unsupported statement')}")
    ctes = {name.lower() for name in _cte_names(tree)}
    allowed = {name.lower() for name in allowed_tables} | ctes
    for node in _walk(tree):
        kind_name = node.get("type")
        if kind_name == "TABLE_FUNCTION":
            raise Refused("table functions are not allowed in this read-only tool")
        if kind_name == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            schema = str(node.get("schema_name", "") or "")
            catalog = str(node.get("catalog_name", "") or "")
            if name.lower() not in allowed or schema not in ("", "main") or catalog not in ("",):
                raise Refused(
                    f"table {name!r} is not readable here; tables you can read: {', '.join(sorted(allowed_tables)) or 'none'}"
                )
        if node.get("class") == "FUNCTION" and _FILE_FUNCTIONS.match(str(node.get("function_name", ""))):
            raise Refused(f"function {node.get('function_name')!r} is not allowed in this read-only tool")


def run_select(
    db: duckdb.DuckDBPyConnection, sql: str, params: list[Any], max_rows: int
) -> tuple[list[str], list[list[Any]], bool]:
    """Columns, rows (JSON-friendly) and whether more rows were cut off."""
    cursor = db.cursor()
    try:
        cursor.execute("BEGIN TRANSACTION READ ONLY")
        try:
            cursor.execute(sql, params)
            columns = [d[0] for d in cursor.description or []]
            fetched = cursor.fetchmany(max_rows + 1)
        except duckdb.Error as error:
            raise Refused(f"the query failed: {_first_line(error)}") from None
        finally:
            cursor.execute("ROLLBACK")
    finally:
        cursor.close()
    rows = [[jsonable(value) for value in row] for row in fetched[:max_rows]]
    return columns, rows, len(fetched) > max_rows


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)


def _cte_names(tree: Any) -> Iterator[str]:
    for node in _walk(tree):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map") or []:
                if isinstance(entry, dict) and "key" in entry:
                    yield str(entry["key"])


def _walk(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
