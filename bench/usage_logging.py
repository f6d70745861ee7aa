"""Usage logging's cost on the request path: the same gateway with the usage log on and off, in one run.

    python bench/usage_logging.py                  # 6 rounds x 300 requests per side
    python bench/usage_logging.py --rounds 10 --requests 500 --concurrency 16

Two `aigw serve` processes answer from the built-in demo model (no network
upstream, so the gateway's own work is all that is measured), one with
`usage.enabled: true` and one with `false`, cache off on both. Rounds
alternate between them so that noise from other work on the machine hits both
alike. Each round sends sequential requests (latency) and then a concurrent
burst (throughput). At the end the "on" side's DuckDB file is opened to check
that every request became a row, so the "on" figures are real logging.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "demo", "messages": [{"role": "user", "content": "benchmark me"}]}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(workdir: Path, usage: bool) -> tuple[subprocess.Popen[bytes], str]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "server": {"data_dir": str(workdir / "data"), "admin_token": "bench", "log_level": "warning"},
        "providers": {"demo": {"kind": "demo"}},
        "models": [{"id": "demo", "provider": "demo", "tier": "L0"}],
        "cache": {"enabled": False},
        "usage": {"enabled": usage},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")} | {"PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy", "serve", "--port", str(port), "--config", str(workdir / "config.yaml")],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the gateway did not start")


def sequential(client: httpx.Client, url: str, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        began = time.perf_counter()
        response = client.post(url + "/v1/chat/completions", json=BODY)
        latencies.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
    return latencies


async def burst(url: str, count: int, concurrency: int) -> float:
    """Requests per second with `concurrency` requests in flight."""
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        remaining = count

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                (await client.post(url + "/v1/chat/completions", json=BODY)).raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - began)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per round and side")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aigw-bench-") as tmp:
        sides = {"usage on": start(Path(tmp) / "on", True), "usage off": start(Path(tmp) / "off", False)}
        latencies: dict[str, list[float]] = {name: [] for name in sides}
        throughput: dict[str, list[float]] = {name: [] for name in sides}
        try:
            with httpx.Client(timeout=30) as client:
                for _, url in sides.values():
                    sequential(client, url, 50)  # warm up
                for round_index in range(args.rounds):
                    order = list(sides.items()) if round_index % 2 == 0 else list(reversed(sides.items()))
                    for name, (_, url) in order:
                        latencies[name] += sequential(client, url, args.requests)
                        throughput[name].append(asyncio.run(burst(url, args.requests, args.concurrency)))
        finally:
            for process, _ in sides.values():
                process.send_signal(signal.SIGTERM)
            for process, _ in sides.values():
                process.wait(timeout=60)
        with duckdb.connect(str(Path(tmp) / "on" / "data" / "usage.duckdb"), read_only=True) as db:
            row = db.execute("SELECT count(*) FROM usage").fetchone()
        rows = int(row[0]) if row else 0
    sent = 50 + args.rounds * args.requests * 2

    print(
        f"usage logging on vs off: {args.rounds} rounds, {args.requests} sequential + {args.requests} at "
        f"concurrency {args.concurrency} per round and side, demo model, cache off"
    )
    print(f"{'':12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'req/s @' + str(args.concurrency):>12}")
    for name in sides:
        values = latencies[name]
        print(
            f"{name:12}{quantile(values, 0.5):9.3f}{quantile(values, 0.95):9.3f}{quantile(values, 0.99):9.3f}"
            f"{statistics.fmean(values):9.3f}{statistics.median(throughput[name]):12.0f}"
        )
    on, off = latencies["usage on"], latencies["usage off"]
    print(
        f"{'difference':12}{quantile(on, 0.5) - quantile(off, 0.5):+9.3f}{quantile(on, 0.95) - quantile(off, 0.95):+9.3f}"
        f"{quantile(on, 0.99) - quantile(off, 0.99):+9.3f}{statistics.fmean(on) - statistics.fmean(off):+9.3f}"
        f"{statistics.median(throughput['usage on']) - statistics.median(throughput['usage off']):+12.0f}"
    )
    print(f"rows in the 'on' side's usage log: {rows} of {sent} requests sent")
    return 0 if rows == sent else 1


if __name__ == "__main__":
    sys.exit(main())
