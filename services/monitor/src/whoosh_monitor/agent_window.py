"""Each agent's recent attempts: failure ratio and mean response time over a sliding window.

Fed from the event stream (completed and failed attempts), read by the metrics and by
the alert rules. Pure, with an injected clock. An agent with fewer than `min_samples`
attempts in the window has no ratio yet (a single failure is not a 100 % failure rate).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_S = 300.0
MIN_SAMPLES = 5
MAX_KEPT = 10_000  # per agent


@dataclass
class AgentWindow:
    clock: Callable[[], float]
    window_s: float = WINDOW_S
    min_samples: int = MIN_SAMPLES
    _seen: dict[str, deque[tuple[float, bool, float | None]]] = field(default_factory=dict)

    def completed(self, agent: str, duration_s: float) -> None:
        self._add(agent, True, duration_s)

    def failed(self, agent: str) -> None:
        self._add(agent, False, None)

    def _add(self, agent: str, ok: bool, duration_s: float | None) -> None:
        self._seen.setdefault(agent, deque(maxlen=MAX_KEPT)).append((self.clock(), ok, duration_s))

    def _recent(self, agent: str) -> list[tuple[float, bool, float | None]]:
        seen = self._seen.get(agent)
        if not seen:
            return []
        cutoff = self.clock() - self.window_s
        while seen and seen[0][0] < cutoff:
            seen.popleft()
        return list(seen)

    def failure_ratio(self, agent: str) -> float | None:
        recent = self._recent(agent)
        if len(recent) < self.min_samples:
            return None
        return sum(1 for _, ok, _ in recent if not ok) / len(recent)

    def response_time(self, agent: str) -> float | None:
        """Mean duration of the attempts completed in the window."""
        durations = [d for _, ok, d in self._recent(agent) if ok and d is not None]
        return sum(durations) / len(durations) if durations else None

    def agents(self) -> list[str]:
        return [name for name in list(self._seen) if self._recent(name)]
