"""`aigw usage`: what was spent, grouped by model, project, tier, provider or day.

    aigw usage                    # by model, the last 30 days
    aigw usage --by project --days 7
    aigw usage --by day --format csv

The same path as `aigw sql`: the running gateway, else a read-only snapshot.
"""

from __future__ import annotations

import argparse
import sys

from .sql import add_common, run_and_print

GROUPS = {
    "model": "routed_model",
    "project": "project",
    "tier": "tier",
    "provider": "provider",
    "day": "CAST(ts AS DATE)",
}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("usage", help="spend summaries from the usage log")
    parser.add_argument("--by", choices=sorted(GROUPS), default="model", help="group rows by (default model)")
    parser.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")
    add_common(parser)
    parser.set_defaults(run=run)


def summary_sql(by: str, days: int) -> str:
    column = GROUPS[by]
    order = f"{by} DESC" if by == "day" else "cost_usd DESC"
    return f"""
        SELECT {column} AS {by}, count(*) AS requests,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
               sum(cost_usd) AS cost_usd, sum(cache_saved_usd) AS saved_usd,
               count(*) FILTER (WHERE cache_hit) AS cache_hits,
               count(*) FILTER (WHERE status >= 400) AS errors,
               round(quantile_cont(latency_ms, 0.95), 1) AS p95_ms
        FROM usage WHERE ts > now() - INTERVAL {int(days)} DAY
        GROUP BY ALL ORDER BY {order}
    """


def run(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("aigw: --days must be at least 1", file=sys.stderr)
        return 2
    return run_and_print(args, summary_sql(args.by, args.days))
