"""Where alerts go: a generic JSON webhook, a Slack incoming webhook, email over SMTP."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

import httpx

from ..config import AlertChannel


async def send(channel: AlertChannel, firing: dict[str, Any], client: httpx.AsyncClient) -> None:
    """Deliver one firing; raise on failure (the caller records it)."""
    if channel.kind == "webhook":
        assert channel.url is not None
        response = await client.post(channel.url, json=firing)
        response.raise_for_status()
    elif channel.kind == "slack":
        assert channel.url is not None
        response = await client.post(channel.url, json={"text": f":rotating_light: {firing['message']}"})
        response.raise_for_status()
    else:
        await asyncio.to_thread(_send_email, channel, firing)


def _send_email(channel: AlertChannel, firing: dict[str, Any]) -> None:
    message = EmailMessage()
    message["Subject"] = f"[aigw alert] {firing['rule']}: {firing['kind']}"
    message["From"] = channel.email_from
    message["To"] = ", ".join(channel.email_to)
    message.set_content(
        firing["message"] + "\n\n" + "\n".join(f"{k}: {v}" for k, v in firing.items() if k != "message")
    )
    assert channel.smtp_host is not None
    with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=10) as smtp:
        if channel.smtp_starttls:
            smtp.starttls()
        if channel.smtp_username:
            smtp.login(channel.smtp_username, channel.smtp_password or "")
        smtp.send_message(message)
