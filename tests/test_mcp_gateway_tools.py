"""chat, route_explain, usage_sql, budget_status and code_agent over /mcp, against fake upstreams."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import base_config
from tests.fakes import FakeUpstream
from tests.mcp_support import http_client, run, text

TOKEN = "aigw-admin-test-token-never-upstream"


@pytest.fixture
def url(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path) -> str:
    raw = base_config(upstream.url, None, tmp_path / "data", server={"admin_token": TOKEN})
    return str(start_gateway(raw).url)


async def call_all(url: str, calls: list[tuple[str, dict[str, Any]]], mode: str = "legacy") -> list[Any]:
    async with http_client(url, TOKEN, mode) as client:
        return [await client.call_tool(name, args) for name, args in calls]


def poll_usage(url: str, sql: str, want_rows: int) -> Any:
    deadline = time.time() + 15
    while True:
        (result,) = run(lambda: call_all(url, [("usage_sql", {"sql": sql})]))
        if result.is_error or len(result.structured_content["rows"]) >= want_rows or time.time() > deadline:
            return result
        time.sleep(0.1)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_chat_is_routed_costed_and_logged(url: str, upstream: FakeUpstream, mode: str) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("route_explain", {"prompt": "hi there"}),
        ("chat", {"prompt": "hi there"}),
        ("chat", {"prompt": "explain this", "model": "L1", "max_tokens": 50}),
        ("chat", {"prompt": "x", "model": "no-such-model"}),
    ]
    explained, first, second, unknown = run(lambda: call_all(url, calls, mode))
    assert explained.structured_content["model"] == "free-small" and explained.structured_content["tier"] == "L0"
    assert explained.structured_content["escalation_path"][0] == "L1:cheap-mini"
    assert explained.structured_content["auto_escalate"] is False
    assert first.structured_content["route"]["model"] == "free-small"
    assert first.structured_content["content"] == "echo from free-small: hi there"
    assert second.structured_content["route"]["model"] == "cheap-mini" and second.structured_content["cost_usd"] > 0
    assert unknown.is_error and "does not exist" in text(unknown)
    assert len(upstream.requests) == 2
    for request in upstream.requests:
        assert TOKEN not in str(request["headers"])  # the MCP client's token never goes upstream
        assert request["headers"]["authorization"] == "Bearer sk-fake-upstream"
    assert upstream.requests[1]["body"]["max_tokens"] == 50

    logged = poll_usage(url, "SELECT routed_model, endpoint FROM usage ORDER BY ts", 3)
    assert logged.structured_content["rows"] == [
        ["free-small", "mcp:chat"],
        ["cheap-mini", "mcp:chat"],
        [None, "mcp:chat"],
    ]
    (budget,) = run(lambda: call_all(url, [("budget_status", {})], mode))
    (project,) = budget.structured_content["projects"]
    assert project["project"] == "default" and project["requests_today"] == 3
    assert project["cost_today_usd"] == pytest.approx(second.structured_content["cost_usd"])
    (ledger,) = budget.structured_content["budgets"]
    assert ledger["scope"] == "project:default"
    daily = next(p for p in ledger["periods"] if p["period"] == "day")
    assert daily["spent_usd"] == pytest.approx(second.structured_content["cost_usd"]) and daily["reserved_usd"] == 0


USAGE_ESCAPES: list[tuple[str, str]] = [
    ("DELETE FROM usage", "only SELECT"),
    ("SELECT 1; DELETE FROM usage", "exactly one statement"),
    ("SELECT * FROM read_text('/etc/passwd')", "read_text is not allowed"),
    ("SELECT * FROM '/etc/passwd'", "the query failed"),
    ("SELECT getenv('HOME')", "getenv is not allowed"),
    ("COPY usage TO '/tmp/aigw-usage.csv'", "only SELECT"),
    ("INSTALL httpfs", "only SELECT"),
]


def test_usage_sql_is_read_only(url: str) -> None:
    calls = [("usage_sql", {"sql": sql}) for sql, _ in USAGE_ESCAPES]
    calls.append(("usage_sql", {"sql": "SELECT count(*) AS n FROM usage -- comment"}))
    calls.append(("usage_sql", {"sql": "WITH t AS (SELECT tier FROM usage) SELECT count(*) FROM t;"}))
    results = run(lambda: call_all(url, calls))
    for (sql, expected), result in zip(USAGE_ESCAPES, results, strict=False):
        assert result.is_error and expected in text(result), (sql, text(result))
    assert results[-2].structured_content == {"columns": ["n"], "rows": [[0]], "truncated": False}
    assert results[-1].structured_content["rows"] == [[0]]
    assert not Path("/tmp/aigw-usage.csv").exists()


def test_code_agent_keeps_a_todo_list_per_conversation(url: str, upstream: FakeUpstream) -> None:
    upstream.script.append(
        {
            "text": "## TODO\n- [x] write add\n- [ ] write tests\n\nsrc/add.js\n```js\nexport const add = (a, b) => a + b;\n```\nTests next."
        }
    )
    upstream.script.append(
        {
            "text": "## TODO\n- [x] write add\n- [x] write tests\n\n```js\ntest('add', () => expect(add(1, 2)).toBe(3));\n```"
        }
    )

    async def scenario() -> tuple[Any, Any]:
        async with http_client(url, TOKEN, "2026-07-28") as client:
            first = await client.call_tool("code_agent", {"task": "write an add function in JS", "quality": "low"})
            second = await client.call_tool(
                "code_agent", {"task": "now the tests", "conversation_id": first.structured_content["conversation_id"]}
            )
            return first, second

    first, second = run(scenario)
    assert not first.is_error, text(first)
    answer = first.structured_content
    assert answer["code"] == "export const add = (a, b) => a + b;"
    assert answer["todos"] == [{"text": "write add", "status": "done"}, {"text": "write tests", "status": "pending"}]
    assert answer["model"] and answer["tier"] and answer["routing_summary"]
    assert answer["input_tokens"] > 0 and answer["output_tokens"] > 0
    assert second.structured_content["conversation_id"] == answer["conversation_id"]
    assert [t["status"] for t in second.structured_content["todos"]] == ["done", "done"]
    # The second call carried the conversation (and its TODO list) to the model.
    assert "write tests" in str(upstream.requests[-1]["body"]["messages"])
