"""Keeping the live projection level with the store, cheaply.

What this process saves is folded straight from the save's recordings; only when
another writer's events came in between (a second coordinator on PostgreSQL) is the
log read. The envelopes folded most recently are kept in memory, so the embedded
relay can publish them without reading them back from the store.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from eventsourcing.persistence import Recording
from whoosh_shared.contract.events import EventEnvelope

from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.replay import fold_new
from whoosh_coordinator.store import WhooshStore, recorded_envelopes

RECENT_KEPT = 4_096
"""Envelopes kept for the embedded relay, which is usually a few events behind; further
behind, it reads the store. Bounded so that memory does not grow with work done."""


class Follower:
    def __init__(self, store: WhooshStore, projection: FleetProjection) -> None:
        self.store = store
        self.projection = projection
        self.recent: deque[EventEnvelope] = deque(maxlen=RECENT_KEPT)

    def catch_up(self) -> int:
        """Fold whatever the log holds beyond the projection (ours or another writer's)."""
        applied = fold_new(self.store, self.projection)
        self.recent.extend(applied)
        return len(applied)

    def fold_saved(self, recordings: list[Recording[Any]]) -> list[EventEnvelope]:
        """Fold what this process just saved; returns its envelopes (folded by then)."""
        envelopes = recorded_envelopes(recordings)
        first = self.projection.position + 1
        if [e.notification_id for e in envelopes] != list(range(first, first + len(envelopes))):
            self.catch_up()
            return envelopes
        for envelope in envelopes:
            self.projection.apply(envelope)
        self.recent.extend(envelopes)
        return envelopes

    def recent_after(self, position: int, limit: int) -> list[EventEnvelope] | None:
        """Folded envelopes after `position` from memory, or None if they are no longer kept."""
        if not self.recent or self.recent[0].notification_id > position + 1:
            return None  # older than what is kept (or a gap in ids): read the store
        newer: list[EventEnvelope] = []
        for envelope in reversed(self.recent):  # the relay is usually close behind
            if envelope.notification_id <= position:
                break
            newer.append(envelope)
        newer.reverse()
        return newer[:limit]
