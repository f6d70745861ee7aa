"""Errors the gateway answers with, and the one place that knows their JSON shape.

    GatewayError                 -> {"error": {"message", "type", "param", "code"}}
      InvalidRequest      400    bad JSON, missing or mistyped fields
      AuthenticationError 401
      PermissionDenied    403
      NotFound            404    unknown model, route, conversation
      PayloadTooLarge     413
      BudgetExceeded      402    a budget would be exceeded (limit, spend, reset)
      RateLimited         429    carries Retry-After
      UpstreamError       4xx/5xx an upstream's own error, meaning kept
      UpstreamUnavailable 502/504 refused connection, timeout
      EscalationRequired  402    a paid tier needs the client's approval (token inside)
      ServiceUnavailable  503    no usable model

Lower-library errors (httpx, orjson, pydantic) are translated at the edges that
call those libraries; nothing else builds error JSON by hand. The Anthropic
Messages dialect renders the same errors in Anthropic's shape,
{"type": "error", "error": {"type", "message"}}, with `anthropic_error_json`.
"""

from __future__ import annotations

from typing import Any

import orjson


class GatewayError(Exception):
    status_code = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        if error_type is not None:
            self.error_type = error_type
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return {"error": error}

    def json(self) -> bytes:
        return orjson.dumps(self.body())


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(GatewayError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status_code = 403
    error_type = "permission_error"


class NotFound(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class PayloadTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class BudgetExceeded(GatewayError):
    status_code = 402
    error_type = "insufficient_quota"
    code = "budget_exceeded"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """An upstream answered with an error; its status and meaning are kept."""

    error_type = "upstream_error"

    def __init__(self, message: str, *, status_code: int, provider: str, **kwargs: Any) -> None:
        super().__init__(message, status_code=status_code, **kwargs)
        self.provider = provider

    @property
    def retryable(self) -> bool:
        return self.status_code == 429 or self.status_code >= 500


class UpstreamUnavailable(GatewayError):
    """No answer at all: refused connection, DNS failure or timeout."""

    status_code = 502
    error_type = "upstream_error"
    code = "upstream_unavailable"

    def __init__(self, message: str, *, provider: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.provider = provider

    retryable = True


class EscalationRequired(GatewayError):
    """The answer needs a paid tier and auto-escalation is off: the client may approve.

    The error carries `escalation: {proposedTier, fromTier, reason,
    estimatedCostUsd, approvalToken, expiresInSeconds, attempts}`; repeating the
    request with `x-gateway-approve-escalation: <approvalToken>` approves it once.
    """

    status_code = 402
    error_type = "escalation_required"
    code = "escalation_required"


class ServiceUnavailable(GatewayError):
    status_code = 503
    error_type = "server_error"
    code = "no_available_model"


def sse_error_event(error: GatewayError) -> bytes:
    """Once a stream has started the status is sent; an error travels as an event."""
    return b"data: " + error.json() + b"\n\n"


# Anthropic's error types by status; other 4xx are invalid requests, other 5xx api errors.
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_error_body(error: GatewayError) -> dict[str, Any]:
    """The same error in Anthropic's shape, for clients of `/v1/messages`."""
    status = error.status_code
    kind = _ANTHROPIC_ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def anthropic_error_json(error: GatewayError) -> bytes:
    return orjson.dumps(anthropic_error_body(error))


def anthropic_sse_error_event(error: GatewayError) -> bytes:
    """Anthropic streams carry an error as a named `error` event; its SDK raises on it."""
    return b"event: error\ndata: " + anthropic_error_json(error) + b"\n\n"
