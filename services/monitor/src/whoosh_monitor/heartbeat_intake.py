"""Heartbeats off the bus: parsed, checked, handed to health; bad ones counted, not fatal.

A heartbeat must validate against `Heartbeat` and come on its own executor's subject
(`whoosh.heartbeat.<executor id>`): one executor cannot speak for another. Rejections
are counted by reason; each source subject is logged once (at warning), so a
misbehaving sender cannot flood the log.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from pydantic import ValidationError
from whoosh_shared.contract import subjects
from whoosh_shared.contract.heartbeat import Heartbeat

log = logging.getLogger(__name__)

MAX_LOGGED_SOURCES = 1000


class HeartbeatIntake:
    def __init__(self, accept: Callable[[Heartbeat], bool]) -> None:
        """`accept(beat)` records a valid heartbeat and returns True for a new executor."""
        self.accept = accept
        self.received = 0
        self.rejected: Counter[str] = Counter()
        self._logged: set[str] = set()

    def handle(self, subject: str, data: bytes) -> Heartbeat | None:
        """The accepted heartbeat, or None when it was rejected (and counted)."""
        try:
            beat = Heartbeat.model_validate_json(data)
        except ValidationError as exc:
            self._reject(subject, "malformed", _first_error(exc))
            return None
        if subject != subjects.heartbeat(beat.executor_id):
            self._reject(subject, "wrong_subject", f"executor_id {beat.executor_id!r}")
            return None
        self.received += 1
        if self.accept(beat):
            log.info(
                "executor heartbeating",
                extra={
                    "executor_id": beat.executor_id,
                    "agent_types": [t.value for t in beat.agent_types],
                    "host": beat.host.hostname,
                },
            )
        return beat

    def _reject(self, subject: str, reason: str, detail: str) -> None:
        self.rejected[reason] += 1
        if subject in self._logged or len(self._logged) >= MAX_LOGGED_SOURCES:
            log.debug("heartbeat rejected (%s) on %s: %s", reason, subject, detail)
            return
        self._logged.add(subject)
        log.warning(
            "heartbeat rejected (%s): %s (further rejections from this sender are not logged)",
            reason,
            detail,
            extra={"subject": subject},
        )


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid"
    first = errors[0]
    loc = ".".join(str(part) for part in first["loc"]) or "message"
    return f"{loc}: {first['msg']}"[:300]
