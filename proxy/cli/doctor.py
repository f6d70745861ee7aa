"""`aigw doctor`: check the config, providers, Redis, DuckDB and the running gateway; say how to fix each problem.

Local checks read the same config `aigw serve` would (`--config`, AIGW_CONFIG,
./config.yaml, the packaged example); the last check asks the gateway at
AIGW_URL for its own view (`/health`). Exit 1 when any check failed.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from ..config import Config, ConfigError, cli_settings, find_config_path, load_config
from .client import CliError, GatewayClient
from .common import run
from .output import Output

Status = Literal["ok", "warn", "fail"]
MARKS = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("doctor", help="check config, providers, Redis, DuckDB and the gateway")
    parser.add_argument("--config", help="config file to check (default: the one `aigw serve` would use)")
    parser.add_argument("--url", help="gateway URL (default AIGW_URL, MCP_ENDPOINT, or http://localhost:3000)")
    parser.add_argument("--token", help="gateway token (default AIGW_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(run=run(doctor))


def check_config(path: str | None) -> tuple[Check, Config | None]:
    where = find_config_path(path)
    try:
        config = load_config(where)
    except ConfigError as error:
        return Check("config", "fail", str(error), f"fix the named key in {where}"), None
    return Check("config", "ok", f"{config.source} is valid"), config


def check_providers(config: Config) -> list[Check]:
    checks: list[Check] = []
    real = [name for name, p in config.providers.items() if p.usable and p.kind != "demo"]
    for name, provider in config.providers.items():
        if provider.kind == "demo" or not provider.enabled:
            continue
        if provider.usable:
            checks.append(Check(f"provider {name}", "ok", f"{provider.kind} at {provider.base_url or 'default URL'}"))
        else:
            variable = {
                "openai": "OPENAI_API_KEY",
                "anthropic": "ANTHROPIC_API_KEY",
                "openrouter": "OPENROUTER_API_KEY",
            }.get(name, f"providers.{name}.api_key")
            checks.append(
                Check(
                    f"provider {name}",
                    "warn",
                    "no API key: its models are not routed to",
                    f"export {variable}=... (or set enabled: false for it)",
                )
            )
    if not real:
        checks.append(
            Check(
                "providers",
                "warn",
                "no usable provider: only the built-in demo model answers",
                "set OPENAI_API_KEY, ANTHROPIC_API_KEY or OPENROUTER_API_KEY, or OSS_MODEL_ENABLED=true "
                "for a local Ollama, then restart",
            )
        )
    return checks


def check_redis(config: Config) -> Check:
    if not config.redis_url:
        return Check("redis", "ok", "not configured: cache, limits and tokens stay in one process", None)
    import redis

    client = redis.Redis.from_url(config.redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        return Check(
            "redis",
            "fail",
            f"cannot reach {_safe_url(config.redis_url)}: {error}",
            "start Redis (redis-server) or correct REDIS_URL",
        )
    finally:
        client.close()
    return Check("redis", "ok", f"{_safe_url(config.redis_url)} answers PING")


def _safe_url(url: str) -> str:
    """A Redis URL without its password."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def check_duckdb(config: Config) -> Check:
    import duckdb

    data_dir = Path(config.server.data_dir)
    if not data_dir.exists():
        parent = data_dir.resolve().parent
        if os.access(parent, os.W_OK):
            return Check("duckdb", "ok", f"{data_dir} will be created on the first start")
        return Check(
            "duckdb",
            "fail",
            f"{data_dir} does not exist and {parent} is not writable",
            "set DATA_DIR (or server.data_dir) to a writable folder",
        )
    if not os.access(data_dir, os.W_OK):
        return Check("duckdb", "fail", f"{data_dir} is not writable", f"chmod u+w {data_dir} or set DATA_DIR")
    database = data_dir / "usage.duckdb"
    if not database.exists():
        return Check("duckdb", "ok", f"{database} will be created on the first start")
    try:
        connection = duckdb.connect(str(database), read_only=True)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            return Check("duckdb", "ok", f"{database} is open in a running gateway")
        return Check(
            "duckdb",
            "fail",
            f"cannot open {database}: {error}",
            "move the file aside; the gateway creates a new one on start",
        )
    except duckdb.Error as error:
        return Check(
            "duckdb",
            "fail",
            f"cannot open {database}: {error}",
            "move the file aside; the gateway creates a new one on start",
        )
    try:
        rows = connection.execute("SELECT count(*) FROM usage").fetchone()
    except duckdb.Error:
        return Check("duckdb", "warn", f"{database} has no usage table yet", "start the gateway once to migrate it")
    finally:
        connection.close()
    return Check("duckdb", "ok", f"{database}: {rows[0] if rows else 0} usage rows")


def check_gateway(args: argparse.Namespace) -> list[Check]:
    settings = cli_settings()
    settings = settings.model_copy(update={k: v for k, v in {"url": args.url, "token": args.token}.items() if v})
    with GatewayClient(settings) as client:
        try:
            health = client.get("/health").body
        except CliError as error:
            return [
                Check(
                    "gateway", "fail", error.message, f"start it with `aigw serve` or set AIGW_URL (now {client.url})"
                )
            ]
    checks = [
        Check(
            "gateway",
            "ok" if health.get("status") == "ok" else "warn",
            f"{client.url} answers, status {health.get('status')}",
        )
    ]
    if health.get("redisConfigured") and not health.get("redis"):
        checks.append(
            Check(
                "gateway redis", "fail", "the gateway cannot reach its Redis", "check REDIS_URL where the gateway runs"
            )
        )
    if health.get("database") is False:
        checks.append(
            Check(
                "gateway duckdb",
                "fail",
                "the gateway's usage database is not healthy",
                "see the gateway's log; check DATA_DIR is writable",
            )
        )
    for name, provider in (health.get("providers") or {}).items():
        if isinstance(provider, dict) and provider.get("status") not in ("up", None):
            checks.append(
                Check(
                    f"gateway provider {name}",
                    "warn",
                    f"the gateway reports {name} {provider.get('status')}",
                    "check its key and base_url; the gateway routes around it meanwhile",
                )
            )
    if health.get("demo"):
        checks.append(
            Check(
                "gateway models",
                "warn",
                "the gateway answers with its demo model only",
                "configure a provider key where the gateway runs and restart it",
            )
        )
    return checks


def doctor(args: argparse.Namespace, output: Output) -> int:
    try:
        cli_settings()
    except ConfigError as error:
        raise CliError(str(error), exit_code=2) from None
    config_check, config = check_config(args.config)
    checks = [config_check]
    if config is not None:
        checks += check_providers(config)
        checks.append(check_redis(config))
        checks.append(check_duckdb(config))
    checks += check_gateway(args)
    failed = any(c.status == "fail" for c in checks)
    if output.json_mode:
        output.json({"ok": not failed, "checks": [asdict(c) for c in checks]})
    else:
        for check in checks:
            line = f"{MARKS[check.status]} [bold]{check.name}[/]: {check.detail}"
            if check.fix:
                line += f"\n    [dim]fix:[/] {check.fix}"
            output.out.print(line, markup=True, highlight=False)
    return 1 if failed else 0
