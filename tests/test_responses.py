"""POST /v1/responses driven by the official `openai` SDK's responses API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import openai
import pytest

from tests.conftest import REDIS_URL, assert_error_shape, base_config
from tests.fakes import FakeUpstream, ServerThread

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.mark.parametrize("model", ["cheap-mini", "claude-mid"])
def test_plain_response(client: openai.OpenAI, model: str) -> None:
    raw = client.responses.with_raw_response.create(model=model, instructions="Be brief.", input="hello there")
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.model == model
    assert response.output_text == f"echo from {model}: hello there"
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.instructions == "Be brief."
    assert raw.headers["x-gateway-model"] == model and "x-gateway-cost" in raw.headers


def test_request_translation(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    client.responses.create(
        model="cheap-mini",
        instructions="Rules.",
        max_output_tokens=40,
        temperature=0.2,
        text={"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}},
        input=[
            {"role": "developer", "content": "Extra rule."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                ],
            },
        ],
    )
    sent = upstream.requests[-1]["body"]
    assert sent["max_tokens"] == 40 and sent["temperature"] == 0.2
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
    }
    assert sent["messages"] == [
        {"role": "system", "content": "Rules."},
        {"role": "system", "content": "Extra rule."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
            ],
        },
    ]


@pytest.mark.parametrize("model", ["cheap-mini", "claude-mid"])
def test_streaming_text(client: openai.OpenAI, model: str) -> None:
    with client.responses.stream(model=model, input="stream me please") as stream:
        kinds = []
        deltas = []
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    expected = f"echo from {model}: stream me please"
    assert "".join(deltas) == expected and final.output_text == expected
    assert final.status == "completed" and final.usage is not None and final.usage.output_tokens > 0
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert "response.output_item.added" in kinds and "response.content_part.added" in kinds


def test_raw_stream_events_are_named_and_numbered(gateway: ServerThread) -> None:
    import json

    with httpx.stream(
        "POST", gateway.url + "/v1/responses", json={"model": "cheap-mini", "input": "hi", "stream": True}
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = list(response.iter_lines())
    names = [line[7:] for line in lines if line.startswith("event: ")]
    payloads = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert [p["type"] for p in payloads] == names
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert "[DONE]" not in "".join(lines)


@pytest.mark.parametrize("model", ["cheap-mini", "claude-mid"])
def test_tool_call_round_trip(
    client: openai.OpenAI, model: str, upstream: FakeUpstream, anthropic_upstream: FakeUpstream
) -> None:
    fake = anthropic_upstream if model == "claude-mid" else upstream
    fake.script = [{"tool_call": "1"}, {}]
    first = client.responses.create(model=model, input="weather in Paris?", tools=[WEATHER])  # type: ignore[list-item]
    call = first.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.id.startswith("fc_") and call.call_id
    assert openai_json(call.arguments) == {"city": "Paris"}

    second = client.responses.create(
        model=model,
        tools=[WEATHER],  # type: ignore[list-item]
        input=[
            {"role": "user", "content": "weather in Paris?"},
            *[item.model_dump(exclude_none=True) for item in first.output],  # type: ignore[misc]
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"},
        ],
    )
    assert second.output_text.startswith("echo from ")
    if model == "cheap-mini":
        sent = upstream.requests[-1]["body"]["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
        assert sent[1]["tool_calls"][0]["id"] == call.call_id
        assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21C"}
    else:
        sent = anthropic_upstream.requests[-1]["body"]["messages"]
        assert sent[1]["content"][0]["type"] == "tool_use" and sent[2]["content"][0]["type"] == "tool_result"


def openai_json(text: str) -> Any:
    import json

    return json.loads(text)


def test_streamed_tool_call(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    upstream.script = [{"tool_call": "1"}]
    with client.responses.stream(model="cheap-mini", input="weather?", tools=[WEATHER]) as stream:  # type: ignore[list-item]
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    call = final.output[-1]
    assert call.type == "function_call" and openai_json(call.arguments) == {"city": "Paris"}


def _conversation(client: openai.OpenAI, upstream: FakeUpstream, *, stream: bool) -> None:
    if stream:
        with client.responses.stream(model="cheap-mini", instructions="first rules", input="my name is Ann") as events:
            first = events.get_final_response()
    else:
        first = client.responses.create(model="cheap-mini", instructions="first rules", input="my name is Ann")
    second = client.responses.create(model="cheap-mini", previous_response_id=first.id, input="what is my name?")
    assert second.previous_response_id == first.id
    assert upstream.requests[-1]["body"]["messages"] == [
        {"role": "user", "content": "my name is Ann"},
        {"role": "assistant", "content": "echo from cheap-mini: my name is Ann"},
        {"role": "user", "content": "what is my name?"},
    ]  # instructions of the earlier turn are not carried over, as in OpenAI's API
    upstream.script = [{"tool_call": "1"}, {}]
    third = client.responses.create(
        model="cheap-mini", previous_response_id=second.id, input="weather?", tools=[WEATHER]
    )  # type: ignore[list-item]
    call = third.output[-1]
    assert call.type == "function_call"
    client.responses.create(
        model="cheap-mini",
        previous_response_id=third.id,
        tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    sent = upstream.requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user", "assistant", "user", "assistant", "tool"]
    assert sent[-2]["tool_calls"][0]["id"] == call.call_id


def test_previous_response_id_in_process(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    _conversation(client, upstream, stream=False)


def test_previous_response_id_after_a_stream_in_redis(
    start_gateway: Callable[[dict[str, Any]], ServerThread],
    upstream: FakeUpstream,
    anthropic_upstream: FakeUpstream,
    tmp_path: Path,
    redis_prefix: str,
) -> None:
    raw = base_config(upstream.url, anthropic_upstream.url, tmp_path, redis_url=REDIS_URL, redis_prefix=redis_prefix)
    gateway = start_gateway(raw)
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=10) as client:
        _conversation(client, upstream, stream=True)
    import redis

    with redis.Redis.from_url(REDIS_URL) as direct:
        keys = list(direct.scan_iter(match=redis_prefix + "responses:*"))
        assert len(keys) == 4 and 0 < direct.ttl(keys[0]) <= 30 * 24 * 3600
    # A second gateway on the same Redis (another worker or replica) continues the conversation.
    other = start_gateway({**raw, "server": {"data_dir": str(tmp_path / "other")}})
    with openai.OpenAI(base_url=other.url + "/v1", api_key="x", max_retries=0, timeout=10) as client:
        last = keys[0].decode().rsplit(":", 1)[1]
        assert client.responses.retrieve(last).id == last
    # Every turn of the chain is one conversation in the usage log.
    gateway.stop()
    with duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT DISTINCT conversation_id, endpoint FROM usage").fetchall()
    assert len(rows) == 1 and rows[0][0].startswith("resp_") and rows[0][1] == "/v1/responses"


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    first = client.responses.create(model="cheap-mini", input="secret", store=False)
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="cheap-mini", previous_response_id=first.id, input="again")
    assert_error_shape({"error": caught.value.body}, code="previous_response_not_found")


def test_retrieve_and_delete(client: openai.OpenAI) -> None:
    created = client.responses.create(model="cheap-mini", input="keep me")
    assert client.responses.retrieve(created.id).output_text == created.output_text
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(created.id)
    assert_error_shape({"error": caught.value.body}, code="response_not_found")


def test_another_project_cannot_continue_a_conversation(client: openai.OpenAI) -> None:
    created = client.responses.create(model="cheap-mini", input="mine", extra_headers={"x-gateway-project": "alpha"})
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model="cheap-mini",
            previous_response_id=created.id,
            input="yours?",
            extra_headers={"x-gateway-project": "beta"},
        )


def test_hosted_tools_are_left_out_and_namespaces_flattened(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    """Codex sends a web_search tool and `namespace` groups with every request."""
    group = {
        "type": "namespace",
        "name": "agents",
        "description": "sub-agents",
        "tools": [{**WEATHER, "name": "spawn"}],
    }
    raw = client.responses.with_raw_response.create(
        model="cheap-mini",
        input="hi",
        tools=[WEATHER, group, {"type": "web_search"}],  # type: ignore[list-item]
    )
    assert raw.headers["x-gateway-dropped-tools"] == "web_search"
    sent = upstream.requests[-1]["body"]["tools"]
    assert [t["function"]["name"] for t in sent] == ["get_weather", "spawn"]
    client.responses.create(model="cheap-mini", input="hi", tools=[{"type": "web_search"}])  # type: ignore[list-item]
    assert "tools" not in upstream.requests[-1]["body"]


# -- errors, in OpenAI's shape ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "cheap-mini"}, "input"),
        ({"input": "hi"}, "model"),
        ({"model": "cheap-mini", "input": 5}, "input"),
        ({"model": "cheap-mini", "input": "hi", "tools": [{"type": "function", "parameters": {}}]}, "tools[0].name"),
        ({"model": "cheap-mini", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        ({"model": "cheap-mini", "input": "hi", "max_output_tokens": "many"}, "max_output_tokens"),
    ],
)
def test_bad_input_is_a_400(gateway: ServerThread, body: dict[str, Any], param: str) -> None:
    response = httpx.post(gateway.url + "/v1/responses", json=body)
    assert response.status_code == 400
    assert assert_error_shape(response.json())["param"] == param


def test_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="no-such-model", input="hi")
    assert_error_shape({"error": caught.value.body}, code="model_not_found")


def test_upstream_errors_keep_their_status(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="cheap-mini", input="[[fake:status=429,retry_after=2]]")
    assert caught.value.response.headers["retry-after"] == "2"
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="claude-mid", input="[[fake:status=529]]")


def test_error_mid_stream_is_an_error_event_then_failed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="cheap-mini", input="long [[fake:stream_error_after=2]]", stream=True))
    kinds = [event.type for event in events]
    assert kinds[-2:] == ["error", "response.failed"]
    assert "broke mid-stream" in events[-2].message  # type: ignore[union-attr]
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None
