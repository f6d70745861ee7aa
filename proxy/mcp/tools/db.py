"""db_query, db_insert, db_update: the workspace DuckDB file (data_dir/workspace.duckdb)."""

import asyncio
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from ..toolbox import Toolbox
from .fs import READ_ONLY

WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

TableArg = Annotated[str, Field(description="Table name (one of mcp.db_allowed_tables).")]


class Rows(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = Field(description="True when more rows matched than the configured limit.")


class Changed(BaseModel):
    table: str
    rows_affected: int


def register(server: MCPServer, toolbox: Toolbox) -> None:
    db = toolbox.db

    @server.tool(annotations=READ_ONLY)
    async def db_query(
        sql: Annotated[str, Field(description="One SELECT statement. Use ? placeholders for values.")],
        params: Annotated[list[Any] | None, Field(description="Values for the ? placeholders, in order.")] = None,
    ) -> Rows:
        """Run a read-only SELECT on the workspace DuckDB database and return the rows."""
        columns, rows, truncated = await asyncio.to_thread(db.query, sql, list(params or []))
        return Rows(columns=columns, rows=rows, truncated=truncated)

    @server.tool(annotations=WRITES)
    async def db_insert(
        table: TableArg,
        row: Annotated[dict[str, Any], Field(description="Column name -> value for the new row.")],
    ) -> Changed:
        """Insert one row into an allowed table of the workspace DuckDB database (disabled unless configured)."""
        count = await asyncio.to_thread(db.insert, table, row)
        return Changed(table=table, rows_affected=count)

    @server.tool(annotations=WRITES)
    async def db_update(
        table: TableArg,
        values: Annotated[dict[str, Any], Field(description="Column name -> new value.")],
        where: Annotated[
            dict[str, Any], Field(description="Column name -> value; rows matching all of them are updated.")
        ],
    ) -> Changed:
        """Update rows of an allowed table of the workspace DuckDB database (disabled unless configured)."""
        count = await asyncio.to_thread(db.update, table, values, where)
        return Changed(table=table, rows_affected=count)
