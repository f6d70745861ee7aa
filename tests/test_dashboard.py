"""The admin dashboard in headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.conftest import base_config
from tests.fakes import FakeUpstream, ServerThread

ADMIN = "dash-admin-token"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed: apt-get install -y chromium (.ci/run does this)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def dash(
    start_gateway: Callable[[dict[str, Any]], ServerThread],
    upstream: FakeUpstream,
    anthropic_upstream: FakeUpstream,
    tmp_path: Path,
) -> ServerThread:
    raw = base_config(
        upstream.url, anthropic_upstream.url, tmp_path, server={"data_dir": str(tmp_path), "admin_token": ADMIN}
    )
    return start_gateway(raw)


@pytest.fixture
def page(browser: Browser, dash: ServerThread) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.expected_console_errors = []  # type: ignore[attr-defined]
    yield page
    context.close()
    unexpected = [e for e in errors if not any(x in e for x in page.expected_console_errors)]  # type: ignore[attr-defined]
    assert unexpected == [], f"console errors: {unexpected}"


def login(page: Page, url: str) -> None:
    page.goto(url + "/dashboard/")
    page.fill("#login-token", ADMIN)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#shell")).to_be_visible()


def _route(url: str, model: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}
    )


def test_login_refuses_a_wrong_token(page: Page, dash: ServerThread) -> None:
    page.expected_console_errors.append("status of 401")  # type: ignore[attr-defined]
    page.goto(dash.url + "/dashboard")
    page.fill("#login-token", "wrong")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("That is not the admin token.")
    login(page, dash.url)
    expect(page.locator("main#page h1")).to_have_text("Overview")


def test_every_page_opens(page: Page, dash: ServerThread) -> None:
    login(page, dash.url)
    for name, heading in (
        ("overview", "Overview"),
        ("analytics", "Analytics"),
        ("tokens", "Gateway tokens"),
        ("logs", "Logs"),
        ("providers", "Providers"),
        ("models", "Models"),
        ("alerts", "Alerts"),
        ("settings", "Settings"),
    ):
        page.click(f"#nav a[data-page={name}]")
        expect(page.locator("main#page h1")).to_have_text(heading)
        page.wait_for_timeout(300)


def test_disabling_a_provider_steers_routing(page: Page, dash: ServerThread) -> None:
    assert _route(dash.url, "L2").headers["x-gateway-model"] == "claude-mid"
    login(page, dash.url)
    page.click("#nav a[data-page=providers]")
    page.click("button[data-toggle=fakeanthropic]")
    expect(page.locator("button[data-toggle=fakeanthropic]")).to_have_text("Enable")
    assert _route(dash.url, "L2").headers["x-gateway-model"] != "claude-mid"


def test_a_setting_takes_effect(page: Page, dash: ServerThread) -> None:
    assert _route(dash.url, "auto").headers["x-gateway-tier"] == "L0"
    login(page, dash.url)
    page.click("#nav a[data-page=settings]")
    page.select_option("#set-default_tier", "L1")
    page.click("#settings-save")
    expect(page.locator(".toast")).to_have_text("settings saved")
    assert _route(dash.url, "auto").headers["x-gateway-tier"] == "L1"


def test_models_page_moves_a_model_and_switches_a_tier(page: Page, dash: ServerThread) -> None:
    login(page, dash.url)
    page.click("#nav a[data-page=models]")
    page.select_option("select[data-move=premium-max]", "L2")
    expect(page.locator(".toast")).to_contain_text("premium-max moved to L2")
    page.click("button[data-tier=L0]")
    expect(page.locator("button[data-tier=L0]")).to_have_text("L0: off")
    response = _route(dash.url, "L0")
    assert response.headers["x-gateway-tier"] != "L0"


def test_live_log_tail_shows_gateway_log_lines(page: Page, dash: ServerThread) -> None:
    login(page, dash.url)
    page.click("#nav a[data-page=logs]")
    page.wait_for_timeout(500)
    bad = httpx.patch(
        dash.url + "/admin/config",
        headers={"authorization": f"Bearer {ADMIN}"},
        json={"routing": {"default_tier": "L1"}},
    )
    assert bad.status_code == 200
    expect(page.locator("#log-view")).to_contain_text("config reloaded", timeout=10_000)


def test_phone_layout_has_a_menu(browser: Browser, dash: ServerThread) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        login(page, dash.url)
        expect(page.locator("#nav")).to_be_hidden()
        page.click("#menu")
        page.click("#nav a[data-page=models]")
        expect(page.locator("main#page h1")).to_have_text("Models")
    finally:
        context.close()


def test_requests_appear_on_overview_and_in_the_request_log(page: Page, dash: ServerThread) -> None:
    import openai

    with openai.OpenAI(base_url=dash.url + "/v1", api_key="unused", max_retries=0) as sdk:
        for index in range(3):
            sdk.chat.completions.create(model="L1", messages=[{"role": "user", "content": f"dashboard {index}"}])
    login(page, dash.url)
    expect(page.locator("#stat-requests")).to_have_text("3", timeout=10_000)
    page.click("#nav a[data-page=logs]")
    expect(page.locator("#request-log tbody tr")).to_have_count(3, timeout=10_000)
    expect(page.locator("#request-log")).to_contain_text("cheap-mini")


def test_a_token_created_in_the_dashboard_works_until_revoked(page: Page, dash: ServerThread) -> None:
    login(page, dash.url)
    page.click("#nav a[data-page=tokens]")
    page.fill("#token-name", "from-dashboard")
    page.fill("#token-project", "dash")
    page.click("#token-create")
    secret = page.locator("#token-secret").inner_text(timeout=10_000).strip()
    assert secret
    body = {"model": "L0", "messages": [{"role": "user", "content": "with token"}]}
    ok = httpx.post(dash.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"})
    assert ok.status_code == 200, ok.text
    page.click("#token-list button[data-revoke]")
    expect(page.locator("#token-list .badge.revoked")).to_have_count(1)
    refused = httpx.post(dash.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"})
    assert refused.status_code == 401
    # With tokens in play the gateway is closed, but the admin API (SQL included) keeps its own guard.
    page.click("#nav a[data-page=overview]")
    expect(page.locator("#stat-requests")).to_have_text("1", timeout=10_000)


def test_alert_rules_and_channels_are_managed_and_tested(page: Page, dash: ServerThread) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.fakes import serve

    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({"ok": True})

    with serve(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        login(page, dash.url)
        page.click("#nav a[data-page=alerts]")
        page.fill("#channel-form input[name=name]", "ops")
        page.fill("#channel-form input[name=url]", receiver.url + "/hook")
        page.click("#channel-form button[type=submit]")
        page.click("button[data-channel-test=ops]")
        expect(page.locator(".toast").last).to_have_text("test through ops: sent")
        assert received and "Test message" in str(received[0])

        page.fill("#rule-form input[name=name]", "spend")
        page.select_option("#rule-form select[name=kind]", "cost")
        page.fill("#rule-form input[name=threshold]", "5")
        page.click("#rule-form button[type=submit]")
        expect(page.locator("button[data-rule-toggle=spend]")).to_have_text("on")
        page.click("button[data-rule-toggle=spend]")
        expect(page.locator("button[data-rule-toggle=spend]")).to_have_text("off")
    rules = httpx.get(dash.url + "/admin/alerts/rules", headers={"authorization": f"Bearer {ADMIN}"}).json()["data"]
    assert [(r["name"], r["kind"], r["threshold"], r["enabled"]) for r in rules] == [("spend", "cost", 5.0, False)]
