"""`aigw sql "SELECT ..."`: read-only SQL over the usage log, printed as a table, CSV or JSON.

    aigw sql "SELECT * FROM cost_by_model"
    aigw sql --format csv "SELECT * FROM usage WHERE ts > now() - INTERVAL 1 DAY" > today.csv

While a gateway runs, the query goes through its admin endpoint (POST
/v1/admin/sql with the admin token), because the gateway holds the DuckDB file.
When none answers, the file is opened read-only in this process: a consistent
snapshot, with the same guard and limits.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import duckdb
import httpx
import orjson

from ..config import Config, ConfigError, load_config
from ..errors import GatewayError
from ..usage import QueryResult, SqlLimits
from ..usage.sql import check_sql, run_query

FORMATS = ("table", "csv", "json")


class SqlFailed(Exception):
    """The query was refused or could not run; the message is for the user."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sql", help="run read-only SQL over the usage log")
    parser.add_argument("query", help="one SELECT statement (the views: usage_daily, cost_by_model, ...)")
    add_common(parser)
    parser.set_defaults(run=run)


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")
    parser.add_argument("--url", help="the running gateway (default http://<server.host>:<server.port>)")
    parser.add_argument("--config", help="config file (default ./config.yaml, then the packaged example)")


def gateway_url(config: Config, explicit: str | None) -> str:
    if explicit:
        return explicit.rstrip("/")
    host = config.server.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{config.server.port}"


def _admin_token(config: Config) -> str | None:
    if config.server.admin_token:
        return config.server.admin_token
    path = Path(config.server.data_dir) / "admin_token"
    return path.read_text().strip() if path.exists() else None


def _through_gateway(url: str, token: str | None, sql: str) -> QueryResult | None:
    """The gateway's answer, or None when no gateway listens there."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(url + "/v1/admin/sql", json={"sql": sql}, headers=headers, timeout=120)
    except httpx.ConnectError:
        return None
    except httpx.HTTPError as error:
        raise SqlFailed(f"the gateway at {url} did not answer: {type(error).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        raise SqlFailed(f"{url} answered HTTP {response.status_code} without JSON; is it the gateway?") from None
    if response.status_code != 200:
        raise SqlFailed(str((body.get("error") or {}).get("message") or body))
    return QueryResult(body["columns"], body["rows"], bool(body["truncated"]))


def _snapshot(config: Config, sql: str) -> QueryResult:
    path = Path(config.server.data_dir) / "usage.duckdb"
    if not path.exists():
        raise SqlFailed(f"no usage log at {path} yet (start the gateway with `aigw serve`)")
    limits = SqlLimits(config.usage.sql_max_rows, config.usage.sql_timeout_seconds, config.usage.sql_max_chars)
    try:
        check_sql(sql, limits)
        db = duckdb.connect(str(path), read_only=True, config={"enable_external_access": False})
    except GatewayError as error:
        raise SqlFailed(error.message) from None
    except duckdb.Error as error:
        raise SqlFailed(f"{path} is held by a running gateway that did not answer; pass --url ({error})") from None
    try:
        return run_query(db.cursor(), sql, limits)
    except GatewayError as error:
        raise SqlFailed(error.message) from None
    finally:
        db.close()


def query(config: Config, sql: str, url: str | None = None) -> QueryResult:
    """Through the running gateway if there is one, else from the file itself."""
    result = _through_gateway(gateway_url(config, url), _admin_token(config), sql)
    return result if result is not None else _snapshot(config, sql)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.9f}".rstrip("0").rstrip(".") if abs(value) < 1 and value else f"{value:g}"
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return str(value)


def format_result(result: QueryResult, kind: str) -> str:
    if kind == "json":
        return (
            orjson.dumps(
                [dict(zip(result.columns, row, strict=True)) for row in result.rows], option=orjson.OPT_INDENT_2
            ).decode()
            + "\n"
        )
    if kind == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_cell(v) for v in row] for row in result.rows])
        return out.getvalue()
    cells = [[_cell(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(result.columns)]
    numeric = [
        all(isinstance(row[i], (int, float)) for row in result.rows if row[i] is not None)
        for i in range(len(result.columns))
    ]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))

    lines = [line(result.columns), "  ".join("-" * w for w in widths), *(line(row) for row in cells)]
    lines.append(
        f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"
        + (", truncated by usage.sql_max_rows" if result.truncated else "")
        + ")"
    )
    return "\n".join(lines) + "\n"


def run_and_print(args: argparse.Namespace, sql: str) -> int:
    try:
        config = load_config(args.config)
        result = query(config, sql, args.url)
    except (ConfigError, SqlFailed) as error:
        print(f"aigw: {error}", file=sys.stderr)
        return 1 if isinstance(error, SqlFailed) else 2
    sys.stdout.write(format_result(result, args.format))
    return 0


def run(args: argparse.Namespace) -> int:
    return run_and_print(args, args.query)
