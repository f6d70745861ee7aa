"""Alerts: live figures fed by the request path, rules evaluated periodically, channels notified."""

from .engine import AlertEngine

__all__ = ["AlertEngine"]
