"""What one gateway process holds: connections and caches, never state of its own.

Everything here can be lost with the process: commands and reads go to the coordinator,
key caches refill, rate-limit counters live in NATS, metrics are the monitor's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import HTTPConnection
from whoosh_shared.contract.gateway_settings import GatewaySettings
from whoosh_shared.contract.limits import LimitSettings
from whoosh_shared.runtime.bus import Bus

from whoosh_gateway.coordinator_client import CoordinatorClient
from whoosh_gateway.event_hub import EventHub
from whoosh_gateway.key_verifier import KeyVerifier
from whoosh_gateway.metrics_proxy import MetricsProxy
from whoosh_gateway.rate_limits import RateLimiter


@dataclass
class GatewayState:
    settings: GatewaySettings
    bus: Bus
    coordinator: CoordinatorClient
    verifier: KeyVerifier
    limiter: RateLimiter
    hub: EventHub
    metrics: MetricsProxy
    limits: LimitSettings = field(default_factory=LimitSettings)


def state_of(conn: HTTPConnection) -> GatewayState:
    return conn.app.state.gateway  # type: ignore[no-any-return]
