"""Score the in-process classifier against the labelled routing set.

    python -m bench.routing [--split heldout|dev|all] [--errors]

Prints task accuracy, exact-tier accuracy, under- and over-routing rates, and
the cost of the classifier's choices against always-L3 and against the labels.
Costs use the mean price of each tier's models in the packaged example config
(`proxy/config.example.yaml`), the request's estimated input tokens and a
typical output length per task; they compare choices, not invoices.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from proxy.config import PACKAGED_EXAMPLE, TIERS, RoutingConfig, Tier, load_config
from proxy.routing import classify
from proxy.tokencount import estimate_messages_tokens

DATA = Path(__file__).with_name("prompts.jsonl")
OUTPUT_TOKENS = {"chat": 300, "code": 700, "analyze": 600, "create_project": 3000}


def load(split: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows if split == "all" else [r for r in rows if r["split"] == split]


def tier_prices() -> dict[str, tuple[float, float]]:
    """Mean (input, output) USD per 1M tokens of each tier's models in the example config."""
    config = load_config(PACKAGED_EXAMPLE, env={})
    prices: dict[str, tuple[float, float]] = {}
    for tier in TIERS:
        models = [m for m in config.models if m.tier == tier and m.provider != "demo"]
        if models:
            prices[tier] = (
                sum(m.price.input for m in models) / len(models),
                sum(m.price.output for m in models) / len(models),
            )
        else:
            prices[tier] = (0.0, 0.0)
    return prices


def cost(row: dict[str, Any], tier: str, prices: dict[str, tuple[float, float]]) -> float:
    request = row["request"]
    tokens_in = estimate_messages_tokens(request["messages"], request.get("tools"))
    tokens_out = OUTPUT_TOKENS[row["task"]]
    price_in, price_out = prices[tier]
    return (tokens_in * price_in + tokens_out * price_out) / 1_000_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="heldout", choices=["heldout", "dev", "all"])
    parser.add_argument("--errors", action="store_true", help="list every misrouted row")
    args = parser.parse_args(argv)

    rows = load(args.split)
    tiers = RoutingConfig().complexity_tiers
    prices = tier_prices()
    task_ok = tier_ok = under = over = 0
    spent = labelled = premium = 0.0
    confusion: Counter[tuple[str, str]] = Counter()
    by_kind: dict[str, list[int]] = {}
    errors = []
    for row in rows:
        found = classify(row["request"])
        tier: Tier = tiers[found.complexity]
        task_hit = found.task == row["task"]
        task_ok += task_hit
        delta = TIERS.index(tier) - TIERS.index(row["tier"])
        tier_ok += delta == 0
        under += delta < 0
        over += delta > 0
        confusion[(row["task"], found.task)] += 1
        stats = by_kind.setdefault(row["kind"], [0, 0, 0])
        stats[0] += 1
        stats[1] += task_hit
        stats[2] += delta == 0
        spent += cost(row, tier, prices)
        labelled += cost(row, row["tier"], prices)
        premium += cost(row, "L3", prices)
        if not task_hit or delta:
            errors.append((row, found.task, tier, found.reasons))

    n = len(rows)
    print(f"routing benchmark: {n} prompts ({args.split} split of {DATA.name})")
    print(f"  task accuracy      {task_ok / n:7.1%}   ({task_ok}/{n})")
    print(f"  exact tier         {tier_ok / n:7.1%}   ({tier_ok}/{n})")
    print(f"  under-routed       {under / n:7.1%}   ({under}/{n})  tier below the label")
    print(f"  over-routed        {over / n:7.1%}   ({over}/{n})  tier above the label")
    print(f"  cost of choices    ${spent:.4f}")
    print(f"  cost at labels     ${labelled:.4f}   (choices cost {spent / labelled:.2f}x the labels)")
    print(f"  cost always-L3     ${premium:.4f}   (choices save {1 - spent / premium:.1%} against always-L3)")
    print(
        "  by kind (n, task, tier):",
        ", ".join(f"{k} {v[0]} {v[1] / v[0]:.0%} {v[2] / v[0]:.0%}" for k, v in sorted(by_kind.items())),
    )
    if args.errors:
        for row, task, tier, reasons in errors:
            last = [m for m in row["request"]["messages"] if m["role"] == "user"][-1]["content"]
            print(
                f"- {row['id']} label {row['task']}/{row['tier']} got {task}/{tier} {','.join(reasons)} | {last[:110]!r}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
