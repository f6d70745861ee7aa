"""Passive health of providers and models, with a circuit breaker.

Nothing is probed: every upstream call reports its outcome (`record`), and
the board keeps, per provider and per model, the recent outcomes, latency and
a circuit:

    closed --(N consecutive failures, or error rate over the window)--> open
    open --(cooldown elapsed)--> half_open: one trial call is let through
    half_open --success--> closed        half_open --failure--> open again

The router orders candidates by it (usable first) and the dispatcher asks
`admit` before each call. The board lives in each worker's memory, so the
request path never waits on the network. With Redis, a `HealthShare`
(`health_share.py`) also counts every failure across all workers and replicas
and tells every board of each circuit change, so a provider that fails on one
worker is open on all of them within milliseconds; successes on a closed
circuit cost nothing. A trial call that never reports (its client went away)
is presumed lost after one cooldown, and another one is let through.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..config import HealthConfig

log = logging.getLogger("proxy.health")

CircuitState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class SharedCircuit:
    """A circuit as every worker sees it: what a `HealthShare` stores and announces."""

    state: Literal["closed", "open"]
    opened_at: float  # on Redis's clock: tells one opening from the next
    age: float  # seconds since it opened, on Redis's clock at the time of the announcement
    failures: int  # failures counted by all workers within `failure_window_seconds`
    version: int  # grows with every change; an older announcement is ignored
    epoch: str = ""  # names the stored record: a record stored anew (Redis flushed) starts its versions again
    error: str | None = None


class HealthShare(Protocol):
    """Where a board sends its outcomes to be shared, and claims a half-open trial for everyone."""

    available: bool  # False while the shared store cannot be reached (the board is on its own then)

    def send(self, key: str, *, ok: bool, tripped: bool, error: str | None) -> None: ...

    async def claim_trial(self, key: str, lease_seconds: float) -> bool: ...


@dataclass(slots=True)
class Circuit:
    """Outcomes and breaker state of one provider or one model."""

    window: deque[bool]
    state: CircuitState = "closed"
    consecutive_failures: int = 0
    opened_at: float = 0.0
    trial_until: float = 0.0  # a half-open trial call is out until then (one cooldown at most)
    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    latency_ms: float | None = None  # exponentially weighted
    last_error: str | None = None
    # What the other workers said (with a `HealthShare`).
    version: int = 0
    epoch: str = ""
    shared_failures: int = 0
    shared_opened_at: float = 0.0

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
            "sharedFailures": self.shared_failures,
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
    # Set by a `HealthShare` when Redis is configured; None: this worker's own view only.
    share: HealthShare | None = None

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

    async def admit(self, provider: str, model: str) -> bool:
        """Let a call through: always when closed, once per cooldown when half-open.

        A shared board claims the half-open trial once for every worker; that
        is the only time this awaits the network (a closed circuit answers at once).
        """
        trials = self._reserve(provider, model)
        if trials is None:
            return False
        if trials and self.share is not None:
            for key in trials:
                if not await self.share.claim_trial(key, self.config.cooldown_seconds):
                    return False  # another worker runs the trial; its outcome reaches this board
        return True

    def _reserve(self, provider: str, model: str) -> list[str] | None:
        """None when refused, else the keys whose half-open trial this call takes."""
        now = self.clock()
        trials: list[str] = []
        for key in (_provider_key(provider), _model_key(model)):
            circuit = self.circuits.get(key)
            if circuit is None:
                continue
            state = circuit.current_state(now, self.config.cooldown_seconds)
            if state == "open" or (state == "half_open" and circuit.trial_until > now):
                return None
            if state == "half_open":
                trials.append(key)
        for key in trials:
            circuit = self.circuits[key]
            circuit.state = "half_open"
            circuit.trial_until = now + self.config.cooldown_seconds
        return trials

    def record(
        self,
        provider: str,
        model: str,
        ok: bool,
        *,
        latency_ms: float | None = None,
        error: str | None = None,
        timeout: bool = False,
        provider_wide: bool = False,
    ) -> None:
        """One call's outcome. `provider_wide` failures (connection refused, 5xx for every model) also count against the provider."""
        keys = [_model_key(model)]
        if ok or provider_wide:
            keys.append(_provider_key(provider))
        for key in keys:
            self._record(key, ok, latency_ms, error, timeout)

    def _record(self, key: str, ok: bool, latency_ms: float | None, error: str | None, timeout: bool) -> None:
        circuit = self._circuit(key)
        was = circuit.state
        circuit.calls += 1
        circuit.window.append(ok)
        circuit.trial_until = 0.0
        if latency_ms is not None:
            circuit.latency_ms = (
                latency_ms if circuit.latency_ms is None else 0.8 * circuit.latency_ms + 0.2 * latency_ms
            )
        if ok:
            if was != "closed":
                log.info("circuit %s closed again after a successful call", key)
            circuit.state = "closed"
            circuit.consecutive_failures = 0
            # Only news is shared: a success on a healthy circuit stays in this worker.
            if self.share is not None and (was != "closed" or circuit.shared_failures):
                circuit.shared_failures = 0
                self.share.send(key, ok=True, tripped=False, error=None)
            return
        circuit.failures += 1
        circuit.timeouts += timeout
        circuit.consecutive_failures += 1
        circuit.last_error = error
        recent = list(circuit.window)
        rate_tripped = (
            len(recent) >= self.config.min_calls and recent.count(False) / len(recent) >= self.config.error_rate
        )
        # A failure once the cooldown is over (the trial's, or a late one) opens it again at once.
        half_open = circuit.current_state(self.clock(), self.config.cooldown_seconds) == "half_open"
        tripped = half_open or circuit.consecutive_failures >= self.config.failure_threshold or rate_tripped
        if tripped:
            if was != "open":
                log.warning(
                    "circuit %s opened after %d consecutive failures (%s)", key, circuit.consecutive_failures, error
                )
            circuit.state = "open"
            circuit.opened_at = self.clock()
        if self.share is not None:
            self.share.send(key, ok=False, tripped=tripped, error=error)

    def apply(self, key: str, shared: SharedCircuit) -> None:
        """Take in a change another worker (or this one, through Redis) made to a circuit."""
        circuit = self._circuit(key)
        if shared.epoch == circuit.epoch and shared.version <= circuit.version:
            return  # already seen, or older than what this board knows
        circuit.version, circuit.epoch = shared.version, shared.epoch
        circuit.shared_failures = shared.failures
        # A success elsewhere (or the window moving on) also ends this worker's run of failures.
        circuit.consecutive_failures = min(circuit.consecutive_failures, shared.failures)
        if shared.state == "open":
            circuit.last_error = shared.error or circuit.last_error
            if shared.opened_at == circuit.shared_opened_at and circuit.state != "closed":
                return  # the same opening, one more failure: a trial under way stays under way
            if circuit.state == "closed":
                log.warning("circuit %s opened for every worker (%s)", key, shared.error)
            circuit.shared_opened_at = shared.opened_at
            circuit.state = "open"
            circuit.opened_at = self.clock() - shared.age
            circuit.trial_until = 0.0  # a new opening: its own trial, after its own cooldown
        elif circuit.state != "closed":
            log.info("circuit %s closed again for every worker", key)
            circuit.state = "closed"
            circuit.consecutive_failures = 0
            circuit.trial_until = 0.0

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
