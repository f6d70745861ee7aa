"""POST /v1/chat/completions driven by the official openai SDK against fake upstreams."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.conftest import assert_error_shape
from tests.fakes import FakeUpstream, ServerThread

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_plain_chat_answers_with_the_routed_model(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="L0", messages=[{"role": "user", "content": "hello there"}]
    )
    completion = raw.parse()
    assert completion.model == "free-small"
    assert completion.choices[0].message.content == "echo from free-small: hello there"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-gateway-model"] == "free-small"
    assert raw.headers["x-gateway-tier"] == "L0"
    assert raw.headers["x-gateway-cost"] == "0"
    assert upstream.requests[-1]["headers"]["authorization"] == "Bearer sk-fake-upstream"


def test_every_openai_parameter_reaches_the_upstream_untouched(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    client.chat.completions.create(
        model="cheap-mini",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        temperature=0.2,
        top_p=0.9,
        n=1,
        stop=["END"],
        seed=7,
        logprobs=True,
        top_logprobs=2,
        max_completion_tokens=50,
        user="alice",
        metadata={"team": "a"},
        response_format={"type": "json_object"},
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        presence_penalty=0.1,
        extra_body={"vendor_extension": {"x": 1}},
    )
    sent = upstream.requests[-1]["body"]
    assert sent["model"] == "cheap-mini"
    expected = {
        "temperature": 0.2,
        "top_p": 0.9,
        "n": 1,
        "stop": ["END"],
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "max_completion_tokens": 50,
        "user": "alice",
        "metadata": {"team": "a"},
        "response_format": {"type": "json_object"},
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "presence_penalty": 0.1,
        "vendor_extension": {"x": 1},
    }
    for key, value in expected.items():
        assert sent[key] == value, key
    assert "stream_options" not in sent


def test_streaming_ends_with_done_and_hides_usage_unless_asked(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    stream = client.chat.completions.create(
        model="L1", messages=[{"role": "user", "content": "stream please [[fake:chunks=4]]"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("echo from cheap-mini: stream please")
    assert all(c.usage is None for c in chunks)
    assert upstream.requests[-1]["body"]["stream_options"] == {"include_usage": True}

    with_usage = list(
        client.chat.completions.create(
            model="L1",
            messages=[{"role": "user", "content": "again"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert with_usage[-1].usage is not None and with_usage[-1].usage.prompt_tokens > 0


def test_raw_stream_is_sse_ending_with_done(gateway: ServerThread) -> None:
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={"model": "L0", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    # Events, plus the one comment (skipped by SSE clients) that carries the stream's cost.
    assert all(line.startswith("data: ") for line in lines if not line.startswith(": x-gateway-cost "))
    assert sum(line.startswith(": ") for line in lines) == 1 and lines[-2].startswith(": x-gateway-cost ")


def test_tool_calls_round_trip(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="L0", messages=[{"role": "user", "content": "weather? [[fake:tool_call]]"}], tools=[WEATHER_TOOL]
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Paris"}'
    assert completion.choices[0].finish_reason == "tool_calls"

    stream = client.chat.completions.create(
        model="L0",
        messages=[{"role": "user", "content": "weather? [[fake:tool_call]]"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    arguments = ""
    name = None
    for chunk in stream:
        for delta_call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name = delta_call.function.name or name
            arguments += delta_call.function.arguments or ""
    assert name == "get_weather" and arguments == '{"city": "Paris"}'


def test_response_format_json(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="L1",
        messages=[{"role": "user", "content": "json [[fake:json]]"}],
        response_format={"type": "json_object"},
    )
    assert completion.choices[0].message.content == '{"answer": 42, "model": "cheap-mini"}'


def test_upstream_errors_become_typed_sdk_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as rate_limited:
        client.chat.completions.create(
            model="L0", messages=[{"role": "user", "content": "[[fake:status=429,retry_after=7]]"}]
        )
    assert rate_limited.value.response.headers["retry-after"] == "7"
    assert_error_shape(rate_limited.value.response.json())

    with pytest.raises(openai.InternalServerError) as server_error:
        client.chat.completions.create(model="L0", messages=[{"role": "user", "content": "[[fake:status=503]]"}])
    assert server_error.value.status_code == 503

    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="L0", messages=[{"role": "user", "content": "[[fake:status=400]]"}])

    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert_error_shape(not_found.value.response.json(), code="model_not_found")


def test_upstream_timeout_is_504(client: openai.OpenAI) -> None:
    # The fake provider's timeout is 5 s; the fake waits longer.
    with pytest.raises(openai.APIStatusError) as timed_out:
        client.chat.completions.create(model="L0", messages=[{"role": "user", "content": "[[fake:delay=6]]"}])
    assert timed_out.value.status_code == 504
    assert_error_shape(timed_out.value.response.json(), code="upstream_timeout")


def test_refused_connection_is_502(start_gateway, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import base_config
    from tests.fakes import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    server = start_gateway(base_config(dead, None, tmp_path))
    response = httpx.post(
        server.url + "/v1/chat/completions", json={"model": "L0", "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 502
    assert_error_shape(response.json(), code="upstream_unavailable")


def test_error_mid_stream_becomes_an_error_event(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="L0", messages=[{"role": "user", "content": "[[fake:chunks=5,stream_error_after=2]]"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_client_disconnect_cancels_the_upstream(gateway: ServerThread, upstream: FakeUpstream) -> None:
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={
            "model": "L0",
            "stream": True,
            "messages": [{"role": "user", "content": "long [[fake:chunks=200,chunk_delay=0.05]]"}],
        },
    ) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and "echo" in line:
                break
    deadline = time.time() + 5
    while upstream.stream_closed_early == 0 and time.time() < deadline:
        time.sleep(0.05)
    assert upstream.stream_closed_early == 1
