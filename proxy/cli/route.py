"""`aigw route`: the routing decision for a prompt, without calling any model.

    aigw route "Refactor this module into packages"         # human-readable
    aigw route --json "hi"                                   # the /v1/route dry-run JSON
    echo '{"messages": [...], "tools": [...]}' | aigw route --json -

Runs the gateway's router in process over the same config `aigw serve` reads,
so it needs no running server and no network.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from ..config import ConfigError, load_config
from ..errors import GatewayError


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("route", help="explain how a prompt would be routed (no model is called)")
    parser.add_argument(
        "prompt",
        nargs="?",
        default="-",
        help="the prompt; '-' or nothing reads stdin: a JSON request body, or plain text",
    )
    parser.add_argument("--json", action="store_true", help="print the decision as JSON")
    parser.add_argument("--quality", choices=["low", "normal", "high"], help="the x-gateway-quality hint")
    parser.add_argument("--model", help="the model the client would send (default auto)")
    parser.add_argument("--config", help="config file (default ./config.yaml, then the packaged example)")
    parser.set_defaults(run=run)


def _body(prompt: str, model: str | None) -> dict[str, object]:
    if prompt == "-":
        text = sys.stdin.read()
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                parsed = orjson.loads(stripped)
            except orjson.JSONDecodeError as error:
                raise SystemExit(f"aigw route: stdin is not valid JSON: {error}") from None
            if not isinstance(parsed, dict):
                raise SystemExit("aigw route: the JSON on stdin must be an object")
            body: dict[str, object] = parsed
        else:
            body = {"message": text}
    else:
        body = {"message": prompt}
    if model:
        body["model"] = model
    return body


def run(args: argparse.Namespace) -> int:
    from ..routing import Router
    from ..routing.explain import explain

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"aigw: {error}", file=sys.stderr)
        return 2
    # No probing and no network: keyed providers count as available, keyless local ones do not.
    available = {name for name, p in config.providers.items() if p.usable and not p.probe}
    router = Router(config, available)
    try:
        decision = explain(router, _body(args.prompt, args.model), quality=args.quality)
    except GatewayError as error:
        print(f"aigw route: {error.message}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(decision, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    print(
        f"task {decision['task']}, complexity {decision['complexity']} -> tier {decision['tier']}: "
        f"{decision['model']} ({decision['provider']})"
    )
    print(f"reasons: {', '.join(decision['reasons'])}")
    print(f"candidates: {', '.join(c['model'] for c in decision['candidates'])}")
    if decision["escalation"]:
        steps = ", ".join(f"{e['tier']} {e['model']}" for e in decision["escalation"])
        print(f"on failure: {steps} (max tier {decision['maxTier']}, auto-escalate {decision['autoEscalate']})")
    return 0
