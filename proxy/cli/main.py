"""Entry point for `aigw` and `python -m proxy`: one sub-command per module."""

from __future__ import annotations

import argparse
import sys

from . import chat, code, create_project, doctor, mcp, models, route, serve, sql, tokens, usage


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aigw", description="AI MCP Gateway: an OpenAI-compatible LLM gateway.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(subparsers)
    mcp.add_parser(subparsers)
    route.add_parser(subparsers)
    sql.add_parser(subparsers)
    usage.add_parser(subparsers)
    tokens.add_parser(subparsers)
    chat.add_parser(subparsers)
    code.add_parsers(subparsers)
    create_project.add_parser(subparsers)
    models.add_parser(subparsers)
    doctor.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    result: int = args.run(args)
    return result
