"""`aigw create-project`, escalation prompts, `aigw models` and `aigw doctor` as a user runs them."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest

from tests.cli_helpers import aigw, cli_env
from tests.conftest import REDIS_URL, base_config
from tests.fakes import FakeUpstream, ServerThread, free_port

PLAN = """## TODO
- [ ] `README.md`: what the app does
- [ ] `todo/app.py`: the command line
- [ ] `todo/store.py`: saving items
- [ ] `tests/test_store.py`: tests for the store
"""


def file_answer(name: str) -> dict[str, str]:
    return {"text": f"## TODO\n- [x] {name}\n\n```python\n# {name}\nprint('{name}')\n```\n"}


@pytest.fixture
def priced(start_gateway: Callable[[dict[str, Any]], ServerThread], upstream: FakeUpstream, tmp_path: Path) -> str:
    """Every model costs $1000 per million tokens, so a call costs cents and a budget runs out quickly."""
    raw = base_config(upstream.url, None, tmp_path / "data")
    for model in raw["models"]:
        model["price"] = {"input": 1000, "output": 1000}
    return start_gateway(raw).url


def test_create_project_stops_cleanly_at_its_budget(priced: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.script.extend([{"text": PLAN}] + [file_answer(n) for n in ("README.md", "app", "store", "test")])
    target = tmp_path / "todo-app"
    done = aigw(
        priced,
        "create-project",
        "Todo app in Python",
        "--budget",
        "0.5",
        "--max-layer",
        "L3",
        "--tests",
        "--no-debug",
        "--dir",
        str(target),
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 4, done.stderr
    result = json.loads(done.stdout)
    assert result["planned"] == ["README.md", "todo/app.py", "todo/store.py", "tests/test_store.py"]
    assert 0 < len(result["written"]) < 4 and result["complete"] is False
    assert result["cost"] <= 0.5 and "budget" in result["stopped"]
    assert [s["path"] for s in result["steps"]] == ["(plan)", *result["written"]]
    assert abs(sum(s["cost"] for s in result["steps"]) - result["cost"]) < 1e-6
    for path in result["written"]:
        assert (target / path).read_text().startswith("# ")
    assert not (target / "tests" / "test_store.py").exists()
    assert "budget" in done.stderr and f"{len(result['written'])} of 4 files written" in done.stderr
    calls = [r for r in upstream.requests if r["path"].endswith("/chat/completions")]
    assert len(calls) == 1 + len(result["written"])  # nothing was asked once the budget could not pay for it
    assert "Include unit tests" in calls[0]["body"]["messages"][-1]["content"]


def test_create_project_asks_its_questions(priced: str, upstream: FakeUpstream, tmp_path: Path) -> None:
    upstream.script.extend([{"text": PLAN}] + [file_answer(n) for n in ("README.md", "app", "store", "test")])
    done = aigw(priced, "create-project", "Todo app", "--json", cwd=tmp_path, stdin="100\nL3\nn\ny\n")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["complete"] and result["budget"] == 100 and len(result["written"]) == 4
    assert "Budget (USD)" in done.stderr and "Max layer" in done.stderr
    assert (tmp_path / "todo-app" / "todo" / "store.py").exists()
    plan_prompt = [r for r in upstream.requests if r["path"].endswith("/chat/completions")][0]["body"]["messages"][-1]
    assert "Do not write tests." in plan_prompt["content"] and "debug logging" in plan_prompt["content"]

    bad = aigw(priced, "create-project", "x", "--budget", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "budget" in bad.stderr


def test_escalation_is_shown_and_approved(
    start_gateway: Callable[[dict[str, Any]], ServerThread], upstream: FakeUpstream, tmp_path: Path
) -> None:
    raw = base_config(upstream.url, None, tmp_path / "data")
    raw["routing"] = {**raw["routing"], "retry": {"attempts": 1, "backoff_seconds": 0.01}}
    url = start_gateway(raw).url

    # Refused: the error is shown, nothing paid is called.
    upstream.script.extend([{"empty": "1"}])
    refused = aigw(url, "chat", "--json", "--approve-escalation", "no", "hi there", cwd=tmp_path)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "escalation_required"
    assert re.search(r"wants to escalate to L[123]: empty \(estimated cost \$[0-9.]+\)", refused.stderr)
    assert "refused" in refused.stderr
    first_model = upstream.requests[-1]["body"]["model"]

    # Asked on the terminal and approved with "y": the same request goes again with the token.
    # Streamed (a terminal), so the failure is one the gateway sees before the first byte: a 503.
    upstream.script.extend([{"status": "503"}, {"text": "the paid answer"}])
    child = pexpect.spawn(
        sys.executable,
        ["-m", "proxy", "chat", "hi there"],
        cwd=str(tmp_path),
        env=cli_env(url),
        encoding="utf-8",
        timeout=30,
    )
    child.expect(r"escalate to L[123]: upstream_503 \(estimated cost \$[0-9.]+\)")
    child.expect_exact("Approve this escalation? [y/N]")
    child.sendline("y")
    child.expect_exact("the paid answer")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    called = [r["body"]["model"] for r in upstream.requests]
    assert called[-2] == first_model and called[-1] != first_model  # approved once, one tier up


def test_models_table_and_json(priced: str, tmp_path: Path) -> None:
    table = aigw(priced, "models", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "tier", "provider"]
    assert any(line.split()[:3] == ["premium-max", "L3", "fakeai"] for line in lines)
    listed = json.loads(aigw(priced, "models", "--json", cwd=tmp_path).stdout)
    assert {"free-small", "cheap-mini", "premium-max", "auto"} <= {m["id"] for m in listed}


def test_doctor_says_what_is_wrong_and_how_to_fix_it(priced: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"redis_url: redis://127.0.0.1:{free_port()}/0\nserver:\n  data_dir: {tmp_path / 'd'}\n")
    bad = aigw(f"http://127.0.0.1:{free_port()}", "doctor", "--config", str(config), cwd=tmp_path)
    assert bad.returncode == 1
    assert "redis: cannot reach" in bad.stdout and "fix: start Redis" in bad.stdout
    assert "gateway: cannot reach" in bad.stdout and "fix: start it with `aigw serve`" in bad.stdout
    assert "fix: set OPENAI_API_KEY" in bad.stdout

    config.write_text(f"redis_url: {REDIS_URL}\nserver:\n  data_dir: {tmp_path / 'd'}\n")
    good = aigw(priced, "doctor", "--config", str(config), "--json", cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    checks = {c["name"]: c for c in json.loads(good.stdout)["checks"]}
    assert checks["config"]["status"] == "ok" and checks["redis"]["status"] == "ok"
    assert checks["duckdb"]["status"] == "ok" and checks["gateway"]["detail"].startswith(priced)

    config.write_text("routing:\n  default_tier: L9\n")
    broken = aigw(priced, "doctor", "--config", str(config), cwd=tmp_path)
    assert broken.returncode == 1 and "routing.default_tier" in broken.stdout


# -- the max layer, enforced by the gateway; escalations asked about ------------------------------

ADMIN = "cli-project-admin"
RISKY = "Payment service for production with a security audit"  # the code agent routes this to L3


def layered(
    start_gateway: Callable[[dict[str, Any]], ServerThread], upstream: FakeUpstream, tmp_path: Path, **routing: Any
) -> str:
    raw = base_config(
        upstream.url, None, tmp_path / "data", server={"data_dir": str(tmp_path / "data"), "admin_token": ADMIN}
    )
    raw["routing"] = {**raw["routing"], "retry": {"attempts": 1, "backoff_seconds": 0.01}, **routing}
    return start_gateway(raw).url


def usage_rows(url: str, expected: int) -> list[dict[str, Any]]:
    """Every row of the usage log, once at least `expected` are written."""
    deadline = time.time() + 20
    while True:
        found = httpx.post(
            url + "/v1/admin/sql",
            headers={"authorization": f"Bearer {ADMIN}"},
            timeout=30,
            json={"sql": "SELECT tier, routed_model, route_reasons, endpoint, error_type, cost_usd FROM usage"},
        )
        assert found.status_code == 200, found.text
        rows = [dict(zip(found.json()["columns"], row, strict=True)) for row in found.json()["rows"]]
        if len(rows) >= expected or time.time() > deadline:
            return rows
        time.sleep(0.1)


def chat_models(upstream: FakeUpstream) -> list[str]:
    return [r["body"]["model"] for r in upstream.requests if r["path"].endswith("/chat/completions")]


def test_create_project_max_layer_is_enforced_by_the_gateway(
    start_gateway: Callable[[dict[str, Any]], ServerThread], upstream: FakeUpstream, tmp_path: Path
) -> None:
    url = layered(start_gateway, upstream, tmp_path, auto_escalate=True)
    dry = httpx.post(url + "/v1/route", json={"dryRun": True, "model": "code", "message": RISKY}).json()
    assert dry["tier"] == "L3"  # without a ceiling the code agent would use premium-max
    # One answer is empty: with auto-escalation on, only the ceiling keeps it from going up.
    upstream.script.extend(
        [{"text": PLAN}, file_answer("README.md"), {"empty": "1"}, file_answer("store"), file_answer("test")]
    )
    done = aigw(
        url,
        "create-project",
        RISKY,
        "--budget",
        "5",
        "--max-layer",
        "L1",
        "--tests",
        "--no-debug",
        "--dir",
        str(tmp_path / "pay"),
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["complete"] and result["maxLayer"] == "L1" and len(result["written"]) == 4
    assert {s["tier"] for s in result["steps"]} == {"L1"}
    assert set(chat_models(upstream)) == {"cheap-mini"} and len(chat_models(upstream)) == 5

    rows = usage_rows(url, 5)
    agent_rows = [r for r in rows if r["endpoint"] == "/v1/code-agent"]
    assert len(agent_rows) == 5, [
        (r["error_type"], r["cost_usd"]) for r in agent_rows
    ]  # the empty answer kept (nothing above to ask) is costed once
    assert all(r["tier"] in ("L0", "L1") for r in rows), rows  # no row above the max layer, side calls included
    assert all(
        "ceiling:request_L1" in r["route_reasons"] and "tier:capped_L3->L1" in r["route_reasons"] for r in agent_rows
    )


def test_create_project_escalation_asked_approved_and_declined(
    start_gateway: Callable[[dict[str, Any]], ServerThread], upstream: FakeUpstream, tmp_path: Path
) -> None:
    url = layered(start_gateway, upstream, tmp_path, auto_escalate=False)
    common = ["Todo app in Python", "--budget", "5", "--max-layer", "L2", "--tests", "--no-debug"]

    # Declined on the terminal's question: the run stops cleanly, nothing paid above L1 is called.
    upstream.script.append({"empty": "1"})
    declined = aigw(
        url, "create-project", *common, "--dir", str(tmp_path / "declined"), "--json", cwd=tmp_path, stdin="n\n"
    )
    assert declined.returncode == 4, declined.stderr
    assert re.search(r"wants to escalate to L2: empty \(estimated cost \$[0-9.]+\)", declined.stderr)
    assert "Approve this escalation? [y/N]" in declined.stderr
    result = json.loads(declined.stdout)
    assert result["complete"] is False and result["written"] == []
    assert "escalation to L2" in result["stopped"] and "not approved" in result["stopped"]
    assert chat_models(upstream) == ["cheap-mini"]

    # Refused by flag, without asking.
    upstream.script.append({"empty": "1"})
    refused = aigw(
        url, "create-project", *common, "--dir", str(tmp_path / "refused"), "--approve-escalation", "no", cwd=tmp_path
    )
    assert refused.returncode == 4 and "Approve this escalation" not in refused.stderr
    assert "--approve-escalation no: refused" in refused.stderr and "not approved" in refused.stderr

    # Approved ("y"): the plan is asked again with the token and answered one tier up; the files at L1.
    upstream.requests.clear()
    upstream.script.extend(
        [{"empty": "1"}, {"text": PLAN}] + [file_answer(n) for n in ("README.md", "app", "store", "test")]
    )
    approved = aigw(
        url, "create-project", *common, "--dir", str(tmp_path / "approved"), "--json", cwd=tmp_path, stdin="y\n"
    )
    assert approved.returncode == 0, approved.stderr
    result = json.loads(approved.stdout)
    assert result["complete"] and [s["tier"] for s in result["steps"]] == ["L2", "L1", "L1", "L1", "L1"]
    assert chat_models(upstream) == ["cheap-mini", "mid-large"] + ["cheap-mini"] * 4
    assert (tmp_path / "approved" / "todo" / "store.py").exists()

    # With --max-layer L1 the gateway proposes nothing above it, even when escalations are approved.
    upstream.requests.clear()
    upstream.script.append({"empty": "1"})
    capped = aigw(
        url,
        "create-project",
        "Todo app in Python",
        "--budget",
        "5",
        "--max-layer",
        "L1",
        "--tests",
        "--no-debug",
        "--dir",
        str(tmp_path / "capped"),
        "--approve-escalation",
        "yes",
        cwd=tmp_path,
    )
    assert capped.returncode == 1 and "escalate" not in capped.stderr and "plan names no files" in capped.stderr
    assert chat_models(upstream) == ["cheap-mini"]

    rows = usage_rows(url, 9)
    assert [r["routed_model"] for r in rows].count("mid-large") == 1 and all(r["tier"] != "L3" for r in rows)
