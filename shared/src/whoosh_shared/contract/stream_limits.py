"""`nats.streams` in whoosh.yaml: how much the JetStream streams may hold.

The store is the source of truth, so the event stream is a bounded window onto it: past
its byte or age limit the oldest events go (a WebSocket resume from further back is
served from the store). The work queue holds unstarted work: at its byte limit new work
is refused (the relay retries) rather than old work silently dropped.
"""

from __future__ import annotations

from pydantic import Field

from whoosh_shared.contract.agents import Strict

GIB = 1024**3


class StreamLimits(Strict):
    events_max_bytes: int = Field(
        default=8 * GIB, ge=1024 * 1024, description="WHOOSH_EVENTS: oldest dropped beyond"
    )
    events_max_age_s: float = Field(
        default=30 * 24 * 3600.0, gt=0, description="WHOOSH_EVENTS: older events dropped"
    )
    work_max_bytes: int = Field(
        default=2 * GIB, ge=1024 * 1024, description="WHOOSH_WORK: new work refused beyond"
    )
