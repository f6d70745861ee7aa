"""Alerts fire once per cool-down into a webhook, a Slack-shaped receiver and an SMTP server; never when false."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import REDIS_URL, assert_error_shape, base_config
from tests.fakes import FakeUpstream, ServerThread, free_port, serve

ADMIN = "alerts-admin-token"
StartGateway = Callable[[dict[str, Any]], ServerThread]


class Inbox:
    def __init__(self) -> None:
        self.hooks: list[dict[str, Any]] = []
        self.slack: list[dict[str, Any]] = []
        self.mails: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd handler
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, str, int]]:
    box = Inbox()

    async def hook(request: Request) -> JSONResponse:
        box.hooks.append(await request.json())
        return JSONResponse({"ok": True})

    async def slack(request: Request) -> JSONResponse:
        body = await request.json()
        assert set(body) == {"text"}
        box.slack.append(body)
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[Route("/hook", hook, methods=["POST"]), Route("/services/T0/B0/secret", slack, methods=["POST"])]
    )
    smtp_port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        with serve(app) as receiver:
            yield box, receiver.url, smtp_port
    finally:
        controller.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize("store", ["redis", "memory"])
def test_alerts_fire_once_per_cooldown_into_every_channel(
    store: str,
    request: pytest.FixtureRequest,
    start_gateway: StartGateway,
    upstream: FakeUpstream,
    tmp_path: Path,
    inbox: tuple[Inbox, str, int],
) -> None:
    box, receiver, smtp_port = inbox
    raw = base_config(upstream.url, None, tmp_path, server={"data_dir": str(tmp_path), "admin_token": ADMIN})
    if store == "redis":
        raw.update(redis_url=REDIS_URL, redis_prefix=request.getfixturevalue("redis_prefix"))
    raw["alerts"] = {
        "interval_seconds": 0.1,
        "cost_threshold_usd": 0.0001,  # as COST_ALERT_THRESHOLD sets it
        "channels": {
            "hook": {"kind": "webhook", "url": receiver + "/hook"},
            "chat": {"kind": "slack", "url": receiver + "/services/T0/B0/secret"},
            "mail": {
                "kind": "email",
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "email_to": ["ops@example.com"],
            },
        },
        "rules": {
            "slow": {"kind": "latency_p95", "threshold": 60000, "window_seconds": 60, "min_requests": 1},
            "big_spend": {"kind": "cost", "threshold": 1000, "window_seconds": 60},
            "errors": {
                "kind": "error_rate",
                "threshold": 0.5,
                "window_seconds": 60,
                "min_requests": 3,
                "channels": ["hook"],
            },
        },
    }
    gateway = start_gateway(raw)
    headers = {"authorization": f"Bearer {ADMIN}"}
    ask = {"model": "premium-max", "max_tokens": 50, "messages": [{"role": "user", "content": "[[fake:text=ok]]"}]}

    # Nothing has happened: nothing fires, however often the rules are evaluated.
    time.sleep(0.5)
    assert box.hooks == [] and box.slack == [] and box.mails == []

    for _ in range(3):
        assert httpx.post(gateway.url + "/v1/chat/completions", json=ask).status_code == 200
    wait_for(lambda: len(box.hooks) >= 1 and len(box.slack) >= 1 and len(box.mails) >= 1)
    time.sleep(1.0)  # ten more evaluations with the condition still true: the cool-down holds
    assert len(box.hooks) == 1 and len(box.slack) == 1 and len(box.mails) == 1
    fired = box.hooks[0]
    assert fired["rule"] == "cost_threshold" and fired["kind"] == "cost" and fired["value"] > 0.0001
    assert "cost_threshold" in box.slack[0]["text"] and "$" in box.slack[0]["text"]
    assert box.mails[0]["To"] == "ops@example.com" and "cost_threshold" in box.mails[0]["Subject"]

    # Failing requests pass the error-rate rule, which notifies the webhook only.
    failing = {**ask, "messages": [{"role": "user", "content": "[[fake:status=500]]"}]}
    for _ in range(6):
        assert httpx.post(gateway.url + "/v1/chat/completions", json=failing).status_code >= 500
    wait_for(lambda: len(box.hooks) == 2)
    time.sleep(0.5)
    assert [h["rule"] for h in box.hooks] == ["cost_threshold", "errors"] and len(box.slack) == 1

    firings = httpx.get(gateway.url + "/admin/alerts/firings", headers=headers).json()["data"]
    assert [f["rule"] for f in firings] == ["errors", "cost_threshold"]
    assert firings[1]["deliveries"] == {"hook": "sent", "chat": "sent", "mail": "sent"}
    assert not any(f["rule"] in ("slow", "big_spend") for f in firings)


def test_rules_and_channels_are_managed_through_the_admin_api(
    start_gateway: StartGateway,
    upstream: FakeUpstream,
    tmp_path: Path,
    inbox: tuple[Inbox, str, int],
    redis_prefix: str,
) -> None:
    box, receiver, _ = inbox
    raw = base_config(
        upstream.url,
        None,
        tmp_path,
        server={"data_dir": str(tmp_path), "admin_token": ADMIN},
        redis_url=REDIS_URL,
        redis_prefix=redis_prefix,
        alerts={"interval_seconds": 0.1},
    )
    gateway = start_gateway(raw)
    with httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN}"}) as admin:
        created = admin.put(
            "/admin/alerts/channels/team-slack", json={"kind": "slack", "url": receiver + "/services/T0/B0/secret"}
        )
        assert created.status_code == 200 and "secret" not in created.text
        assert "secret" not in admin.get("/admin/alerts/channels").text
        bad = admin.put("/admin/alerts/channels/broken", json={"kind": "email"})
        assert bad.status_code == 400 and "smtp_host" in assert_error_shape(bad.json())["message"]
        rule = {
            "kind": "provider_down",
            "threshold": 1.0,
            "window_seconds": 60,
            "min_requests": 2,
            "cooldown_seconds": 3600,
        }
        assert admin.put("/admin/alerts/rules/fakeai-down", json=rule).status_code == 200
        assert [r["name"] for r in admin.get("/admin/alerts/rules").json()["data"]] == ["fakeai-down"]

        down = {"model": "cheap-mini", "messages": [{"role": "user", "content": "[[fake:status=503]]"}]}
        for _ in range(3):
            httpx.post(gateway.url + "/v1/chat/completions", json=down)
        wait_for(lambda: len(box.slack) == 1)
        assert "provider fakeai is down" in box.slack[0]["text"]
        # A firing is recorded (with each channel's delivery result) just after it is delivered.
        wait_for(lambda: bool(admin.get("/admin/alerts/firings").json()["data"]))
        assert admin.get("/admin/alerts/firings").json()["data"][0]["subject"] == "fakeai"

        assert admin.delete("/admin/alerts/rules/fakeai-down").status_code == 200
        assert admin.get("/admin/alerts/rules").json()["data"] == []
        assert httpx.get(gateway.url + "/admin/alerts/firings").status_code == 401


def test_latency_samples_stay_bounded_and_keep_the_p95() -> None:
    """A busy minute keeps a uniform sample of latencies, not every one (the 10-minute soak grew without it)."""
    import asyncio

    from proxy.alerts.metrics import MAX_LATENCIES, LiveMetrics
    from proxy.types import UsageEvent

    live = LiveMetrics(None, "unused:")
    start = 1_800_000_000.0  # the start of a minute

    async def scenario() -> float | None:
        for flush in range(3):
            for index in range(10_000):
                live.observe(
                    UsageEvent(
                        request_id=f"r{flush}-{index}",
                        started_at=start + 1,
                        endpoint="chat",
                        latency_ms=float(index % 1000),
                    )
                )
            assert max(len(f.latencies) for f in live.pending.values()) == MAX_LATENCIES
            await live.flush(3600, 3600, now=start + 30)
            assert len(live.local[int(start)].latencies) == MAX_LATENCIES
        window = await live.window(60, start + 30)
        assert window.requests == 30_000
        # Without a latency rule looking back that far, the minute keeps its counts, not its latencies;
        # past the longest window it is gone.
        await live.flush(7200, 600, now=start + 3600)
        assert live.local[int(start)].requests == 30_000 and live.local[int(start)].latencies == []
        await live.flush(3600, 0, now=start + 7300)
        assert int(start) not in live.local
        return window.p95()

    p95 = asyncio.run(scenario())
    assert p95 is not None and 920 <= p95 <= 980  # the exact p95 of 0..999 repeated is 949
