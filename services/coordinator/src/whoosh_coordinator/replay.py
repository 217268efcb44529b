"""Replay: fold the store's notification log into projections.

The live coordinator folds only what is new; `rebuild` starts from zero. Both go
through `fold_new`, so a rebuilt projection can be compared with a live one.
"""

from __future__ import annotations

from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.store import WhooshStore, read_envelopes

REPLAY_BATCH = 2000


def fold_new(store: WhooshStore, projection: FleetProjection) -> int:
    folded = 0
    while batch := read_envelopes(store, projection.position, limit=REPLAY_BATCH):
        for envelope in batch:
            projection.apply(envelope)
        folded += len(batch)
    return folded


def rebuild(store: WhooshStore) -> FleetProjection:
    projection = FleetProjection()
    fold_new(store, projection)
    return projection
