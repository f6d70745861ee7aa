"""`x-gateway-max-tier`: one request lowers its own ceiling, through HTTP against fake upstreams.

It holds for routing, failover, automatic and approved escalation,
cross-check and the seed's endpoints; it never raises what a token allows;
bad values and requests nothing under the ceiling can serve get clear errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import assert_error_shape, base_config
from tests.fakes import FakeUpstream, ServerThread
from tests.test_tokens import ADMIN, create_token

Start = Callable[[dict[str, Any]], ServerThread]
CRITICAL = [{"role": "user", "content": "Audit our payment service for security vulnerabilities before production"}]
HELLO = [{"role": "user", "content": "hi there"}]  # chat, L0
CEILING = "x-gateway-max-tier"


def config(upstream: FakeUpstream, tmp_path: Path, anthropic_url: str | None = None, **routing: Any) -> dict[str, Any]:
    raw = base_config(upstream.url, anthropic_url, tmp_path, server={"data_dir": str(tmp_path), "admin_token": ADMIN})
    raw["routing"] = {**raw["routing"], "retry": {"attempts": 1, "backoff_seconds": 0.01}, **routing}
    return raw


def post(
    gateway: ServerThread, body: dict[str, Any], path: str = "/v1/chat/completions", **headers: str
) -> httpx.Response:
    return httpx.post(gateway.url + path, json=body, headers=headers, timeout=20)


def models_called(upstream: FakeUpstream) -> list[str]:
    return [r["body"]["model"] for r in upstream.requests if r["path"].endswith("/chat/completions")]


def usage(gateway: ServerThread, sql: str, expected: int) -> list[list[Any]]:
    """Rows of the usage log (admin SQL), once at least `expected` are written."""
    deadline = time.time() + 20
    while True:
        found = httpx.post(
            gateway.url + "/v1/admin/sql", json={"sql": sql}, timeout=30, headers={"authorization": f"Bearer {ADMIN}"}
        )
        assert found.status_code == 200, found.text
        rows: list[list[Any]] = found.json()["rows"]
        if len(rows) >= expected or time.time() > deadline:
            return rows
        time.sleep(0.1)


def test_the_header_caps_routing_and_says_so(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    gateway = start_gateway(config(upstream, tmp_path))
    body = {"model": "auto", "messages": CRITICAL}
    uncapped = post(gateway, body)
    assert uncapped.status_code == 200 and uncapped.headers["x-gateway-tier"] == "L3"  # what it would be
    assert models_called(upstream) == ["premium-max"]

    capped = post(gateway, body, **{CEILING: "L1"})
    assert capped.status_code == 200, capped.text
    assert capped.headers["x-gateway-tier"] == "L1" and capped.headers["x-gateway-model"] == "cheap-mini"
    reasons = capped.headers["x-gateway-route-reason"].split(",")
    assert "ceiling:request_L1" in reasons and "tier:capped_L3->L1" in reasons
    assert capped.json()["model"] == "cheap-mini" and models_called(upstream)[-1] == "cheap-mini"

    # Case does not matter; a stream is capped the same way.
    with httpx.stream(
        "POST", gateway.url + "/v1/chat/completions", json={**body, "stream": True}, headers={CEILING: "l0"}, timeout=20
    ) as streamed:
        assert streamed.status_code == 200 and streamed.headers["x-gateway-tier"] == "L0"
        assert "data: [DONE]" in streamed.read().decode()
    assert models_called(upstream)[-1] == "free-small"

    # A tier asked for by name is capped too; the dry run explains the ceiling.
    named = post(gateway, {"model": "L3", "messages": HELLO}, **{CEILING: "L1"})
    assert named.status_code == 200 and named.headers["x-gateway-tier"] == "L1"
    dry = post(gateway, {"dryRun": True, "messages": CRITICAL}, "/v1/route", **{CEILING: "L2"}).json()
    assert dry["maxTier"] == "L2" and dry["tier"] == "L2" and dry["escalation"] == []
    assert "ceiling:request_L2" in dry["reasons"]
    assert post(gateway, {"dryRun": True, "messages": CRITICAL}, "/v1/route").json()["maxTier"] == "L3"


def test_automatic_escalation_stops_at_the_header(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    gateway = start_gateway(config(upstream, tmp_path, auto_escalate=True))
    body = {"model": "auto", "messages": HELLO}
    # Without the header, two failing tiers end at L2.
    upstream.script.extend([{"status": "503"}, {"empty": "1"}, {}])
    free = post(gateway, body)
    assert free.status_code == 200 and free.headers["x-gateway-tier"] == "L2"
    assert models_called(upstream) == ["free-small", "cheap-mini", "mid-large"]

    upstream.requests.clear()
    upstream.script.extend([{"status": "503"}, {"empty": "1"}])
    capped = post(gateway, body, **{CEILING: "L1"})
    assert capped.status_code == 200, capped.text  # the flawed L1 answer beats an error: nothing above to ask
    assert capped.headers["x-gateway-tier"] == "L1" and capped.headers["x-gateway-escalated-from"] == "L0"
    assert models_called(upstream) == ["free-small", "cheap-mini"]
    # The rejected empty answer of the first request has its own row; the one kept here is costed once.
    rows = usage(gateway, "SELECT routed_model, coalesce(error_type, 'answer') FROM usage WHERE cost_usd > 0", 3)
    assert sorted(map(tuple, rows)) == [
        ("cheap-mini", "answer"),
        ("cheap-mini", "rejected_empty"),
        ("mid-large", "answer"),
    ]
    # The first request paid for the thrown-away L1 answer too: its total says so, its own cost does not.
    thrown_away = usage(gateway, "SELECT cost_usd FROM usage WHERE error_type = 'rejected_empty'", 1)[0][0]
    assert "x-gateway-cost-total" not in capped.headers
    assert Decimal(free.headers["x-gateway-cost-total"]) == Decimal(free.headers["x-gateway-cost"]) + Decimal(
        str(thrown_away)
    )

    upstream.requests.clear()
    upstream.script.extend([{"status": "503"}, {"status": "503"}])
    failed = post(gateway, body, **{CEILING: "L1"})
    assert failed.status_code == 503
    assert_error_shape(failed.json())
    assert models_called(upstream) == ["free-small", "cheap-mini"]


def test_no_escalation_is_proposed_above_the_header(
    start_gateway: Start, upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(config(upstream, tmp_path, auto_escalate=False))
    body = {"model": "auto", "messages": HELLO}
    upstream.script.append({"empty": "1"})
    assert post(gateway, body).status_code == 402  # without the header, L1 is proposed

    upstream.script.append({"empty": "1"})
    capped = post(gateway, body, **{CEILING: "L0"})
    assert capped.status_code == 200 and capped.headers["x-gateway-tier"] == "L0"
    assert models_called(upstream) == ["free-small", "free-small"]

    # An approval token takes a repeat only as high as that repeat's own header allows.
    upstream.script.extend([{"empty": "1"}, {"empty": "1"}])
    token = post(gateway, body, **{CEILING: "L1"}).json()["error"]["escalation"]
    assert token["proposedTier"] == "L1"  # L0 failed; L1 is the highest the request may go
    approved = post(gateway, body, **{CEILING: "L0", "x-gateway-approve-escalation": token["approvalToken"]})
    assert approved.status_code == 200 and approved.headers["x-gateway-tier"] == "L0"
    assert "cheap-mini" not in models_called(upstream)


def test_the_header_cannot_raise_a_tokens_ceiling(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    gateway = start_gateway(config(upstream, tmp_path))
    secret = create_token(gateway.url, project="capped", limits={"max_tier": "L1"})["secret"]
    auth = {"authorization": f"Bearer {secret}"}
    raised = post(gateway, {"model": "auto", "messages": CRITICAL}, **auth, **{CEILING: "L3"})
    assert raised.status_code == 200 and raised.headers["x-gateway-tier"] == "L1"
    assert "ceiling:request_L3" not in raised.headers["x-gateway-route-reason"]
    named = post(gateway, {"model": "premium-max", "messages": HELLO}, **auth, **{CEILING: "L3"})
    assert named.status_code == 403
    assert_error_shape(named.json(), code="tier_not_allowed")  # the token's limit, not the header's
    lowered = post(gateway, {"model": "auto", "messages": CRITICAL}, **auth, **{CEILING: "L0"})
    assert lowered.status_code == 200 and lowered.headers["x-gateway-tier"] == "L0"
    assert "premium-max" not in models_called(upstream)


def test_bad_values_are_a_400_on_every_endpoint(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    gateway = start_gateway(config(upstream, tmp_path))
    body = {"model": "auto", "messages": HELLO, "message": "hi", "task": "write hello world"}
    for path in ("/v1/chat/completions", "/v1/code-agent", "/v1/chat", "/v1/mcp-cli", "/v1/route", "/v1/responses"):
        for value in ("L4", "high", "", "L1,L2", "1"):
            response = post(
                gateway, {**body, "input": "hi"} if path == "/v1/responses" else body, path, **{CEILING: value}
            )
            assert response.status_code == 400, (path, value, response.text)
            error = assert_error_shape(response.json(), code="invalid_value")
            assert error["param"] == CEILING and "L0, L1, L2, L3" in error["message"]
    messages = post(gateway, {"model": "auto", "max_tokens": 10, "messages": HELLO}, "/v1/messages", **{CEILING: "L9"})
    assert messages.status_code == 400 and "x-gateway-max-tier" in messages.json()["error"]["message"]
    assert upstream.requests == []


def test_nothing_under_the_header_is_a_clear_403(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    raw = config(upstream, tmp_path)
    gateway = start_gateway(raw)
    named = post(gateway, {"model": "premium-max", "messages": HELLO}, **{CEILING: "L2"})
    assert named.status_code == 403
    error = assert_error_shape(named.json(), code="tier_ceiling")
    assert error["param"] == CEILING and "premium-max" in error["message"] and "L2" in error["message"]

    raw["models"] = [m for m in raw["models"] if m["tier"] in ("L2", "L3")]
    raw["routing"]["aliases"] = {}
    raw["server"]["data_dir"] = str(tmp_path / "upper-only")
    upper_only = start_gateway(raw)
    empty = post(upper_only, {"model": "auto", "messages": HELLO}, **{CEILING: "L1"})
    assert empty.status_code == 403
    assert "L1" in assert_error_shape(empty.json(), code="tier_ceiling")["message"]
    assert upstream.requests == []


def test_cross_check_stays_under_the_header(
    start_gateway: Start, upstream: FakeUpstream, anthropic_upstream: FakeUpstream, tmp_path: Path
) -> None:
    gateway = start_gateway(
        config(upstream, tmp_path, anthropic_upstream.url, cross_check=True, cross_check_judge="premium-max")
    )
    ask = {"model": "auto", "messages": [{"role": "user", "content": "What is the answer to everything?"}]}
    high = {"x-gateway-quality": "high"}  # L1 answers; the other provider's model is claude-mid (L2)
    upstream.script.append({"text": "The answer is forty two"})
    anthropic_upstream.script.append({"text": "The answer is forty two."})
    checked = post(gateway, ask, **high)
    assert checked.headers["x-gateway-cross-check"] == "agreed" and len(anthropic_upstream.requests) == 1

    upstream.script.append({"text": "The answer is forty two"})
    skipped = post(gateway, ask, **high, **{CEILING: "L1"})
    assert skipped.status_code == 200 and skipped.headers["x-gateway-cross-check"] == "skipped"
    assert len(anthropic_upstream.requests) == 1  # claude-mid (L2) was not asked

    # Under L2 the second opinion is allowed, but the judge (premium-max, L3) is not.
    upstream.script.append({"text": "The answer is forty two"})
    anthropic_upstream.script.append({"text": "Nobody knows; it depends on the question"})
    unjudged = post(gateway, ask, **high, **{CEILING: "L2"})
    assert unjudged.headers["x-gateway-cross-check"] == "disagreed"
    assert "premium-max" not in models_called(upstream)


def test_the_seed_endpoints_honour_the_header(start_gateway: Start, upstream: FakeUpstream, tmp_path: Path) -> None:
    gateway = start_gateway(config(upstream, tmp_path))
    task = CRITICAL[0]["content"]
    agent = post(gateway, {"task": task}, "/v1/code-agent")
    assert agent.status_code == 200 and agent.json()["routing"]["tier"] == "L3"  # what it would be
    for path, body in [
        ("/v1/code-agent", {"task": task}),
        ("/v1/chat", {"message": task}),
        ("/v1/mcp-cli", {"mode": "code", "message": task}),
        ("/v1/mcp-cli", {"mode": "chat", "message": task, "conversationId": "cli-ceiling"}),
        ("/v1/route", {"message": task}),
    ]:
        upstream.requests.clear()
        response = post(gateway, body, path, **{CEILING: "L1"})
        assert response.status_code == 200, (path, response.text)
        assert models_called(upstream) == ["cheap-mini"], path
        tier = (response.json().get("routing") or {}).get("tier") or response.headers.get("x-gateway-tier")
        assert tier == "L1", path
