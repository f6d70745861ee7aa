"""Passive health of providers and models, with a circuit breaker.

Nothing is probed: every upstream call reports its outcome (`record`), and
the board keeps, per provider and per model, the recent outcomes, latency and
a circuit:

    closed --(N consecutive failures, or error rate over the window)--> open
    open --(cooldown elapsed)--> half_open: one trial call is let through
    half_open --success--> closed        half_open --failure--> open again

The router orders candidates by it (usable first) and the dispatcher asks
`allow` before each call. Per worker process, in memory: health is a local
observation and goes stale quickly, so it is not shared through Redis.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..config import HealthConfig

log = logging.getLogger("proxy.health")

CircuitState = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class Circuit:
    """Outcomes and breaker state of one provider or one model."""

    window: deque[bool]
    state: CircuitState = "closed"
    consecutive_failures: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = False
    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    latency_ms: float | None = None  # exponentially weighted
    last_error: str | None = None

    def snapshot(self, now: float, cooldown: float) -> dict[str, object]:
        recent = list(self.window)
        return {
            "state": self.current_state(now, cooldown),
            "calls": self.calls,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "errorRate": round(recent.count(False) / len(recent), 3) if recent else 0.0,
            "latencyMs": round(self.latency_ms, 1) if self.latency_ms is not None else None,
            "consecutiveFailures": self.consecutive_failures,
            "lastError": self.last_error,
        }

    def current_state(self, now: float, cooldown: float) -> CircuitState:
        if self.state == "open" and now - self.opened_at >= cooldown:
            return "half_open"
        return self.state


@dataclass
class HealthBoard:
    config: HealthConfig
    clock: Callable[[], float] = time.monotonic
    circuits: dict[str, Circuit] = field(default_factory=dict)

    def _circuit(self, key: str) -> Circuit:
        circuit = self.circuits.get(key)
        if circuit is None:
            circuit = self.circuits[key] = Circuit(deque(maxlen=self.config.window))
        return circuit

    def state(self, provider: str, model: str) -> CircuitState:
        """The worse of the provider's and the model's circuit."""
        now = self.clock()
        states = [
            self.circuits[key].current_state(now, self.config.cooldown_seconds)
            for key in (_provider_key(provider), _model_key(model))
            if key in self.circuits
        ]
        if "open" in states:
            return "open"
        return "half_open" if "half_open" in states else "closed"

    def provider_state(self, provider: str) -> CircuitState:
        circuit = self.circuits.get(_provider_key(provider))
        return circuit.current_state(self.clock(), self.config.cooldown_seconds) if circuit is not None else "closed"

    def usable(self, provider: str, model: str) -> bool:
        """Would a call be let through now (without reserving the half-open trial)?"""
        return self.state(provider, model) != "open"

    def allow(self, provider: str, model: str) -> bool:
        """Let a call through: always when closed, once per cooldown when half-open."""
        now = self.clock()
        for key in (_provider_key(provider), _model_key(model)):
            circuit = self.circuits.get(key)
            if circuit is None:
                continue
            state = circuit.current_state(now, self.config.cooldown_seconds)
            if state == "open":
                return False
            if state == "half_open":
                if circuit.trial_in_flight:
                    return False
        for key in (_provider_key(provider), _model_key(model)):
            circuit = self.circuits.get(key)
            if circuit is not None and circuit.current_state(now, self.config.cooldown_seconds) == "half_open":
                circuit.state = "half_open"
                circuit.trial_in_flight = True
        return True

    def record(self, provider: str, model: str, ok: bool, *, latency_ms: float | None = None,
               error: str | None = None, timeout: bool = False, provider_wide: bool = False) -> None:
        """One call's outcome. `provider_wide` failures (connection refused, 5xx for every model) also count against the provider."""
        keys = [_model_key(model)]
        if ok or provider_wide:
            keys.append(_provider_key(provider))
        for key in keys:
            self._record(key, ok, latency_ms, error, timeout)

    def _record(self, key: str, ok: bool, latency_ms: float | None, error: str | None, timeout: bool) -> None:
        circuit = self._circuit(key)
        circuit.calls += 1
        circuit.window.append(ok)
        circuit.trial_in_flight = False
        if latency_ms is not None:
            circuit.latency_ms = latency_ms if circuit.latency_ms is None else 0.8 * circuit.latency_ms + 0.2 * latency_ms
        if ok:
            if circuit.state != "closed":
                log.info("circuit %s closed again after a successful call", key)
            circuit.state = "closed"
            circuit.consecutive_failures = 0
            return
        circuit.failures += 1
        circuit.timeouts += timeout
        circuit.consecutive_failures += 1
        circuit.last_error = error
        recent = list(circuit.window)
        rate_tripped = len(recent) >= self.config.min_calls and recent.count(False) / len(recent) >= self.config.error_rate
        if circuit.state == "half_open" or circuit.consecutive_failures >= self.config.failure_threshold or rate_tripped:
            if circuit.state != "open":
                log.warning("circuit %s opened after %d consecutive failures (%s)", key, circuit.consecutive_failures, error)
            circuit.state = "open"
            circuit.opened_at = self.clock()

    def snapshot(self) -> dict[str, dict[str, dict[str, object]]]:
        """For /health and the stats: every provider's and model's circuit."""
        now = self.clock()
        out: dict[str, dict[str, dict[str, object]]] = {"providers": {}, "models": {}}
        for key, circuit in sorted(self.circuits.items()):
            kind, _, name = key.partition(":")
            out["providers" if kind == "p" else "models"][name] = circuit.snapshot(now, self.config.cooldown_seconds)
        return out


def _provider_key(provider: str) -> str:
    return "p:" + provider


def _model_key(model: str) -> str:
    return "m:" + model
