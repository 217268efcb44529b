"""Replay: fold the store's notification log into projections.

The live coordinator folds only what is new (its own saves from memory, other writers'
from the log); `rebuild` starts from zero. All paths apply the same envelopes through
the same fold, so a rebuilt projection can be compared with a live one.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Recording

from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.store import WhooshStore, read_envelopes, recorded_envelopes

REPLAY_BATCH = 2000


def fold_new(store: WhooshStore, projection: FleetProjection) -> int:
    folded = 0
    while batch := read_envelopes(store, projection.position, limit=REPLAY_BATCH):
        for envelope in batch:
            projection.apply(envelope)
        folded += len(batch)
    return folded


def fold_saved(
    store: WhooshStore, projection: FleetProjection, recordings: list[Recording[Any]]
) -> None:
    """Fold what this process just saved straight from memory when it directly follows the
    projection's position; if another writer's events came in between, read the log."""
    envelopes = recorded_envelopes(recordings)
    expected = list(range(projection.position + 1, projection.position + 1 + len(envelopes)))
    if [e.notification_id for e in envelopes] != expected:
        fold_new(store, projection)
        return
    for envelope in envelopes:
        projection.apply(envelope)


def rebuild(store: WhooshStore) -> FleetProjection:
    projection = FleetProjection()
    fold_new(store, projection)
    return projection
