"""`python -m bench`: direct upstream vs the gateway, printed as a table.

Layout on a 2-core machine: the gateway is pinned to CPU 0; nginx, wrk and the
first-event client share CPU 1. Each measurement is repeated `--runs` times,
interleaving targets so that noise from other work on the machine hits them
alike; the table shows medians and the spread (max-min over median).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from . import peers
from .load import FirstEventResult, LoadResult, run_wrk
from .load import first_event as run_first_event
from .procs import cpu_seconds, peak_rss_mib, rss_mib
from .targets import FEATURES, Target, direct, gateway
from .upstream import Nginx

TARGETS = {
    "req/s @16, non-streaming": (">=", 3000.0),
    "one-core capacity from CPU us/req @16": (">=", 3000.0),
    "added p50 @1 (ms)": ("<=", 0.3),
    "added p99 @1 (ms)": ("<=", 1.0),
    "first SSE event added p50 (ms)": ("<=", 0.5),
    "streamed responses/s @16": (">=", 1500.0),
    "peak RSS (MiB)": ("<=", 100.0),
}


@dataclass
class Samples:
    """All runs of one measurement."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        if len(self.values) < 2 or not self.median:
            return 0.0
        return (max(self.values) - min(self.values)) / abs(self.median)


@dataclass
class TargetFigures:
    rps: dict[int, Samples] = field(default_factory=dict)
    p50: dict[int, Samples] = field(default_factory=dict)
    p99: dict[int, Samples] = field(default_factory=dict)
    sse_rps: dict[int, Samples] = field(default_factory=dict)
    cpu_us: dict[int, Samples] = field(default_factory=dict)  # gateway CPU per non-streaming request
    sse_cpu_us: dict[int, Samples] = field(default_factory=dict)
    first_p50: Samples = field(default_factory=Samples)
    first_p99: Samples = field(default_factory=Samples)
    errors: int = 0
    peak_rss: float | None = None


def _load(target: Target, sse: bool, conns: int, args: argparse.Namespace) -> tuple[LoadResult, float | None]:
    """One wrk run, and the target's CPU microseconds per request during it (None for nginx)."""
    before = cpu_seconds(target.pid) if target.pid else None
    result = run_wrk(target.sse if sse else target.json, conns, args.duration, args.load_cpu)
    after = cpu_seconds(target.pid) if target.pid else None
    if before is None or after is None or not result.requests:
        return result, None
    return result, (after - before) * 1e6 / result.requests


def _record(figures: TargetFigures, conns: int, measured: tuple[LoadResult, float | None], sse: bool) -> None:
    result, cpu_us = measured
    figures.errors += result.errors
    if sse:
        figures.sse_rps.setdefault(conns, Samples()).add(result.rps)
        if cpu_us is not None:
            figures.sse_cpu_us.setdefault(conns, Samples()).add(cpu_us)
        return
    if cpu_us is not None:
        figures.cpu_us.setdefault(conns, Samples()).add(cpu_us)
    figures.rps.setdefault(conns, Samples()).add(result.rps)
    figures.p50.setdefault(conns, Samples()).add(result.p50_ms)
    figures.p99.setdefault(conns, Samples()).add(result.p99_ms)


def _record_first(figures: TargetFigures, result: FirstEventResult) -> None:
    figures.errors += result.errors
    figures.first_p50.add(result.first_p50_ms)
    figures.first_p99.add(result.first_p99_ms)


def measure(
    targets: Sequence[Target], args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, TargetFigures]:
    figures = {t.name: TargetFigures() for t in targets}
    for target in targets:  # warm-up: connection pools, imports, caches
        run_wrk(target.json, 4, 1, args.load_cpu)
        run_wrk(target.sse, 4, 1, args.load_cpu)
    for run in range(args.runs):
        say(f"run {run + 1}/{args.runs}")
        for conns in args.connections:
            for target in targets:
                _record(figures[target.name], conns, _load(target, False, conns, args), False)
                if not args.no_stream:
                    _record(figures[target.name], conns, _load(target, True, conns, args), True)
        if not args.no_stream:
            for target in targets:
                _record_first(figures[target.name], run_first_event(target.sse, args.first_events))
    for target in targets:
        if target.pid is not None:
            figures[target.name].peak_rss = peak_rss_mib(target.pid)
    return figures


# -- printing -------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {load[0]:.2f} at start"
    )


def table(figures: dict[str, TargetFigures], args: argparse.Namespace) -> str:
    base = figures["direct"]
    rows = [
        "| target | conns | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | CPU us/req | "
        "streamed resp/s | CPU us/stream | spread |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, fig in figures.items():
        for conns in args.connections:
            rps, p50, p99 = fig.rps.get(conns), fig.p50.get(conns), fig.p99.get(conns)
            if rps is None or p50 is None or p99 is None:
                continue
            sse = fig.sse_rps.get(conns)
            added50 = None if name == "direct" else p50.median - base.p50[conns].median
            added99 = None if name == "direct" else p99.median - base.p99[conns].median
            spread = max(rps.spread, sse.spread if sse else 0.0)
            cpu, sse_cpu = fig.cpu_us.get(conns), fig.sse_cpu_us.get(conns)
            rows.append(
                f"| {name} | {conns} | {_fmt(rps.median, 0)} | {_fmt(p50.median, 3)} | {_fmt(p99.median, 3)} | "
                f"{_fmt(added50, 3)} | {_fmt(added99, 3)} | {_fmt(cpu.median if cpu else None, 0)} | "
                f"{_fmt(sse.median if sse else None, 0)} | {_fmt(sse_cpu.median if sse_cpu else None, 0)} | {spread:.0%} |"
            )
    lines = ["\n".join(rows)]
    if not args.no_stream:
        stream_rows = [
            "| target | first event p50 ms | first event p99 ms | added p50 ms | peak RSS MiB | errors |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, fig in figures.items():
            added = None if name == "direct" else fig.first_p50.median - base.first_p50.median
            stream_rows.append(
                f"| {name} | {_fmt(fig.first_p50.median, 3)} | {_fmt(fig.first_p99.median, 3)} | {_fmt(added, 3)} | "
                f"{_fmt(fig.peak_rss, 1)} | {fig.errors} |"
            )
        lines.append("\n".join(stream_rows))
    return "\n\n".join(lines)


def verdicts(figures: dict[str, TargetFigures], args: argparse.Namespace) -> str:
    gw, base = figures.get("gateway"), figures["direct"]
    if gw is None:
        return ""
    found: dict[str, float | None] = {
        "req/s @16, non-streaming": gw.rps[16].median if 16 in gw.rps else None,
        "added p50 @1 (ms)": gw.p50[1].median - base.p50[1].median if 1 in gw.p50 else None,
        "added p99 @1 (ms)": gw.p99[1].median - base.p99[1].median if 1 in gw.p99 else None,
        "first SSE event added p50 (ms)": None if args.no_stream else gw.first_p50.median - base.first_p50.median,
        "streamed responses/s @16": gw.sse_rps[16].median if 16 in gw.sse_rps else None,
        "peak RSS (MiB)": gw.peak_rss,
    }
    rows = ["| issue 11 target | wanted | measured | |", "|---|---:|---:|---|"]
    cpu = gw.cpu_us.get(16)
    if cpu is not None and cpu.median:
        found["one-core capacity from CPU us/req @16"] = 1e6 / cpu.median
    for name, (op, wanted) in TARGETS.items():
        value = found.get(name)
        ok = None if value is None else (value >= wanted if op == ">=" else value <= wanted)
        rows.append(
            f"| {name} | {op} {wanted:g} | {_fmt(value, 3 if wanted < 10 else 0)} | "
            f"{'-' if ok is None else ('met' if ok else 'NOT met')} |"
        )
    return "\n".join(rows)


def feature_costs(figures: dict[str, TargetFigures], args: argparse.Namespace) -> str:
    """Each feature's price: gateway CPU per request at 16 connections, against the plain gateway."""
    plain = figures.get("gateway")
    if plain is None or 16 not in plain.cpu_us:
        return ""
    rows = [
        "| gateway with | req/s @16 | CPU us/request @16 | extra CPU us/request | added p50 @1 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    base_us = plain.cpu_us[16].median
    for name, fig in figures.items():
        if not name.startswith("gateway") or 16 not in fig.cpu_us:
            continue
        us = fig.cpu_us[16].median
        p50 = fig.p50[1].median - figures["direct"].p50[1].median if 1 in fig.p50 else None
        label = name.split("+", 1)[1] if "+" in name else "plain"
        rows.append(
            f"| {label} | {_fmt(fig.rps[16].median, 0)} | {_fmt(us, 0)} | {_fmt(us - base_us, 0)} | {_fmt(p50, 3)} |"
        )
    return "\n".join(rows)


# -- soak -------------------------------------------------------------------------


def soak(target: Target, args: argparse.Namespace, say: Callable[[str], None]) -> str:
    """Alternate JSON and SSE load at 16 connections for `--soak` seconds; sample RSS."""
    assert target.pid is not None
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    total = 0
    step = 0
    while time.monotonic() - started < args.soak:
        request = target.json if step % 2 == 0 else target.sse
        result = run_wrk(request, 16, min(10.0, max(1.0, args.soak / 10)), args.load_cpu)
        total += result.requests
        rss = rss_mib(target.pid)
        if rss is not None:
            samples.append((time.monotonic() - started, rss))
            say(f"soak {samples[-1][0]:.0f}s: RSS {rss:.1f} MiB, {total:,} requests")
        step += 1
    if not samples:
        return "soak: no samples"
    settled = samples[len(samples) // 5 :] or samples  # skip the first fifth: pools and caches filling
    lines = [
        f"soak: {total:,} requests in {samples[-1][0]:.0f}s; RSS first {samples[0][1]:.1f} MiB, "
        f"after warm-up {settled[0][1]:.1f} MiB, last {samples[-1][1]:.1f} MiB, "
        f"max {max(r for _, r in samples):.1f} MiB; growth after warm-up {settled[-1][1] - settled[0][1]:+.1f} MiB; "
        f"peak RSS {peak_rss_mib(target.pid) or 0:.1f} MiB"
    ]
    lines.append("RSS samples (s, MiB): " + ", ".join(f"{t:.0f}:{r:.1f}" for t, r in samples))
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 run of 1 s at 1 and 16 connections")
    parser.add_argument("--runs", type=int, default=3, help="repeats per measurement; medians are shown (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", default="1,16,64", help="comma list (default 1,16,64)")
    parser.add_argument(
        "--first-events",
        type=int,
        default=500,
        help="sequential streamed requests per first-event measurement (default 500)",
    )
    parser.add_argument(
        "--features",
        default="",
        help=f"extra gateways to run side by side, comma list of: {', '.join(n for n in FEATURES if n != 'plain')}"
        " or 'all'",
    )
    parser.add_argument(
        "--peers",
        default="",
        help="also run these peers (comma list of: litellm, portkey); installed on first use under --peers-dir",
    )
    parser.add_argument(
        "--peers-dir",
        default=str(Path.home() / ".cache" / "aigw-bench-peers"),
        help="where peers are installed (outside the repository)",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        help="after the table, load the gateway for this many seconds (600 for the 10-minute soak) and sample its RSS",
    )
    parser.add_argument("--no-stream", action="store_true", help="skip streaming measurements")
    parser.add_argument("--gateway-cpu", type=int, default=0, help="CPU the gateway (and peers) are pinned to")
    parser.add_argument("--load-cpu", type=int, default=1, help="CPU for nginx, wrk and the first-event client")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="Redis for features that need it")
    parser.add_argument("--json", help="also write all samples to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.duration, args.first_events = 1, 1.0, 100
        if args.connections == "1,16,64":
            args.connections = "1,16"
    args.connections = [int(c) for c in str(args.connections).split(",") if c.strip()]
    if (os.cpu_count() or 1) < 2:
        args.gateway_cpu = args.load_cpu = None
    names = [n.strip() for n in args.features.split(",") if n.strip()]
    if names == ["all"]:
        names = [n for n in FEATURES if n != "plain"]
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        parser.error(f"unknown feature(s) {', '.join(unknown)}; known: {', '.join(FEATURES)}")
    args.features = names
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def say(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    if args.load_cpu is not None:
        os.sched_setaffinity(0, {args.load_cpu})
    ctx = {"redis_url": args.redis_url, "redis_prefix": f"aigw-bench-{uuid.uuid4().hex[:8]}:"}
    say(machine())
    nginx = Nginx(args.load_cpu).start()
    targets: list[Target] = []
    try:
        targets.append(direct(nginx))
        for name in ["plain", *args.features]:
            targets.append(gateway(nginx, FEATURES[name], args.gateway_cpu, ctx))
        for name in args.peers:
            say(f"starting {name}")
            targets.append(peers.start(name, nginx, args.gateway_cpu, Path(args.peers_dir), say))
        say(
            f"targets: {', '.join(t.name for t in targets)}; {args.runs} run(s) of {args.duration:g}s at "
            f"{', '.join(map(str, args.connections))} connection(s)"
        )
        figures = measure(targets, args, say)
        print(f"\nMachine: {machine()}")
        print(
            f"Gateway pinned to CPU {args.gateway_cpu}; nginx, wrk and the first-event client on CPU {args.load_cpu}. "
            f"Medians of {args.runs} run(s) of {args.duration:g}s; spread = (max-min)/median of req/s.\n"
        )
        print(table(figures, args))
        print()
        print(verdicts(figures, args))
        costs = feature_costs(figures, args)
        if costs and len(args.features):
            print()
            print(costs)
        if args.json:
            Path(args.json).write_bytes(
                orjson.dumps(
                    {
                        name: {
                            "rps": {c: s.values for c, s in f.rps.items()},
                            "p50": {c: s.values for c, s in f.p50.items()},
                            "p99": {c: s.values for c, s in f.p99.items()},
                            "sse_rps": {c: s.values for c, s in f.sse_rps.items()},
                            "first_p50": f.first_p50.values,
                            "first_p99": f.first_p99.values,
                            "peak_rss": f.peak_rss,
                            "errors": f.errors,
                        }
                        for name, f in figures.items()
                    },
                    option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2,
                )
            )
        if args.soak:
            gw = next(t for t in targets if t.name == "gateway")
            say(f"soak for {args.soak:g}s")
            print()
            print(soak(gw, args, say))
        errors = sum(f.errors for f in figures.values())
        return 1 if errors else 0
    finally:
        for target in targets:
            target.stop()
        nginx.stop()
