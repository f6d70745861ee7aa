"""Take a screenshot of each dashboard page for the docs.

Starts a gateway on the built-in demo model, sends some traffic, creates a
token and an alert rule, then drives Debian's chromium through every page:
    python scripts/dashboard-screenshots.py [OUTPUT_DIR]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proxy import config_from_dict, create_app  # noqa: E402
from tests.fakes import ServerThread  # noqa: E402

ADMIN = "screenshot-admin"
PAGES = ("overview", "analytics", "tokens", "logs", "providers", "models", "alerts", "settings")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        raw = {"server": {"data_dir": data, "admin_token": ADMIN}, "providers": {"demo": {"kind": "demo"}}}
        server = ServerThread(create_app(config_from_dict(raw, env={}))).start()
        try:
            admin = {"authorization": f"Bearer {ADMIN}"}
            for index, model in enumerate(["auto", "L0", "code", "auto", "analyze"] * 4):
                httpx.post(
                    server.url + "/v1/chat/completions",
                    json={"model": model, "messages": [{"role": "user", "content": f"question {index}"}]},
                )
            httpx.put(
                server.url + "/admin/alerts/rules/daily-spend",
                headers=admin,
                json={"kind": "cost", "threshold": 5, "window_seconds": 86400},
            )
            httpx.post(server.url + "/admin/tokens", headers=admin, json={"name": "laptop", "project": "team-a"})
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=shutil.which("chromium"), headless=True, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(server.url + "/dashboard/")
                page.fill("#login-token", ADMIN)
                page.click("#login-form button[type=submit]")
                for name in PAGES:
                    page.click(f"#nav a[data-page={name}]")
                    page.wait_for_timeout(1500)
                    page.screenshot(path=str(out / f"{name}.png"), full_page=False)
                browser.close()
        finally:
            server.stop()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
