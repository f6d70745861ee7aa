"""Escalation approval over MCP (`chat` and `code_agent`): the user approves through elicitation,
both protocol eras.

The free tier answers empty, so routing wants the paid L1 model; with
auto-escalation off the gateway needs an approval. An elicitation-capable
client is asked (accept -> the paid model answers; decline -> nothing is
spent); a client without elicitation gets the escalation_required details and
may repeat the call with the approval token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp_types import ElicitResult

from tests.conftest import base_config
from tests.fakes import FakeUpstream
from tests.mcp_support import ERAS, LogLines, http_client, run, set_log_level, text

TOKEN = "aigw-admin-test-token"


@pytest.fixture
def url(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path) -> str:
    raw = base_config(upstream.url, None, tmp_path / "data", server={"admin_token": TOKEN})
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
            token = json.loads(body)["approvalToken"]
            second = await client.call_tool("chat", {"prompt": "hello there", "approval_token": token})
            reused = await client.call_tool("chat", {"prompt": "hello there", "approval_token": token})
            return first, second, reused

    first, second, reused = run(scenario)
    assert first.is_error and '"proposedTier": "L1"' in text(first)
    assert second.structured_content["content"] == "answer from the paid tier"
    assert reused.is_error and "already used" in text(reused)


# -- code_agent: the same approval, through the conversation turn ----------------------------

TASK = {"task": "write an add function in JS", "quality": "low"}
PAID_CODE = "## TODO\n- [x] write add\n\n```js\nexport const add = (a, b) => a + b;\n```"


@pytest.fixture
def code_url(start_gateway: Any, upstream: FakeUpstream, tmp_path: Path) -> str:
    raw = base_config(upstream.url, None, tmp_path / "data", server={"admin_token": TOKEN})
    upstream.script.extend([{"empty": ""}, {"text": PAID_CODE}])
    return str(start_gateway(raw).url)


async def notices_on(client: Any, mode: str) -> None:
    """Ask for log messages at `notice` and above (legacy: logging/setLevel; 2026: the client's log_level)."""
    if mode == "legacy":
        await set_log_level(client, "notice")


@pytest.mark.parametrize("mode", ERAS)
def test_code_agent_user_approves_through_elicitation(code_url: str, upstream: FakeUpstream, mode: str) -> None:
    asked: list[str] = []
    lines = LogLines()

    async def scenario() -> tuple[Any, Any]:
        async with http_client(
            code_url,
            TOKEN,
            mode,
            elicitation_callback=answering("accept", asked),
            logging_callback=lines,
            log_level="notice",
        ) as client:
            await notices_on(client, mode)
            answer = await client.call_tool("code_agent", TASK)
            conversation = answer.structured_content["conversation_id"]
            sql = f"SELECT routed_model, status FROM usage WHERE conversation_id = '{conversation}' ORDER BY ts"
            for _ in range(150):  # the usage log is written in the background
                rows = await client.call_tool("usage_sql", {"sql": sql})
                if len(rows.structured_content["rows"]) >= 2:
                    break
                await anyio.sleep(0.1)
            return answer, rows

    answer, rows = run(scenario)
    assert not answer.is_error, text(answer)
    result = answer.structured_content
    assert (result["model"], result["tier"]) == ("cheap-mini", "L1")
    assert result["code"] == "export const add = (a, b) => a + b;"
    assert result["todos"] == [{"text": "write add", "status": "done"}]
    (message,) = asked
    assert "cheap-mini" in message and "L1" in message
    assert [r["body"]["model"] for r in upstream.requests] == ["free-small", "cheap-mini"]
    # Refused and approved attempt belong to one conversation, also across a 2026-07-28 input round.
    assert [row[0] for row in rows.structured_content["rows"]] == ["free-small", "cheap-mini"]
    # At level notice: the question is logged, the info lines (start, answer) are not.
    assert [(level, line) for level, _, line in lines.lines] == [
        ("notice", "asking the user to approve paid tier L1 (cheap-mini)")
    ]


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("action", ["decline", "cancel"])
def test_code_agent_user_declines_and_nothing_is_spent(
    code_url: str, upstream: FakeUpstream, mode: str, action: str
) -> None:
    asked: list[str] = []
    lines = LogLines()

    async def scenario() -> Any:
        async with http_client(
            code_url,
            TOKEN,
            mode,
            elicitation_callback=answering(action, asked),
            logging_callback=lines,
            log_level="notice",
        ) as client:
            await notices_on(client, mode)
            return await client.call_tool("code_agent", TASK)

    result = run(scenario)
    assert result.is_error
    assert text(result).endswith("the user did not approve the paid tier; the request was not sent to it")
    assert len(asked) == 1
    assert [r["body"]["model"] for r in upstream.requests] == ["free-small"]
    assert lines.levels() == ["notice", "warning"]
    assert lines.lines[-1][2] == "the user declined the paid tier; nothing was sent to it"


@pytest.mark.parametrize("mode", ERAS)
def test_code_agent_ignores_an_approval_token_argument_when_the_user_can_be_asked(
    code_url: str, upstream: FakeUpstream, mode: str
) -> None:
    """Only the user approves where they can be asked: a token the model made up changes nothing."""
    asked: list[str] = []

    async def scenario() -> Any:
        async with http_client(code_url, TOKEN, mode, elicitation_callback=answering("decline", asked)) as client:
            return await client.call_tool("code_agent", {**TASK, "approval_token": "made-up-by-the-model"})

    result = run(scenario)
    assert result.is_error and "did not approve" in text(result)
    assert len(asked) == 1
    assert [r["body"]["model"] for r in upstream.requests] == ["free-small"]


@pytest.mark.parametrize("mode", ERAS)
def test_code_agent_without_elicitation_returns_the_token(code_url: str, upstream: FakeUpstream, mode: str) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with http_client(code_url, TOKEN, mode) as client:
            first = await client.call_tool("code_agent", TASK)
            body = text(first).split("escalation_required: ", 1)[1].split(" -- ", 1)[0]
            token = json.loads(body)["approvalToken"]
            return first, await client.call_tool("code_agent", {**TASK, "approval_token": token})

    first, second = run(scenario)
    assert first.is_error and '"proposedTier": "L1"' in text(first) and '"proposedModel": "cheap-mini"' in text(first)
    assert not second.is_error, text(second)
    assert second.structured_content["model"] == "cheap-mini"
    assert second.structured_content["code"] == "export const add = (a, b) => a + b;"
