"""The seed's stateful API through HTTP: real Redis, real DuckDB in tmp_path, fake upstreams."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import redis

from tests.conftest import REDIS_URL, assert_error_shape, base_config
from tests.fakes import FakeUpstream, ServerThread

StartGateway = Callable[[dict[str, Any]], ServerThread]


def _config(upstream: FakeUpstream, tmp_path: Path, prefix: str | None, **conversations: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {"conversations": conversations} if conversations else {}
    if prefix is not None:
        extra.update(redis_url=REDIS_URL, redis_prefix=prefix)
    return base_config(upstream.url, None, tmp_path, **extra)


def _chat(gateway: ServerThread, conversation: str, message: str, **extra: Any) -> dict[str, Any]:
    response = httpx.post(
        gateway.url + "/v1/chat", json={"conversationId": conversation, "message": message, **extra}, timeout=15
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _chat_requests(upstream: FakeUpstream) -> list[dict[str, Any]]:
    return [r["body"] for r in upstream.requests if r["path"].endswith("/chat/completions")]


def _contents(body: dict[str, Any]) -> list[str]:
    return [str(m["content"]) for m in body["messages"]]


def test_a_conversation_is_remembered_across_turns(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    gateway = start_gateway(_config(upstream, tmp_path, redis_prefix))
    first = _chat(gateway, "conv-memory", "My name is Ada and I write Rust.", userId="user-1", projectId="proj-a")
    assert first["context"]["conversationId"] == "conv-memory"
    assert first["result"]["response"] == "echo from free-small: My name is Ada and I write Rust."
    assert first["result"]["model"] == "free-small" and first["result"]["provider"] == "fakeai"
    assert first["performance"]["tokens"]["input"] > 0 and first["performance"]["tokens"]["output"] > 0
    assert first["routing"]["fromCache"] is False and "free-small" in first["routing"]["summary"]

    _chat(gateway, "conv-memory", "What did we discuss earlier?")
    sent = _chat_requests(upstream)[-1]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert _contents(sent) == [
        "My name is Ada and I write Rust.",
        "echo from free-small: My name is Ada and I write Rust.",
        "What did we discuss earlier?",
    ]

    context = httpx.get(gateway.url + "/v1/context/conv-memory").json()
    assert context["conversationId"] == "conv-memory"
    assert context["summary"] is None and context["todos"] == []
    assert [m["role"] for m in context["messages"]] == ["user", "assistant", "user", "assistant"]
    assert [m["seq"] for m in context["messages"]] == [1, 2, 3, 4]
    meta = context["metadata"]
    assert meta["userId"] == "user-1" and meta["projectId"] == "proj-a" and meta["messageCount"] == 4
    assert context["messages"][1]["metadata"]["model"] == "free-small"

    keys = redis.Redis.from_url(REDIS_URL).keys(redis_prefix + "*")
    names = {k.decode().removeprefix(redis_prefix) for k in keys}
    assert {"conv:meta:conv-memory", "conv:messages:conv-memory", "todo:list:conv-memory"} <= names


def test_compression_summarises_older_messages_into_a_new_version(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    gateway = start_gateway(
        _config(upstream, tmp_path, redis_prefix, compress_after_messages=4, keep_recent_messages=2)
    )
    _chat(gateway, "conv-long", "fact one: the API is in Go")
    _chat(gateway, "conv-long", "fact two: the database is Postgres")
    calls_before = len(_chat_requests(upstream))
    third = _chat(gateway, "conv-long", "question three")
    requests = _chat_requests(upstream)[calls_before:]
    assert len(requests) == 2  # the summary call, then the turn itself
    summary_call, turn_call = requests
    assert summary_call["model"] == "free-small"  # summary_model L0: the cheap tier
    assert "fact one: the API is in Go" in summary_call["messages"][1]["content"]
    assert "keep the running summary" in summary_call["messages"][0]["content"]
    # The upstream receives the compressed prompt: summary + the 2 most recent messages + the new one.
    assert turn_call["messages"][0]["role"] == "system"
    assert "Summary of the conversation so far (version 1)" in turn_call["messages"][0]["content"]
    assert _contents(turn_call)[1:] == [
        "fact two: the database is Postgres",
        "echo from free-small: fact two: the database is Postgres",
        "question three",
    ]
    assert not any("fact one" in text for text in _contents(turn_call)[1:])
    assert third["context"]["summaryVersion"] == 1 and third["context"]["compressed"] is True

    context = httpx.get(gateway.url + "/v1/context/conv-long").json()
    assert context["summary"]["version"] == 1 and context["summary"]["coversThroughMessage"] == 2
    assert [m["seq"] for m in context["messages"]] == [3, 4, 5, 6]

    _chat(gateway, "conv-long", "question four")
    context = httpx.get(gateway.url + "/v1/context/conv-long").json()
    assert context["summary"]["version"] == 2 and context["summary"]["coversThroughMessage"] == 4
    assert context["metadata"]["messageCount"] == 8
    gateway.stop()

    db = duckdb.connect(str(tmp_path / "conversations.duckdb"), read_only=True)
    try:
        versions = db.execute(
            "SELECT version, through_seq FROM context_summaries WHERE conversation_id = 'conv-long' ORDER BY version"
        ).fetchall()
        assert versions == [(1, 2), (2, 4)]
        assert db.execute("SELECT count(*) FROM messages WHERE conversation_id = 'conv-long'").fetchone() == (8,)
    finally:
        db.close()
    usage = duckdb.connect(str(tmp_path / "usage.duckdb"), read_only=True)
    try:
        rows = usage.execute(
            "SELECT endpoint, count(*) FROM usage WHERE conversation_id = 'conv-long' "
            "GROUP BY endpoint ORDER BY endpoint"
        ).fetchall()
        assert rows == [("/v1/chat", 4), ("conversation:summary", 2)]
    finally:
        usage.close()


def test_compression_by_tokens_against_the_context_window(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    raw = _config(upstream, tmp_path, None, compress_after_messages=50, compress_at_context_fraction=0.5)
    for model in raw["models"]:
        model["context_window"] = 200  # tokens: a few long messages fill half of it
    gateway = start_gateway(raw)
    long = "word " * 60
    _chat(gateway, "conv-tokens", "first " + long, model="L0")
    before = len(_chat_requests(upstream))
    answer = _chat(gateway, "conv-tokens", "second " + long, model="L0")
    assert answer["context"]["summaryVersion"] == 1
    summary_call, turn_call = _chat_requests(upstream)[before:]
    assert "first word" in summary_call["messages"][1]["content"]
    assert "version 1" in turn_call["messages"][0]["content"]


def test_a_flushed_hot_tier_is_rebuilt_from_duckdb(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    config = _config(upstream, tmp_path, redis_prefix, compress_after_messages=6, keep_recent_messages=2)
    gateway = start_gateway(config)
    _chat(gateway, "conv-cold", "remember: the deploy key is in vault")
    _chat(gateway, "conv-cold", "and the region is eu-west")
    _chat(gateway, "conv-cold", "third turn")
    upstream.script.extend([{}, {"text": "## TODO\n- [ ] rotate the key"}])  # the summary, then the agent
    httpx.post(gateway.url + "/v1/code-agent", json={"conversationId": "conv-cold", "task": "plan the rotation"})
    before = httpx.get(gateway.url + "/v1/context/conv-cold").json()
    assert before["summary"]["version"] == 1 and before["todos"] == [{"text": "rotate the key", "status": "pending"}]
    assert len(before["messages"]) == 4

    client = redis.Redis.from_url(REDIS_URL)
    keys = client.keys(redis_prefix + "*")
    assert keys
    client.delete(*keys)
    assert client.keys(redis_prefix + "*") == []

    after = httpx.get(gateway.url + "/v1/context/conv-cold").json()
    assert after == before  # summary, recent messages, TODO list and metadata all rebuilt
    assert client.exists(f"{redis_prefix}conv:meta:conv-cold")  # and hot again

    client.delete(*client.keys(redis_prefix + "*"))
    _chat(gateway, "conv-cold", "which region?")
    sent = _chat_requests(upstream)[-1]
    assert "Summary of the conversation so far (version 1)" in sent["messages"][0]["content"]
    assert _contents(sent)[-1] == "which region?"
    assert len(sent["messages"]) == 1 + len(before["messages"]) + 1

    # A restart (new process state, same data_dir) finds it too.
    gateway.stop()
    client.delete(*client.keys(redis_prefix + "*"))
    client.close()
    again = start_gateway(config)
    context = httpx.get(again.url + "/v1/context/conv-cold").json()
    assert context["metadata"]["messageCount"] == before["metadata"]["messageCount"] + 2
    assert context["summary"]["version"] == 1


def test_the_in_process_hot_tier_evicts_and_rebuilds(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(_config(upstream, tmp_path, None, hot_max_conversations=1))
    _chat(gateway, "conv-a", "alpha")
    _chat(gateway, "conv-b", "bravo")  # evicts conv-a from the LRU
    _chat(gateway, "conv-a", "alpha again")
    assert _contents(_chat_requests(upstream)[-1]) == ["alpha", "echo from free-small: alpha", "alpha again"]


TIER_OF = {"free-small": "L0", "cheap-mini": "L1", "mid-large": "L2", "premium-max": "L3"}


def _history(gateway: ServerThread, conversation: str) -> None:
    _chat(gateway, conversation, "background: the service is written in Elixir")
    _chat(gateway, conversation, "it crashes under load")
    _chat(gateway, conversation, "logs show a mailbox overflow")


def _assert_package(upstream: FakeUpstream, since: int, task: str, *, attempts: bool) -> dict[str, Any]:
    sent = _chat_requests(upstream)[since:]
    first, last = sent[0], sent[-1]
    assert TIER_OF[last["model"]] > TIER_OF[first["model"]]
    assert len(first["messages"]) == 7  # the lower tier had the whole history
    assert [m["role"] for m in last["messages"]] == ["system", "user"]  # the higher one gets the package instead
    package = last["messages"][0]["content"]
    for part in (
        "HANDOFF PACKAGE",
        "## Context summary",
        "## Current task",
        task,
        "## Previous attempts",
        "## Known issues",
        "logs show a mailbox overflow",
    ):
        assert part in package, part
    if attempts:
        assert f"{first['model']} ({TIER_OF[first['model']]}): truncated" in package
    assert "written in Elixir" not in package  # older turns are not replayed verbatim
    assert last["messages"][1]["content"] == task
    return last


def test_escalation_hands_a_compact_package_to_the_higher_tier(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    raw = _config(upstream, tmp_path, redis_prefix)
    raw["routing"] = {**raw["routing"], "auto_escalate": True}
    gateway = start_gateway(raw)
    _history(gateway, "conv-esc")
    before = len(_chat_requests(upstream))
    upstream.script.extend([{"truncate": "1"}, {}])
    task = "Summarise the overflow"
    answer = _chat(gateway, "conv-esc", task)
    last = _assert_package(upstream, before, task, attempts=True)
    assert answer["result"]["model"] == last["model"]
    escalation = answer["routing"]["escalations"][0]
    assert escalation["reason"].startswith("truncated") and escalation["tier"] == "L0"
    assert answer["routing"]["summary"].startswith(f"L0 -> {TIER_OF[last['model']]} -> {last['model']}")
    context = httpx.get(gateway.url + "/v1/context/conv-esc").json()
    assert context["messages"][-1]["metadata"]["escalatedFrom"] == ["L0"]
    assert context["metadata"]["messageCount"] == 8


def test_approved_escalation_also_gets_the_package(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    gateway = start_gateway(_config(upstream, tmp_path, redis_prefix))  # auto_escalate off: paid tiers need approval
    _history(gateway, "conv-approve")
    before = len(_chat_requests(upstream))
    upstream.script.append({"truncate": "1"})
    task = "Summarise the overflow"
    refused = httpx.post(gateway.url + "/v1/chat", json={"conversationId": "conv-approve", "message": task})
    assert refused.status_code == 402, refused.text
    error = assert_error_shape(refused.json(), code="escalation_required")
    token = error["escalation"]["approvalToken"]
    assert httpx.get(gateway.url + "/v1/context/conv-approve").json()["metadata"]["messageCount"] == 6  # nothing stored

    approved = httpx.post(
        gateway.url + "/v1/chat",
        json={"conversationId": "conv-approve", "message": task},
        headers={"x-gateway-approve-escalation": token},
    )
    assert approved.status_code == 200, approved.text
    _assert_package(upstream, before, task, attempts=False)
    assert httpx.get(gateway.url + "/v1/context/conv-approve").json()["metadata"]["messageCount"] == 8


def test_without_auto_escalation_the_upstream_error_is_kept(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(_config(upstream, tmp_path, None))
    response = httpx.post(
        gateway.url + "/v1/chat",
        json={"conversationId": "conv-fail", "model": "L0", "message": "hello [[fake:status=503]]"},
    )
    assert response.status_code == 503
    assert_error_shape(response.json(), code="fake_503")
    # A failed turn stores nothing: the conversation does not exist.
    missing = httpx.get(gateway.url + "/v1/context/conv-fail")
    assert missing.status_code == 404


def test_concurrent_messages_keep_order_and_lose_nothing(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    gateway = start_gateway(_config(upstream, tmp_path, redis_prefix))
    count = 8

    def send(index: int) -> dict[str, Any]:
        return _chat(gateway, "conv-race", f"message {index} [[fake:delay=0.02]]")

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        answers = list(pool.map(send, range(count)))
    assert all(a["context"]["conversationId"] == "conv-race" for a in answers)
    context = httpx.get(gateway.url + "/v1/context/conv-race").json()
    messages = context["messages"]
    assert context["metadata"]["messageCount"] == 2 * count and len(messages) == 2 * count
    assert [m["seq"] for m in messages] == list(range(1, 2 * count + 1))
    assert [m["role"] for m in messages] == ["user", "assistant"] * count
    assert sorted(m["content"] for m in messages[::2]) == sorted(
        f"message {i} [[fake:delay=0.02]]" for i in range(count)
    )
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert answer["content"] == "echo from free-small: " + question["content"]
    # Each turn saw every turn before it: the prompts grow by exactly one exchange each time.
    sizes = [len(body["messages"]) for body in _chat_requests(upstream)]
    assert sizes == [1 + 2 * i for i in range(count)]


def test_streaming_chat_is_remembered(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    gateway = start_gateway(_config(upstream, tmp_path, redis_prefix))
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat",
        json={"conversationId": "conv-sse", "message": "stream me", "stream": True},
        timeout=15,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-conversation-id"] == "conv-sse"
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    context = httpx.get(gateway.url + "/v1/context/conv-sse").json()
    assert [m["content"] for m in context["messages"]] == ["stream me", "echo from free-small: stream me"]


def test_code_agent_keeps_a_todo_list_per_conversation(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path, redis_prefix: str
) -> None:
    gateway = start_gateway(_config(upstream, tmp_path, redis_prefix))
    reply = (
        "## TODO\n- [x] Create the component\n- [ ] Add tests\n\n"
        "src/components/UserProfile.tsx\n```tsx\nexport function UserProfile() { return null }\n```\nNext: tests."
    )
    upstream.script.append({"text": reply})
    response = httpx.post(
        gateway.url + "/v1/code-agent",
        json={
            "conversationId": "conv-code",
            "task": "Create a React component for user profile",
            "files": ["src/components/UserProfile.tsx", {"path": "src/app.tsx", "content": "render(<App/>)"}],
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["result"]["code"] == "export function UserProfile() { return null }"
    assert body["result"]["todos"] == [
        {"text": "Create the component", "status": "done"},
        {"text": "Add tests", "status": "pending"},
    ]
    sent = _chat_requests(upstream)[-1]
    assert "TODO-driven" in sent["messages"][0]["content"]
    assert "File: src/app.tsx\n```\nrender(<App/>)\n```" in sent["messages"][-1]["content"]

    httpx.post(gateway.url + "/v1/code-agent", json={"conversationId": "conv-code", "task": "now the tests"})
    again = _chat_requests(upstream)[-1]
    assert "- [x] Create the component\n- [ ] Add tests" in again["messages"][0]["content"]
    context = httpx.get(gateway.url + "/v1/context/conv-code").json()
    assert context["todos"][1] == {"text": "Add tests", "status": "pending"}
    assert context["metadata"]["todosVersion"] == 1


def test_mcp_cli_modes_and_the_extracted_patch(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(_config(upstream, tmp_path, None))
    diff = "--- a/app.js\n+++ b/app.js\n@@ -1 +1 @@\n-let x = 1\n+const x = 1\n"
    upstream.script.append({"text": f"Here you go:\n```diff\n{diff}```\nMakes x const."})
    response = httpx.post(
        gateway.url + "/v1/mcp-cli",
        json={
            "mode": "diff",
            "message": "make x const",
            "context": {
                "cwd": "/work/app",
                "files": [{"path": "app.js", "content": "let x = 1\n"}],
                "gitStatus": "M app.js",
            },
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patch"] == diff
    sent = _chat_requests(upstream)[-1]
    assert body["model"] == sent["model"] and isinstance(body["cost"], float)
    assert body["tokens"]["total"] == body["tokens"]["input"] + body["tokens"]["output"] > 0
    assert "unified diff" in sent["messages"][0]["content"]
    prompt = sent["messages"][1]["content"]
    assert "Working directory: /work/app" in prompt and "Git status:\nM app.js" in prompt and "let x = 1" in prompt

    chat = httpx.post(gateway.url + "/v1/mcp-cli", json={"mode": "chat", "message": "hi"}).json()
    assert chat["patch"] is None and chat["message"] == f"echo from {chat['model']}: hi"

    with httpx.stream(
        "POST", gateway.url + "/v1/mcp-cli", json={"mode": "chat", "message": "hi", "stream": True}
    ) as sse:
        assert sse.headers["content-type"].startswith("text/event-stream")
        assert [line for line in sse.iter_lines() if line][-1] == "data: [DONE]"


def test_unknown_ids_and_bad_bodies_get_clear_errors(
    start_gateway: StartGateway, upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(_config(upstream, tmp_path, None))
    url = gateway.url
    cases = [
        (httpx.get(url + "/v1/context/never-seen"), 404, "conversation_not_found"),
        (httpx.get(url + "/v1/context/bad%20id"), 400, "invalid_value"),
        (httpx.post(url + "/v1/chat", content=b"{oops"), 400, "invalid_json"),
        (httpx.post(url + "/v1/chat", json={"conversationId": "c1"}), 400, "missing_required_parameter"),
        (httpx.post(url + "/v1/chat", json={"message": 42}), 400, "invalid_type"),
        (httpx.post(url + "/v1/chat", json={"message": "hi", "conversationId": "a b"}), 400, "invalid_value"),
        (httpx.post(url + "/v1/chat", json={"message": "hi", "stream": "yes"}), 400, "invalid_type"),
        (httpx.post(url + "/v1/chat", json={"message": "hi", "model": "nope"}), 404, "model_not_found"),
        (httpx.post(url + "/v1/route", json={"message": "hi", "qualityLevel": "ultra"}), 400, "invalid_value"),
        (httpx.post(url + "/v1/route", json={"message": "hi", "dryRun": "yes"}), 400, "invalid_type"),
        (httpx.post(url + "/v1/code-agent", json={"conversationId": "c1"}), 400, "missing_required_parameter"),
        (httpx.post(url + "/v1/code-agent", json={"task": "x", "files": "a.ts"}), 400, "invalid_type"),
        (httpx.post(url + "/v1/code-agent", json={"task": "x", "files": [3]}), 400, "invalid_type"),
        (httpx.post(url + "/v1/mcp-cli", json={"mode": "poem", "message": "x"}), 400, "invalid_value"),
        (httpx.post(url + "/v1/mcp-cli", json={"mode": "chat"}), 400, "missing_required_parameter"),
        (httpx.post(url + "/v1/mcp-cli", json={"message": "x", "context": "here"}), 400, "invalid_type"),
        (httpx.get(url + "/v1/chat"), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.request.url, response.request.content, response.text)
        assert response.headers["content-type"] == "application/json"
        assert_error_shape(response.json(), code=code)
