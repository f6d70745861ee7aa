"""POST /v1/messages driven by the official `anthropic` SDK, over both upstream formats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import duckdb
import httpx
import pytest

from tests.fakes import FakeUpstream, ServerThread

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

# claude-mid lives on the fake Anthropic upstream, cheap-mini on the fake OpenAI one.
BOTH_UPSTREAMS = pytest.mark.parametrize("model", ["claude-mid", "cheap-mini"])


@pytest.fixture
def claude(gateway: ServerThread) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key="sk-gateway-client", max_retries=0, timeout=10) as sdk:
        yield sdk


def assert_anthropic_error(body: Any, kind: str) -> dict[str, Any]:
    """Anthropic's error shape: exactly {"type": "error", "error": {"type", "message"}}."""
    assert isinstance(body, dict) and set(body) == {"type", "error"} and body["type"] == "error", body
    error = body["error"]
    assert set(error) == {"type", "message"} and error["type"] == kind, error
    assert isinstance(error["message"], str) and error["message"] and "Traceback" not in error["message"]
    return dict(error)


@BOTH_UPSTREAMS
def test_plain_message(claude: anthropic.Anthropic, model: str) -> None:
    raw = claude.messages.with_raw_response.create(
        model=model, max_tokens=100, system="You are terse.", messages=[{"role": "user", "content": "hello there"}]
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.model == model
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == f"echo from {model}: hello there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.id.startswith("msg_")
    assert raw.headers["x-gateway-model"] == model
    assert raw.headers["request-id"].startswith("req_")
    assert float(raw.headers["x-gateway-cost"]) > 0


def test_request_reaches_an_openai_upstream_translated(claude: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    claude.messages.create(
        model="cheap-mini",
        max_tokens=64,
        extra_body={"temperature": 0.3},  # this SDK version has no temperature argument
        system=[{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}],
        stop_sequences=["END"],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                ],
            }
        ],
    )
    sent = upstream.requests[-1]["body"]
    assert sent["model"] == "cheap-mini"
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.3 and sent["stop"] == ["END"]
    assert sent["messages"][0] == {"role": "system", "content": "Rule one.\n\nRule two."}
    assert sent["messages"][1]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]


def test_request_reaches_an_anthropic_upstream_with_its_own_key(
    claude: anthropic.Anthropic, anthropic_upstream: FakeUpstream
) -> None:
    claude.messages.create(
        model="claude-mid",
        max_tokens=50,
        system="Be brief.",
        stop_sequences=["STOP"],
        messages=[{"role": "user", "content": "hi"}],
    )
    sent = anthropic_upstream.requests[-1]
    assert sent["headers"]["x-api-key"] == "sk-ant-fake"  # the gateway's key, not the client's
    body = sent["body"]
    assert body["system"] == [{"type": "text", "text": "Be brief."}]
    assert body["stop_sequences"] == ["STOP"] and body["max_tokens"] == 50
    assert body["messages"] == [{"role": "user", "content": "hi"}]  # the client's own messages


@BOTH_UPSTREAMS
def test_streaming_text(claude: anthropic.Anthropic, model: str) -> None:
    with claude.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "stream me please"}]
    ) as stream:
        kinds = []
        pieces = []
        for event in stream:
            kinds.append(event.type)
            if event.type == "text":
                pieces.append(event.text)
        final = stream.get_final_message()
    expected = f"echo from {model}: stream me please"
    assert "".join(pieces) == expected
    assert final.content[0].text == expected  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(kinds)


def test_raw_stream_uses_anthropic_event_names(gateway: ServerThread) -> None:
    body = {"model": "cheap-mini", "max_tokens": 20, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream(
        "POST", gateway.url + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"]
    assert names[2] == "content_block_start" and names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@BOTH_UPSTREAMS
def test_tool_use_round_trip(
    claude: anthropic.Anthropic, model: str, upstream: FakeUpstream, anthropic_upstream: FakeUpstream
) -> None:
    fake = anthropic_upstream if model == "claude-mid" else upstream
    fake.script = [{"tool_call": "1"}, {}]  # a tool call first, then a plain answer
    question = {"role": "user", "content": "weather in Paris?"}
    first = claude.messages.create(model=model, max_tokens=100, tools=[WEATHER_TOOL], messages=[question])  # type: ignore[list-item]
    assert first.stop_reason == "tool_use"
    tool_use = first.content[-1]
    assert tool_use.type == "tool_use" and tool_use.name == "get_weather" and tool_use.input == {"city": "Paris"}

    second = claude.messages.create(
        model=model,
        max_tokens=100,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[
            question,  # type: ignore[list-item]
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny, 21C"},
                    {"type": "text", "text": "thanks"},
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == f"echo from {model}: thanks"  # type: ignore[union-attr]
    if model == "cheap-mini":
        sent = upstream.requests[-1]["body"]["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
        assert sent[1]["tool_calls"][0]["id"] == tool_use.id
        assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
        assert sent[2] == {"role": "tool", "tool_call_id": tool_use.id, "content": "sunny, 21C"}
    else:
        sent = anthropic_upstream.requests[-1]["body"]["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        assert sent[1]["content"] == [
            {"type": "tool_use", "id": tool_use.id, "name": "get_weather", "input": {"city": "Paris"}}
        ]
        assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny, 21C"}


@BOTH_UPSTREAMS
def test_streamed_tool_use(claude: anthropic.Anthropic, model: str) -> None:
    with claude.messages.stream(
        model=model,
        max_tokens=100,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "weather? [[fake:tool_call]]"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    block = final.content[-1]
    assert block.type == "tool_use" and block.name == "get_weather" and block.input == {"city": "Paris"}


def test_truncation_is_max_tokens(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="cheap-mini", max_tokens=5, messages=[{"role": "user", "content": "x [[fake:truncate]]"}]
    )
    assert message.stop_reason == "max_tokens"


def test_unknown_claude_names_route_by_family(
    gateway: ServerThread, claude: anthropic.Anthropic, tmp_path: Path
) -> None:
    raw = claude.messages.with_raw_response.create(
        model="claude-sonnet-4-5-20250929", max_tokens=20, messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.headers["x-gateway-model"] == "claude-mid"  # the L2 model
    assert raw.headers["x-gateway-model-mapped"] == "claude-sonnet-4-5-20250929->L2"
    raw = claude.messages.with_raw_response.create(
        model="claude-3-5-haiku-latest", max_tokens=20, messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.headers["x-gateway-tier"] == "L1" and raw.headers["x-gateway-model"] == "cheap-mini"
    # The usage log keeps the name the client sent and the endpoint it used.
    gateway.stop()
    with duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT endpoint, requested_model, routed_model FROM usage ORDER BY ts").fetchall()
    assert rows == [
        ("/v1/messages", "claude-sonnet-4-5-20250929", "claude-mid"),
        ("/v1/messages", "claude-3-5-haiku-latest", "cheap-mini"),
    ]


def test_config_alias_wins_over_the_family_rule(
    start_gateway,
    upstream: FakeUpstream,  # type: ignore[no-untyped-def]
    anthropic_upstream: FakeUpstream,
    tmp_path: Path,
) -> None:
    from tests.conftest import base_config

    raw = base_config(
        upstream.url, anthropic_upstream.url, tmp_path, routing={"aliases": {"claude-opus-4-1": "free-small"}}
    )
    gateway = start_gateway(raw)
    with anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0) as sdk:
        message = sdk.messages.create(
            model="claude-opus-4-1", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
    assert message.model == "free-small"


def test_auto_routes(claude: anthropic.Anthropic) -> None:
    raw = claude.messages.with_raw_response.create(
        model="auto", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-gateway-tier"] and raw.parse().content[0].text.startswith("echo from ")  # type: ignore[union-attr]


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    short = claude.messages.count_tokens(model="claude-mid", messages=[{"role": "user", "content": "hi"}])
    long = claude.messages.count_tokens(
        model="claude-mid",
        system="be brief",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "tell me about the weather " * 50}],
    )
    assert 0 < short.input_tokens < long.input_tokens


# -- errors, in Anthropic's shape ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param_hint"),
    [
        ({"model": "claude-mid", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({"model": "claude-mid", "max_tokens": 5}, "messages"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({"model": "claude-mid", "max_tokens": 5, "messages": [{"role": "tool", "content": "hi"}]}, "role"),
        (
            {"model": "claude-mid", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "video",
        ),
        (
            {
                "model": "claude-mid",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            "web_search",
        ),
    ],
)
def test_bad_input_is_a_400_in_anthropic_shape(gateway: ServerThread, body: dict[str, Any], param_hint: str) -> None:
    response = httpx.post(gateway.url + "/v1/messages", json=body)
    assert response.status_code == 400
    error = assert_anthropic_error(response.json(), "invalid_request_error")
    assert param_hint in error["message"]


def test_bad_json_is_a_400_in_anthropic_shape(gateway: ServerThread) -> None:
    response = httpx.post(gateway.url + "/v1/messages", content=b"{nope", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert_anthropic_error(response.json(), "invalid_request_error")


def test_unknown_model_is_a_404_in_anthropic_shape(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="gpt-unknown", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert_anthropic_error(caught.value.body, "not_found_error")


@BOTH_UPSTREAMS
def test_upstream_errors_keep_status_in_anthropic_shape(claude: anthropic.Anthropic, model: str) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude.messages.create(
            model=model, max_tokens=5, messages=[{"role": "user", "content": "[[fake:status=429,retry_after=3]]"}]
        )
    assert limited.value.response.headers["retry-after"] == "3"
    assert_anthropic_error(limited.value.body, "rate_limit_error")
    with pytest.raises(anthropic.InternalServerError) as failed:
        claude.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "[[fake:status=500]]"}])
    assert failed.value.status_code == 500
    assert_anthropic_error(failed.value.body, "api_error")


def test_upstream_error_before_the_stream_is_an_http_error(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        with claude.messages.stream(
            model="cheap-mini", max_tokens=5, messages=[{"role": "user", "content": "[[fake:status=429]]"}]
        ) as stream:
            stream.get_final_message()
    assert_anthropic_error(caught.value.body, "rate_limit_error")


def test_error_mid_stream_is_an_anthropic_error_event(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model="cheap-mini",
            max_tokens=50,
            messages=[{"role": "user", "content": "long answer [[fake:stream_error_after=2]]"}],
        ) as stream:
            for _ in stream:
                pass
    assert_anthropic_error(caught.value.body, "api_error")
    assert "broke mid-stream" in caught.value.body["error"]["message"]  # type: ignore[index]


def test_system_messages_mid_conversation(
    claude: anthropic.Anthropic, upstream: FakeUpstream, anthropic_upstream: FakeUpstream
) -> None:
    """Claude Code 2.x sends `system` messages between turns (a beta); both upstream formats take them."""
    messages: Any = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "system", "content": "Now be formal."},
        {"role": "user", "content": "second"},
    ]
    claude.messages.create(model="cheap-mini", max_tokens=20, system="Base.", messages=messages)
    assert [m["role"] for m in upstream.requests[-1]["body"]["messages"]] == [
        "system",
        "user",
        "assistant",
        "system",
        "user",
    ]
    claude.messages.create(model="claude-mid", max_tokens=20, system="Base.", messages=messages)
    sent = anthropic_upstream.requests[-1]["body"]
    assert sent["system"] == [{"type": "text", "text": "Base."}, {"type": "text", "text": "Now be formal."}]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


THINKING = {"type": "enabled", "budget_tokens": 1024}


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_and_cache_control_pass_through_to_an_anthropic_upstream(
    claude: anthropic.Anthropic, anthropic_upstream: FakeUpstream, stream: bool
) -> None:
    anthropic_upstream.script = [{"tool_call": "1"}, {}]
    system: Any = [{"type": "text", "text": "Long shared prompt.", "cache_control": {"type": "ephemeral"}}]
    question: Any = {"role": "user", "content": "weather?"}
    args: Any = {
        "model": "claude-mid",
        "max_tokens": 2048,
        "system": system,
        "tools": [WEATHER_TOOL],
        "thinking": THINKING,
    }
    if stream:
        with claude.messages.stream(messages=[question], **args) as events:
            first = events.get_final_message()
    else:
        first = claude.messages.create(messages=[question], **args)
    sent = anthropic_upstream.requests[-1]["body"]
    assert sent["thinking"] == THINKING and sent["system"] == system
    assert [block.type for block in first.content] == ["thinking", "tool_use"]
    assert first.content[0].signature == "fake-signature" and first.content[0].thinking == "fake thought"  # type: ignore[union-attr]

    tool_use = first.content[1]
    claude.messages.create(
        messages=[
            question,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny"}]},
        ],
        **args,
    )
    replayed = anthropic_upstream.requests[-1]["body"]["messages"][1]["content"]
    assert replayed[0]["type"] == "thinking" and replayed[0]["signature"] == "fake-signature"
    assert replayed[1]["type"] == "tool_use" and replayed[1]["id"] == tool_use.id


def test_thinking_is_not_sent_to_an_openai_upstream(claude: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    message = claude.messages.create(
        model="cheap-mini",
        max_tokens=2048,
        thinking=THINKING,  # type: ignore[arg-type]
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "s"},
                    {"type": "text", "text": "hello"},
                ],
            },
            {"role": "user", "content": "again"},
        ],
    )
    assert message.content[0].type == "text"
    sent = upstream.requests[-1]["body"]
    assert "thinking" not in sent and "anthropic_native" not in sent
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]
