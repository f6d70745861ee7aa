"""Escalation approval over MCP: the user approves through elicitation, both protocol eras.

The free tier answers empty, so routing wants the paid L1 model; with
auto-escalation off the gateway needs an approval. An elicitation-capable
client is asked (accept -> the paid model answers; decline -> nothing is
spent); a client without elicitation gets the escalation_required details and
may repeat the call with the approval token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp_types import ElicitResult

from tests.conftest import base_config
from tests.fakes import FakeUpstream
from tests.mcp_support import ERAS, http_client, run, text

TOKEN = "aigw-admin-test-token"


@pytest.fixture
def url(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path) -> str:
    raw = base_config(upstream.url, None, tmp_path / "data")
    raw["server"]["admin_token"] = TOKEN
    upstream.script.extend([{"empty": ""}, {"text": "answer from the paid tier"}])
    return str(start_gateway(raw).url)


def answering(action: str, asked: list[str]) -> Any:
    async def elicit(context: Any, params: Any) -> ElicitResult:
        asked.append(params.message)
        return ElicitResult(action=action, content={"approve": True} if action == "accept" else None)  # type: ignore[arg-type]
    return elicit


@pytest.mark.parametrize("mode", ERAS)
def test_user_approves_through_elicitation(url: str, upstream: FakeUpstream, mode: str) -> None:
    asked: list[str] = []

    async def scenario() -> Any:
        async with http_client(url, TOKEN, mode, elicitation_callback=answering("accept", asked)) as client:
            return await client.call_tool("chat", {"prompt": "hello there"})

    result = run(scenario)
    assert not result.is_error, text(result)
    assert result.structured_content["content"] == "answer from the paid tier"
    assert result.structured_content["route"]["model"] == "cheap-mini"
    (message,) = asked
    assert "cheap-mini" in message and "L1" in message
    assert [r["body"]["model"] for r in upstream.requests] == ["free-small", "cheap-mini"]


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("action", ["decline", "cancel"])
def test_user_declines_and_nothing_is_spent(url: str, upstream: FakeUpstream, mode: str, action: str) -> None:
    asked: list[str] = []

    async def scenario() -> Any:
        async with http_client(url, TOKEN, mode, elicitation_callback=answering(action, asked)) as client:
            return await client.call_tool("chat", {"prompt": "hello there"})

    result = run(scenario)
    assert result.is_error and "did not approve" in text(result)
    assert len(asked) == 1
    assert [r["body"]["model"] for r in upstream.requests] == ["free-small"]


def test_without_elicitation_the_token_comes_back(url: str, upstream: FakeUpstream) -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        async with http_client(url, TOKEN, "legacy") as client:
            first = await client.call_tool("chat", {"prompt": "hello there"})
            body = text(first).split("escalation_required: ", 1)[1].split(" -- ", 1)[0]
            import json

            token = json.loads(body)["approvalToken"]
            second = await client.call_tool("chat", {"prompt": "hello there", "approval_token": token})
            reused = await client.call_tool("chat", {"prompt": "hello there", "approval_token": token})
            return first, second, reused

    first, second, reused = run(scenario)
    assert first.is_error and '"proposedTier": "L1"' in text(first)
    assert second.structured_content["content"] == "answer from the paid tier"
    assert reused.is_error and "already used" in text(reused)
