"""Chat completions served by an Anthropic Messages upstream, translated both ways."""

from __future__ import annotations

import openai

from tests.fakes import FakeUpstream
from tests.test_chat import WEATHER_TOOL


def test_request_translation(client: openai.OpenAI, anthropic_upstream: FakeUpstream) -> None:
    completion = client.chat.completions.create(
        model="claude-mid",
        messages=[
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in this image?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "user", "content": "thanks"},
        ],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stop="STOP",
        max_tokens=77,
        temperature=0.5,
    )
    sent = anthropic_upstream.requests[-1]
    assert sent["headers"]["x-api-key"] == "sk-ant-fake"
    assert sent["headers"]["anthropic-version"]
    body = sent["body"]
    assert body["system"] == "You are terse."
    assert body["max_tokens"] == 77 and body["temperature"] == 0.5
    assert body["stop_sequences"] == ["STOP"]
    assert body["tool_choice"] == {"type": "any"}
    assert body["tools"][0]["name"] == "get_weather" and body["tools"][0]["input_schema"]["required"] == ["city"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert body["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {"city": "Oslo"},
    }
    assert body["messages"][2]["content"][0]["type"] == "tool_result"
    assert completion.choices[0].message.content == "echo from claude-mid: thanks"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 12


def test_tool_use_and_stop_reasons(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="claude-mid", messages=[{"role": "user", "content": "[[fake:tool_call]]"}], tools=[WEATHER_TOOL]
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    call = completion.choices[0].message.tool_calls[0]
    assert call.id == "toolu_fake1" and call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'

    truncated = client.chat.completions.create(
        model="claude-mid", messages=[{"role": "user", "content": "[[fake:truncate]]"}]
    )
    assert truncated.choices[0].finish_reason == "length"


def test_streaming_events_become_openai_chunks(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude-mid",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo from claude-mid: stream me"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 12


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="claude-mid",
        messages=[{"role": "user", "content": "[[fake:tool_call]]"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    arguments, names = "", []
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if call.function.name:
                names.append(call.function.name)
            arguments += call.function.arguments or ""
    assert names == ["get_weather"] and arguments == '{"city": "Paris"}'


def test_anthropic_errors_keep_their_meaning(client: openai.OpenAI) -> None:
    import pytest

    with pytest.raises(openai.RateLimitError) as error:
        client.chat.completions.create(
            model="claude-mid", messages=[{"role": "user", "content": "[[fake:status=429,retry_after=3]]"}]
        )
    assert error.value.response.headers["retry-after"] == "3"
    assert "rate_limit_error" in str(error.value.response.json()["error"]["code"])
