"""What the load is pointed at: nginx directly, the gateway, and (on request) its peers.

Every target answers the same two requests (a chat completion, and the same
with `stream: true`) from the same nginx, so rows of the table differ only in
what sits between the load generator and nginx.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from .load import Request
from .procs import free_port, pinned, stop_process, wait_for_port
from .upstream import Nginx

REPO = Path(__file__).resolve().parent.parent
PROMPT = [{"role": "user", "content": "Say hello in one short sentence."}]

# The seed's variables would override the bench config; the gateway gets none of them.
_SEED_ENV = {
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENROUTER_API_KEY",
    "REDIS_URL",
    "REDIS_PREFIX",
    "DATA_DIR",
    "API_PORT",
    "LOG_LEVEL",
    "DEFAULT_LAYER",
    "MAX_ESCALATION_LAYER",
    "ENABLE_AUTO_ESCALATE",
    "ENABLE_CROSS_CHECK",
    "CHAT_MODELS",
    "CODE_MODELS",
    "ANALYZE_MODELS",
    "CREATE_PROJECT_MODELS",
    "OSS_MODEL_ENABLED",
    "OSS_MODEL_ENDPOINT",
    "OSS_MODEL_NAME",
    "OPENROUTER_FALLBACK_MODELS",
    "OPENROUTER_REPLACE_OPENAI",
    "OPENROUTER_REPLACE_CLAUDE",
    "AIGW_ADMIN_TOKEN",
    "AIGW_CONFIG",
}


def chat_body(model: str, stream: bool, extra: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": 32, **(extra or {})}
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


@dataclass
class Target:
    name: str
    json: Request
    sse: Request
    pid: int | None = None  # the process whose peak RSS is reported
    stop: Callable[[], None] = lambda: None
    notes: list[str] = field(default_factory=list)


def direct(nginx: Nginx) -> Target:
    return Target(
        "direct",
        Request(nginx.url + "/json/v1/chat/completions", chat_body("bench-model", False)),
        Request(nginx.url + "/sse/v1/chat/completions", chat_body("bench-model", True)),
    )


# -- the gateway and its features ---------------------------------------------


@dataclass(frozen=True)
class Feature:
    """A switch the bench can turn on: config changes, and what the client sends differently."""

    name: str
    help: str
    config: Callable[[dict[str, Any], dict[str, str]], None] = lambda raw, ctx: None
    json_model: str = "bench-json"
    sse_model: str = "bench-sse"
    headers: tuple[tuple[str, str], ...] = ()
    body: dict[str, Any] = field(default_factory=dict)
    # A gateway token created through the admin API once the gateway is up: (project, daily USD limit).
    token: tuple[str, float] | None = None


def _without_usage(raw: dict[str, Any], ctx: dict[str, str]) -> None:
    raw["usage"] = {"enabled": False}


def _with_project_budget(raw: dict[str, Any], ctx: dict[str, str]) -> None:
    raw["projects"] = {"bench": {"daily_usd": 1_000_000, "monthly_usd": 10_000_000}}


def _with_redis(raw: dict[str, Any], ctx: dict[str, str]) -> None:
    raw["redis_url"] = ctx["redis_url"]
    raw["redis_prefix"] = ctx["redis_prefix"]


FEATURES: dict[str, Feature] = {
    feature.name: feature
    for feature in (
        Feature("plain", "defaults: explicit model id, usage logging on, cache on (skips non-deterministic requests)"),
        Feature("auto", "model=auto: classify task and complexity, pick the tier", json_model="auto"),
        Feature(
            "nousage",
            "usage.enabled: false (the plain row minus this one is usage logging's cost)",
            config=_without_usage,
        ),
        Feature("redis", "redis_url set (cache in Redis); requests not cacheable, so no lookups", config=_with_redis),
        Feature(
            "cache-hit",
            "temperature 0 and Redis: every request after the first is a Redis cache hit",
            config=_with_redis,
            body={"temperature": 0},
        ),
        Feature("cache-hit-memory", "temperature 0, no Redis: in-process LRU cache hits", body={"temperature": 0}),
        Feature(
            "token",
            "a gateway token (hashed lookup) with a daily budget, in a project with daily and monthly "
            "budgets: every request reserves and settles against both",
            config=_with_project_budget,
            token=("bench", 1_000_000.0),
        ),
    )
}


def gateway_config(nginx: Nginx, port: int, data_dir: Path, feature: Feature, ctx: dict[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "data_dir": str(data_dir),
            "log_level": "warning",
            "admin_token": "bench-admin-token",
        },
        "providers": {
            "upjson": {"kind": "openai", "base_url": nginx.url + "/json/v1", "api_key": "sk-bench"},
            "upsse": {"kind": "openai", "base_url": nginx.url + "/sse/v1", "api_key": "sk-bench"},
        },
        "models": [
            {"id": "bench-json", "provider": "upjson", "tier": "L0", "price": {"input": 0.1, "output": 0.2}},
            {"id": "bench-sse", "provider": "upsse", "tier": "L1", "price": {"input": 0.1, "output": 0.2}},
        ],
    }
    feature.config(raw, ctx)
    return raw


def gateway(nginx: Nginx, feature: Feature, cpu: int | None, ctx: dict[str, str]) -> Target:
    """`python -m proxy serve` (what `aigw serve` runs) on its own port, pinned to `cpu`."""
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix=f"aigw-bench-{feature.name}-"))
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(gateway_config(nginx, port, work / "data", feature, ctx)))
    env = {k: v for k, v in os.environ.items() if k not in _SEED_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    log = (work / "gateway.log").open("wb")
    process = subprocess.Popen(
        pinned([sys.executable, "-m", "proxy", "serve", "--config", str(config)], cpu),
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
    except RuntimeError:
        log.close()
        raise RuntimeError(f"gateway ({feature.name}) did not start:\n{(work / 'gateway.log').read_text()}") from None

    def stop() -> None:
        stop_process(process)
        log.close()

    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    name = "gateway" if feature.name == "plain" else f"gateway+{feature.name}"
    headers = feature.headers
    if feature.token is not None:
        try:
            headers += (("authorization", "Bearer " + _create_token(port, *feature.token)),)
        except httpx.HTTPError:
            stop()
            raise
    return Target(
        name,
        Request(url, chat_body(feature.json_model, False, feature.body), headers),
        Request(url, chat_body(feature.sse_model, True, feature.body), headers),
        pid=process.pid,
        stop=stop,
    )


def _create_token(port: int, project: str, daily_usd: float) -> str:
    """A token made the way an admin makes one (POST /admin/tokens); returns its secret."""
    response = httpx.post(
        f"http://127.0.0.1:{port}/admin/tokens",
        timeout=10,
        headers={"authorization": "Bearer bench-admin-token"},
        json={"name": "bench", "project": project, "limits": {"daily_usd": daily_usd}},
    )
    response.raise_for_status()
    return str(response.json()["secret"])
