"""Replay: fold the store's notification log into projections, from any position.

`rebuild` starts from zero; the live coordinator's Follower folds only what is new.
Both apply the same envelopes through the same fold, so a rebuilt projection can be
compared with a live one.
"""

from __future__ import annotations

from whoosh_shared.contract.events import EventEnvelope

from whoosh_coordinator.projections import FINISHED_KEPT, FleetProjection
from whoosh_coordinator.store import WhooshStore, read_envelopes

REPLAY_BATCH = 2000


def fold_new(store: WhooshStore, projection: FleetProjection) -> list[EventEnvelope]:
    """Apply every stored event after the projection's position; returns what was applied."""
    applied: list[EventEnvelope] = []
    while batch := read_envelopes(store, projection.position, limit=REPLAY_BATCH):
        for envelope in batch:
            projection.apply(envelope)
        applied.extend(batch)
    return applied


def rebuild(store: WhooshStore, finished_kept: int = FINISHED_KEPT) -> FleetProjection:
    projection = FleetProjection(finished_kept)
    fold_new(store, projection)
    return projection
