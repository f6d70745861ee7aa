"""Classifier latency on a ~4k-token conversation: p50, p99 and max per call.

    python -m bench.routing.latency [--runs 5000]

Two shapes: a multi-turn coding conversation whose turns add up to about 4,000
tokens, and a single user turn of the same size (a pasted log with the ask at
the end), the worst case for the keyword patterns.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from proxy.routing import classify
from proxy.tokencount import estimate_messages_tokens

_CODE = """```python
def handle(request):
    user = db.get_user(request.user_id)
    if not user:
        raise NotFound("user")
    orders = [o for o in db.orders(user.id) if o.status != "cancelled"]
    return {"user": user.name, "orders": len(orders)}
```
"""
_LOG = "2024-05-01T10:00:03 ERROR timeout calling inventory after 2000ms request_id=8f2c attempt=2 pool=47/50\n"


def conversation() -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a senior engineer helping with a large codebase."}
    ]
    turn = 0
    while estimate_messages_tokens(messages) < 3800:
        messages.append(
            {
                "role": "user",
                "content": f"Step {turn}: here is the handler again, refactor it and explain.\n{_CODE * 3}",
            }
        )
        messages.append(
            {"role": "assistant", "content": "Here is the refactored version with the query moved out.\n" + _CODE * 3}
        )
        turn += 1
    messages.append({"role": "user", "content": "Now make it async and add tests for the not-found case."})
    return {"model": "auto", "messages": messages}


def single_turn() -> dict[str, Any]:
    body = _LOG * 170 + "\nWhy do these timeouts cascade across checkout and payments? Find the root cause."
    return {"model": "auto", "messages": [{"role": "user", "content": body}]}


def measure(body: dict[str, Any], runs: int, clock: Callable[[], int]) -> tuple[float, float, float]:
    for _ in range(200):
        classify(body)
    samples = []
    for _ in range(runs):
        start = clock()
        classify(body)
        samples.append(clock() - start)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000, samples[-1] / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing.latency")
    parser.add_argument("--runs", type=int, default=5000)
    args = parser.parse_args(argv)
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; wall time includes waiting for a CPU, thread CPU time does not"
    )
    for name, body in (("multi-turn conversation", conversation()), ("single pasted turn", single_turn())):
        tokens = estimate_messages_tokens(body["messages"])
        for clock_name, clock in (("wall", time.perf_counter_ns), ("cpu", time.thread_time_ns)):
            p50, p99, worst = measure(body, args.runs, clock)
            print(
                f"{name:24} {tokens:5d} tokens  {clock_name:4}  p50 {p50:7.1f} us  p99 {p99:7.1f} us  "
                f"max {worst:8.1f} us  ({args.runs} runs)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
