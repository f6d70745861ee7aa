"""`aigw models`: what the gateway can route to (`GET /v1/models`), as a table or `--json`."""

from __future__ import annotations

import argparse

from rich.table import Table

from .common import add_client_options, make_client, run
from .output import Output


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("models", help="list the models the gateway routes to, with tiers and prices")
    parser.add_argument("--all", action="store_true", help="also list virtual names (auto, tiers, tasks, aliases)")
    add_client_options(parser)
    parser.set_defaults(run=run(models))


def models(args: argparse.Namespace, output: Output) -> int:
    with make_client(args, output) as client:
        data = client.get("/v1/models").body.get("data") or []
    if output.json_mode:
        output.json(data)
        return 0
    concrete = [m for m in data if not m.get("virtual")]
    virtual = [m for m in data if m.get("virtual")] if args.all else []
    table = Table("model", "tier", "provider", "input $/1M", "output $/1M", "context", box=None, pad_edge=False)
    for model in sorted(concrete, key=lambda m: (str(m.get("tier")), str(m.get("id")))):
        pricing = model.get("pricing") or {}
        table.add_row(
            str(model.get("id")),
            str(model.get("tier", "")),
            str(model.get("owned_by", "")),
            f"{pricing.get('input_per_1m', 0):g}",
            f"{pricing.get('output_per_1m', 0):g}",
            str(model.get("context_window", "")),
        )
    for model in virtual:
        table.add_row(
            str(model.get("id")), "", "virtual", "", "", str(model.get("alias_of") or model.get("description", ""))
        )
    output.out.print(table)
    return 0
