"""`aigw tokens create|list|show|revoke`: manage gateway tokens through a running gateway's admin API.

The admin token comes from --admin-token, else AIGW_ADMIN_TOKEN / server.admin_token
in the config, else the `data_dir/admin_token` file the gateway created.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from ..config import TIERS, Config, ConfigError, load_config


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("tokens", help="create, list, show and revoke gateway tokens")
    parser.add_argument("--url", help="gateway URL (default: from the config's server.host and port)")
    parser.add_argument("--admin-token", help="admin token (default: AIGW_ADMIN_TOKEN, then data_dir/admin_token)")
    parser.add_argument("--config", help="config file (as for `aigw serve`)")
    parser.add_argument("--json", action="store_true", help="print the admin API's JSON")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create a token; its secret is printed once")
    create.add_argument("--project", default="default", help="project the token's requests are charged to")
    create.add_argument("--name", default="", help="a label for people")
    create.add_argument("--expires-in-days", type=float, help="expiry, in days from now")
    create.add_argument("--model", action="append", default=[], dest="models", help="allowed model (repeatable)")
    create.add_argument("--max-tier", choices=TIERS, help="never route above this tier")
    create.add_argument("--daily-usd", type=float, help="budget per UTC day")
    create.add_argument("--monthly-usd", type=float, help="budget per UTC month")
    create.add_argument("--total-usd", type=float, help="budget over the token's life")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    actions.add_parser("list", help="list tokens (never their secrets)")
    show = actions.add_parser("show", help="show one token")
    show.add_argument("token_id")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id")
    parser.set_defaults(run=run)


def _target(args: argparse.Namespace, config: Config) -> tuple[str, str]:
    url = args.url
    if not url:
        host = config.server.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        url = f"http://{host}:{config.server.port}"
    token = args.admin_token or config.server.admin_token
    if not token:
        path = Path(config.server.data_dir) / "admin_token"
        try:
            token = path.read_text().strip()
        except OSError:
            raise ConfigError(
                f"no admin token: pass --admin-token, set AIGW_ADMIN_TOKEN, or run where {path} is readable"
            ) from None
    return url.rstrip("/"), token


def _request(args: argparse.Namespace, config: Config) -> httpx.Response:
    url, token = _target(args, config)
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        if args.action == "create":
            limits = {
                key: value
                for key, value in {
                    "max_tier": args.max_tier,
                    "daily_usd": args.daily_usd,
                    "monthly_usd": args.monthly_usd,
                    "total_usd": args.total_usd,
                    "rpm": args.rpm,
                    "tpm": args.tpm,
                }.items()
                if value is not None
            }
            body: dict[str, Any] = {
                "project": args.project,
                "name": args.name,
                "limits": limits,
                "allowed_models": args.models,
            }
            if args.expires_in_days is not None:
                body["expires_in_days"] = args.expires_in_days
            return client.post("/admin/tokens", json=body)
        if args.action == "list":
            return client.get("/admin/tokens")
        if args.action == "show":
            return client.get(f"/admin/tokens/{args.token_id}")
        return client.delete(f"/admin/tokens/{args.token_id}")


def _line(token: dict[str, Any]) -> str:
    limits = ",".join(f"{k}={v}" for k, v in token.get("limits", {}).items()) or "-"
    models = ",".join(token.get("allowed_models") or []) or "any"
    return f"{token['id']}  {token['status']:<8} project={token['project']}  name={token['name'] or '-'}  limits={limits}  models={models}"


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        response = _request(args, config)
    except ConfigError as error:
        print(f"aigw: {error}", file=sys.stderr)
        return 2
    except httpx.HTTPError as error:
        print(f"aigw: cannot reach the gateway: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    body = response.json()
    if response.status_code >= 400:
        print(f"aigw: {body.get('error', {}).get('message', response.text)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
    elif args.action == "create":
        print(_line(body))
        print(f"secret: {body['secret']}")
        print("Store the secret now: the gateway keeps only its hash and will not show it again.")
    elif args.action == "list":
        for token in body["data"]:
            print(_line(token))
    else:
        print(_line(body))
    return 0
