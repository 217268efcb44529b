"""Per-backend circuit breaker: a backend that keeps failing is taken out of rotation.

Without it, every task routed to a dead or overloaded server would wait for a timeout
before being retried elsewhere. The breaker opens after `failure_threshold` failures
within `window_s` (or at once on a 503, where the server says plainly it is full), stays
open for a growing interval (`base_open_s` doubling up to `max_open_s`, so a backend that
is down for long is probed rarely), then lets a single trial call through (half-open).
A trial success closes it and resets the interval; a trial failure opens it again for
longer. A trial that never reports (its task was cancelled) expires after `window_s`,
so a breaker cannot stay stuck half-open. Pure logic over an injectable clock, so tests
need no sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from whoosh_executor_ollama.failures import Failure

Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"  # in rotation
    OPEN = "open"  # out of rotation until `open_until`
    HALF_OPEN = "half_open"  # one trial call may go through


class CircuitBreaker:
    """The health gate of one backend (one endpoint)."""

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        window_s: float = 30.0,
        base_open_s: float = 5.0,
        max_open_s: float = 300.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or window_s <= 0 or base_open_s <= 0 or max_open_s < base_open_s:
            raise ValueError("invalid circuit breaker settings")
        self.failure_threshold = failure_threshold
        self.window_s = window_s
        self.base_open_s = base_open_s
        self.max_open_s = max_open_s
        self._clock = clock
        self._failures: deque[float] = deque()
        self._state = BreakerState.CLOSED
        self._open_until = 0.0
        self._next_open_s = base_open_s
        self._trial_in_flight = False
        self._trial_started = 0.0

    @property
    def state(self) -> BreakerState:
        """The state now: an open breaker whose interval has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._clock() >= self._open_until:
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        if self._trial_in_flight and self._clock() - self._trial_started >= self.window_s:
            self._trial_in_flight = False  # the trial never reported: allow another
        return self._state

    @property
    def open_interval_s(self) -> float:
        """How long the next opening will last."""
        return self._next_open_s

    def retry_after_s(self) -> float:
        """Seconds until the backend may be tried again (0 when it may be now)."""
        if self.state is BreakerState.OPEN:
            return max(self._open_until - self._clock(), 0.0)
        return 0.0

    def available(self) -> bool:
        """Whether the scheduler may route to this backend now (does not take the trial)."""
        state = self.state
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and not self._trial_in_flight
        )

    def allow_request(self) -> bool:
        """Ask to send one call; in half-open only the first asker gets the trial."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            self._trial_started = self._clock()
            return True
        return False

    def record_success(self) -> None:
        """A call worked: close, forget past failures and reset the open interval."""
        self._state = BreakerState.CLOSED
        self._failures.clear()
        self._next_open_s = self.base_open_s
        self._trial_in_flight = False

    def record_failure(self, *, open_now: bool = False) -> None:
        """A call failed through the backend's fault; `open_now` for a 503."""
        now = self._clock()
        state = self.state
        if state is BreakerState.OPEN:
            return  # a late failure of a call sent before opening: already counted out
        if state is BreakerState.HALF_OPEN or open_now:
            self._open(now)
            return
        self._failures.append(now)
        while self._failures and self._failures[0] <= now - self.window_s:
            self._failures.popleft()
        if len(self._failures) >= self.failure_threshold:
            self._open(now)

    def record(self, failure: Failure | None) -> None:
        """Record a call's outcome: None is a success; request faults (404, 400) do not
        count against the backend, since the backend answered correctly."""
        if failure is None:
            self.record_success()
        elif failure.backend_fault:
            self.record_failure(open_now=failure.open_circuit)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._open_until = now + self._next_open_s
        self._next_open_s = min(self._next_open_s * 2, self.max_open_s)
        self._failures.clear()
        self._trial_in_flight = False


class BreakerBoard:
    """One breaker per backend key (the endpoint URL), created on first use."""

    def __init__(self, factory: Callable[[], CircuitBreaker] = CircuitBreaker) -> None:
        self._factory = factory
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, backend: str) -> CircuitBreaker:
        breaker = self._breakers.get(backend)
        if breaker is None:
            breaker = self._breakers[backend] = self._factory()
        return breaker

    def available(self) -> list[str]:
        """Backends known to the board that are in rotation now."""
        return [key for key, breaker in self._breakers.items() if breaker.available()]
