"""What the seed's stateful API costs on top of a plain chat completion.

    python -m bench.conversations [--turns 200] [--redis redis://127.0.0.1:6379/0]

Starts the bench's nginx upstream (canned answers) and `python -m proxy serve`
twice (in-process hot tier, then Redis), sends the same sequential requests to
`POST /v1/chat/completions` (stateless) and `POST /v1/chat` (one conversation:
lock, load, prompt with history, store), and prints client-side latency, plus
the time to rebuild a conversation from DuckDB after its hot copy is gone.
Compression is kept out of the way (a high threshold) so the figures are the
bookkeeping alone. Figures on a shared machine are indicative; compare columns.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from .procs import free_port, stop_process, wait_for_port
from .upstream import Nginx

REPO = Path(__file__).resolve().parent.parent


def _start(nginx: Nginx, redis_url: str | None, prefix: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="aigw-bench-conv-"))
    raw: dict[str, Any] = {
        "server": {"port": port, "data_dir": str(work / "data"), "log_level": "warning", "admin_token": "bench"},
        "providers": {"upjson": {"kind": "openai", "base_url": nginx.url + "/json/v1", "api_key": "sk-bench"}},
        "models": [{"id": "bench-json", "provider": "upjson", "tier": "L0", "context_window": 10_000_000}],
        "conversations": {"compress_after_messages": 100_000, "keep_recent_messages": 8},
        "cache": {"enabled": False},
    }
    if redis_url:
        raw.update(redis_url=redis_url, redis_prefix=prefix)
    (work / "config.yaml").write_text(yaml.safe_dump(raw))
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["PYTHONPATH"] = str(REPO)
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "serve", "--config", str(work / "config.yaml")],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}", work


def _timed(client: httpx.Client, method: str, url: str, **kwargs: Any) -> float:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


def _row(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"  {name:<44} median {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ordered)})"


def measure(nginx: Nginx, turns: int, redis_url: str | None) -> list[str]:
    prefix = f"aigw-bench-{uuid.uuid4().hex[:8]}:"
    process, url, _ = _start(nginx, redis_url, prefix)
    lines = [f"hot tier: {'Redis' if redis_url else 'in-process LRU'}"]
    try:
        with httpx.Client(timeout=30) as client:
            body = {"model": "L0", "messages": [{"role": "user", "content": "hello"}]}
            for _ in range(20):  # warm up both paths
                client.post(url + "/v1/chat/completions", json=body)
                client.post(url + "/v1/chat", json={"message": "warm up", "model": "L0"})
            plain = [_timed(client, "POST", url + "/v1/chat/completions", json=body) for _ in range(turns)]
            new = [
                _timed(client, "POST", url + "/v1/chat", json={"message": "hello", "model": "L0"}) for _ in range(turns)
            ]
            conversation = "bench-" + uuid.uuid4().hex[:8]
            long = [
                _timed(
                    client,
                    "POST",
                    url + "/v1/chat",
                    json={"conversationId": conversation, "message": f"turn {i}", "model": "L0"},
                )
                for i in range(turns)
            ]
            hot = [_timed(client, "GET", url + f"/v1/context/{conversation}") for _ in range(50)]
            rebuild = []
            for _ in range(20):
                if redis_url:
                    import redis

                    with redis.Redis.from_url(redis_url) as r:
                        r.delete(*r.keys(f"{prefix}conv:*:{conversation}"), f"{prefix}todo:list:{conversation}")
                    rebuild.append(_timed(client, "GET", url + f"/v1/context/{conversation}"))
        lines += [
            _row("POST /v1/chat/completions (stateless)", plain),
            _row("POST /v1/chat, new conversation each time", new),
            _row(f"POST /v1/chat, one conversation, turns 1..{turns}", long),
            _row(f"GET /v1/context (hot, {2 * turns} messages)", hot),
        ]
        if rebuild:
            lines.append(_row(f"GET /v1/context after a Redis flush ({2 * turns} msgs)", rebuild))
    finally:
        stop_process(process)
        if redis_url:
            import redis

            with redis.Redis.from_url(redis_url) as r:
                keys = r.keys(prefix + "*")
                if keys:
                    r.delete(*keys)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL ('' to skip)")
    args = parser.parse_args()
    nginx = Nginx(None).start()
    try:
        for redis_url in [None, *([args.redis] if args.redis else [])]:
            print("\n".join(measure(nginx, args.turns, redis_url)))
    finally:
        nginx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
