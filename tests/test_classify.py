"""The in-process classifier: behaviours a user relies on, and the benchmark's held-out figures."""

from __future__ import annotations

from typing import Any

from bench.routing.__main__ import load
from proxy.config import RoutingConfig
from proxy.routing import classify


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], **extra}


def test_small_talk_and_one_liners_stay_free() -> None:
    assert classify(user("hi there!")).complexity == "low"
    found = classify(user("Write a regex that matches a 5-digit US zip code."))
    assert (found.task, found.complexity) == ("code", "low")


def test_stakes_raise_and_reasons_explain() -> None:
    found = classify(
        user(
            "Write the JWT validation middleware for our public API with key rotation via JWKS; it is security-critical."
        )
    )
    assert (found.task, found.complexity) == ("code", "critical")
    assert "complexity:critical_words" in found.reasons


def test_a_short_follow_up_inherits_the_conversation() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": "Implement a thread-safe bounded blocking queue in C++ with condition variables.",
            },
            {"role": "assistant", "content": "```cpp\n// ...\n```"},
            {"role": "user", "content": "and in Rust?"},
        ]
    }
    found = classify(body)
    assert (found.task, found.complexity) == ("code", "high")
    assert "task:follow_up" in found.reasons


def test_quality_hint_moves_the_complexity() -> None:
    body = user("What is the capital of Peru?")
    assert classify(body).complexity == "low"
    assert classify(body, "high").complexity == "medium"
    assert classify(user("Prove rigorously that sqrt(2) is irrational."), "low").complexity == "high"


def test_a_coding_agent_with_tools_is_code_and_not_trivial() -> None:
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": {}}}]
    found = classify(user("Add type hints to utils/strings.py.", tools=tools))
    assert (found.task, found.complexity) == ("code", "medium")


def test_the_ask_after_a_long_paste_decides() -> None:
    log = "2024-05-01T10:00:03 ERROR timeout calling inventory after 2000ms\n" * 2000
    found = classify(user(log + "\nWhy do these timeouts cascade? Find the root cause."))
    assert found.task == "analyze"
    assert found.complexity in ("high", "critical")


def test_bad_shapes_do_not_raise() -> None:
    for body in (
        {},
        {"messages": None},
        {"messages": [None, 3, {"role": "user", "content": [{"type": "image_url"}]}]},
        {"messages": [{"role": "user", "content": "hi"}], "tools": [None, {"function": 3}]},
    ):
        assert classify(body).task in ("chat", "code", "analyze", "create_project")


def test_held_out_benchmark_meets_the_targets() -> None:
    rows = load("heldout")
    tiers = RoutingConfig().complexity_tiers
    order = ["L0", "L1", "L2", "L3"]
    task_ok = tier_ok = under = 0
    for row in rows:
        found = classify(row["request"])
        tier = tiers[found.complexity]
        task_ok += found.task == row["task"]
        tier_ok += tier == row["tier"]
        under += order.index(tier) < order.index(row["tier"])
    assert len(rows) >= 150
    assert task_ok / len(rows) >= 0.95
    assert tier_ok / len(rows) >= 0.80
    assert under / len(rows) <= 0.05


def test_request_fields_count_too() -> None:
    assert classify(user("Tell me about cats.")).complexity == "low"
    found = classify(user("Tell me about cats.", max_tokens=8000))
    assert found.complexity == "medium" and "complexity:long_answer_requested" in found.reasons
    image = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:,"}},
                ],
            }
        ]
    }
    assert classify(image).complexity == "medium"
