"""A small HTTP client for the `aigw` commands that talk to a running gateway.

Errors are translated here, at the one boundary with httpx:

    CliError                    exit 1 (a message for stderr and an exit code)
      GatewayUnreachable        exit 3  nothing answered at the URL
      ApiError                  exit 1  the gateway answered with an OpenAI-shaped error
        EscalationRequired      exit 1  a paid tier needs the user's approval

`escalation_required` is answered by asking (`approve`), then repeating the
request once with `x-gateway-approve-escalation: <token>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from ..config import CliSettings

JSON = dict[str, Any]
APPROVE_HEADER = "x-gateway-approve-escalation"


class CliError(Exception):
    """Something the user must read on stderr; `exit_code` says how the command ends."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class GatewayUnreachable(CliError):
    exit_code = 3


class ApiError(CliError):
    """The gateway's `{"error": {...}}`, kept whole for `--json` and for escalation."""

    def __init__(self, status: int, error: JSON) -> None:
        self.status = status
        self.error = error
        self.code = str(error.get("code") or error.get("type") or "error")
        super().__init__(
            f"{error.get('message') or 'the gateway answered HTTP ' + str(status)} ({self.code}, HTTP {status})"
        )


@dataclass(frozen=True)
class Escalation:
    """What the gateway proposes: a higher tier, why, what it may cost, and the one-time token."""

    tier: str
    model: str
    reason: str
    estimated_cost: str
    token: str


class EscalationRequired(ApiError):
    def __init__(self, status: int, error: JSON) -> None:
        super().__init__(status, error)
        found = error.get("escalation")
        details: JSON = found if isinstance(found, dict) else {}
        self.escalation = Escalation(
            tier=str(details.get("proposedTier") or "a higher tier"),
            model=str(details.get("proposedModel") or ""),
            reason=str(details.get("reason") or error.get("message") or ""),
            estimated_cost=str(details.get("estimatedCostUsd") or "unknown"),
            token=str(details.get("approvalToken") or ""),
        )


Approver = Callable[[Escalation], bool]


def _error_from(status: int, content: bytes) -> ApiError:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error: JSON = body["error"]
    else:
        text = content.decode("utf-8", "replace").strip()[:300] or "no body"
        error = {"message": f"the gateway answered HTTP {status}: {text}", "type": "http_error", "code": None}
    if error.get("code") == "escalation_required":
        return EscalationRequired(status, error)
    return ApiError(status, error)


@dataclass
class Reply:
    """A JSON answer and the gateway's explanation headers."""

    body: JSON
    headers: dict[str, str]


@dataclass
class ChatStream:
    """The text deltas of a streamed chat completion; usage and errors are collected as it goes."""

    response: httpx.Response
    headers: dict[str, str] = field(default_factory=dict)
    usage: JSON | None = None
    finish_reason: str | None = None
    text: str = ""

    def deltas(self) -> Iterator[str]:
        for line in self.response.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            chunk = orjson.loads(data)
            if isinstance(chunk.get("error"), dict):
                raise _error_from(self.response.status_code, orjson.dumps(chunk))
            if chunk.get("usage"):
                self.usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                self.finish_reason = choice.get("finish_reason") or self.finish_reason
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    self.text += piece
                    yield piece


class GatewayClient:
    """One httpx client per command; `approve` decides on escalations (None: refuse them)."""

    def __init__(self, settings: CliSettings, *, approve: Approver | None = None) -> None:
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.approve = approve
        headers = {"user-agent": "aigw-cli/0.1"}
        if settings.token:
            headers["authorization"] = f"Bearer {settings.token}"
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(settings.timeout_seconds, connect=5.0)
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unreachable(self, error: httpx.HTTPError) -> GatewayUnreachable:
        if isinstance(error, httpx.TimeoutException):
            return GatewayUnreachable(f"the gateway at {self.url} did not answer in time ({type(error).__name__})")
        return GatewayUnreachable(
            f"cannot reach the gateway at {self.url} ({error}); start it with `aigw serve` "
            "or point AIGW_URL (or MCP_ENDPOINT) at a running one"
        )

    def get(self, path: str) -> Reply:
        try:
            response = self._http.get(path)
        except httpx.HTTPError as error:
            raise self._unreachable(error) from None
        if response.status_code >= 400:
            raise _error_from(response.status_code, response.content)
        return Reply(orjson.loads(response.content), dict(response.headers))

    def post(self, path: str, body: JSON, headers: dict[str, str] | None = None) -> Reply:
        """POST JSON; an `escalation_required` answer is put to `approve` and repeated once."""
        extra = dict(headers or {})
        for attempt in range(2):
            try:
                response = self._http.post(
                    path, content=orjson.dumps(body), headers={"content-type": "application/json", **extra}
                )
            except httpx.HTTPError as error:
                raise self._unreachable(error) from None
            if response.status_code < 400:
                return Reply(orjson.loads(response.content), dict(response.headers))
            error_ = _error_from(response.status_code, response.content)
            if attempt == 0 and isinstance(error_, EscalationRequired) and self._approved(error_):
                extra[APPROVE_HEADER] = error_.escalation.token
                continue
            raise error_
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def stream(self, path: str, body: JSON, headers: dict[str, str] | None = None) -> Iterator[ChatStream]:
        """POST for an SSE answer of OpenAI chunks; leaving early (Ctrl-C) drops the connection, stopping the upstream."""
        extra = dict(headers or {})
        payload = orjson.dumps({**body, "stream": True, "stream_options": {"include_usage": True}})
        for attempt in range(2):
            request = self._http.build_request(
                "POST", path, content=payload, headers={"content-type": "application/json", **extra}
            )
            try:
                response = self._http.send(request, stream=True)
            except httpx.HTTPError as error:
                raise self._unreachable(error) from None
            try:
                if response.status_code >= 400:
                    error_ = _error_from(response.status_code, response.read())
                    if attempt == 0 and isinstance(error_, EscalationRequired) and self._approved(error_):
                        extra[APPROVE_HEADER] = error_.escalation.token
                        continue
                    raise error_
                try:
                    yield ChatStream(response, headers=dict(response.headers))
                except httpx.HTTPError as error:
                    raise self._unreachable(error) from None
                return
            finally:
                response.close()

    def _approved(self, error: EscalationRequired) -> bool:
        return bool(error.escalation.token) and self.approve is not None and self.approve(error.escalation)
