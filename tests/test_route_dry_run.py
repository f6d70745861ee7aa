"""The routing decision without a model call: POST /v1/route dryRun and `aigw route`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.conftest import assert_error_shape, base_config
from tests.fakes import FakeUpstream, ServerThread

Start = Callable[[dict[str, Any]], ServerThread]
KEYS = {"task", "complexity", "tier", "model", "provider", "reasons", "candidates"}
TOOLS = [{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object", "properties": {}}}}]


def test_dry_run_takes_messages_with_tools_or_a_message(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(base_config(upstream.url, None, tmp_path))
    body = {
        "dryRun": True,
        "messages": [{"role": "user", "content": "The test tests/test_api.py fails. Fix it."}],
        "tools": TOOLS,
        "max_tokens": 500,
    }
    decision = httpx.post(gateway.url + "/v1/route", json=body).json()
    assert KEYS <= set(decision)
    assert (decision["task"], decision["tier"], decision["model"]) == ("code", "L1", "cheap-mini")
    assert decision["candidates"][0] == {
        "model": "cheap-mini",
        "provider": "fakeai",
        "tier": "L1",
        "price": {"input": 0.15, "output": 0.6},
        "circuit": "closed",
    }
    assert [step["tier"] for step in decision["escalation"]] == ["L2", "L3"]

    seed = httpx.post(gateway.url + "/v1/route", json={"dryRun": True, "message": "hi", "qualityLevel": "high"}).json()
    assert (seed["task"], seed["tier"]) == ("chat", "L1") and "quality:high" in seed["reasons"]
    assert upstream.requests == []  # no model was called

    for bad in (
        {"dryRun": True},
        {"dryRun": True, "messages": "hi"},
        {"dryRun": True, "message": "x", "qualityLevel": "max"},
    ):
        response = httpx.post(gateway.url + "/v1/route", json=bad)
        assert response.status_code == 400
        assert_error_shape(response.json())


def test_equal_candidates_take_turns(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    raw = base_config(upstream.url, None, tmp_path)
    raw["models"].append(
        {"id": "cheap-twin", "provider": "fakeai", "tier": "L1", "price": {"input": 0.15, "output": 0.60}}
    )
    gateway = start_gateway(raw)
    chosen = [
        httpx.post(gateway.url + "/v1/route", json={"dryRun": True, "message": "hi", "model": "L1"}).json()["model"]
        for _ in range(4)
    ]
    assert set(chosen) == {"cheap-mini", "cheap-twin"} and chosen[0] != chosen[1]


def test_aigw_route_prints_the_decision(upstream: FakeUpstream, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base_config(upstream.url, None, tmp_path)))
    command = [sys.executable, "-m", "proxy", "route", "--config", str(config), "--json"]
    done = subprocess.run(
        [*command, "Write a regex for a 5-digit zip code"], capture_output=True, text=True, timeout=60, check=True
    )
    decision = json.loads(done.stdout)
    assert KEYS <= set(decision) and (decision["task"], decision["tier"]) == ("code", "L0")

    body = {"messages": [{"role": "user", "content": "Audit our payment service for security vulnerabilities"}]}
    done = subprocess.run(
        [*command, "-"], input=json.dumps(body), capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout)["tier"] == "L3"

    human = subprocess.run(
        [sys.executable, "-m", "proxy", "route", "--config", str(config), "hello"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "tier L0: free-small" in human.stdout
