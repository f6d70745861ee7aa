"""Cross-check through HTTP: two providers' fake upstreams, agreeing, disagreeing and judged."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import base_config
from tests.fakes import FakeUpstream, ServerThread

Start = Callable[[dict[str, Any]], ServerThread]
ADMIN = "cross-check-admin"
ASK = [{"role": "user", "content": "What is the answer to everything?"}]  # chat/L0; quality high -> L1


def start(
    start_gateway: Start, upstream: FakeUpstream, anthropic_upstream: FakeUpstream, tmp_path: Path, **routing: Any
) -> ServerThread:
    raw = base_config(
        upstream.url, anthropic_upstream.url, tmp_path, server={"data_dir": str(tmp_path), "admin_token": ADMIN}
    )
    raw["routing"] = {**raw["routing"], "cross_check": True, **routing}
    return start_gateway(raw)


def ask(gateway: ServerThread, **headers: str) -> httpx.Response:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "auto", "messages": ASK},
        headers={"x-gateway-quality": "high", **headers},
        timeout=20,
    )
    assert response.status_code == 200, response.text
    return response


def usage_rows(gateway: ServerThread, expected: int) -> list[list[Any]]:
    deadline = time.time() + 20
    while True:
        found = httpx.post(
            gateway.url + "/v1/admin/sql",
            headers={"authorization": f"Bearer {ADMIN}"},
            timeout=30,
            json={"sql": "SELECT routed_model, cross_check, cost_usd FROM usage ORDER BY routed_model"},
        )
        assert found.status_code == 200, found.text
        rows: list[list[Any]] = found.json()["rows"]
        if len(rows) >= expected or time.time() > deadline:
            return rows
        time.sleep(0.1)


def test_agreeing_answers(
    start_gateway: Start, upstream: FakeUpstream, anthropic_upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start(start_gateway, upstream, anthropic_upstream, tmp_path)
    upstream.script.append({"text": "The answer is forty two"})
    anthropic_upstream.script.append({"text": "The answer is forty two."})
    response = ask(gateway)
    assert response.headers["x-gateway-cross-check"] == "agreed"
    assert response.json()["model"] == "cheap-mini"
    assert [r["body"]["model"] for r in anthropic_upstream.requests] == ["claude-mid"]  # the other provider
    rows = usage_rows(gateway, 2)
    assert [(r[0], r[1].split(":")[0]) for r in rows] == [("cheap-mini", "agreed"), ("claude-mid", "side")]
    assert all(r[2] > 0 for r in rows)  # both calls costed


def test_disagreeing_answers_without_a_judge(
    start_gateway: Start, upstream: FakeUpstream, anthropic_upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start(start_gateway, upstream, anthropic_upstream, tmp_path)
    upstream.script.append({"text": "The answer is forty two"})
    anthropic_upstream.script.append({"text": "Nobody knows; it depends on the question"})
    response = ask(gateway)
    assert response.headers["x-gateway-cross-check"] == "disagreed"
    assert response.json()["choices"][0]["message"]["content"] == "The answer is forty two"


def test_a_judge_picks_the_better_answer(
    start_gateway: Start, upstream: FakeUpstream, anthropic_upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start(start_gateway, upstream, anthropic_upstream, tmp_path, cross_check_judge="free-small")
    upstream.script.extend([{"text": "The answer is forty two"}, {"text": "B"}])  # the answer, then the judge
    anthropic_upstream.script.append({"text": "Nobody knows; it depends on the question"})
    response = ask(gateway)
    assert response.headers["x-gateway-cross-check"] == "judged"
    assert response.json()["model"] == "claude-mid"
    assert response.json()["choices"][0]["message"]["content"] == "Nobody knows; it depends on the question"
    judge = upstream.requests[-1]["body"]
    assert judge["model"] == "free-small" and "Answer A" in judge["messages"][-1]["content"]
    rows = usage_rows(gateway, 3)
    assert sorted(r[0] for r in rows) == ["cheap-mini", "claude-mid", "free-small"]


def test_no_cross_check_without_quality_high(
    start_gateway: Start, upstream: FakeUpstream, anthropic_upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start(start_gateway, upstream, anthropic_upstream, tmp_path)
    response = httpx.post(gateway.url + "/v1/chat/completions", json={"model": "auto", "messages": ASK}, timeout=20)
    assert "x-gateway-cross-check" not in response.headers
    assert anthropic_upstream.requests == []
