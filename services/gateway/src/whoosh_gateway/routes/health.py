"""`/healthz` (the process answers) and `/readyz` (NATS and a coordinator answer)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from whoosh_shared.contract.queries import GetStats
from whoosh_shared.runtime.bus import Bus, BusError

from whoosh_gateway.api_models import Health, Readiness
from whoosh_gateway.gateway_state import state_of

router = APIRouter(tags=["health"])
READY_TIMEOUT_S = 2.0


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "not ready"}},
    summary="Readiness: NATS connected and a coordinator answering",
)
async def readyz(request: Request) -> JSONResponse:
    state = state_of(request)
    bus = state.bus
    nats_ok = bus.nc is not None and bus.nc.is_connected
    down = await _coordinator_down(bus) if nats_ok else None
    coordinator_ok = down is not None
    if down is not None:
        down.update(state.hub.health.down_now())  # this gateway's own loops
    ready = coordinator_ok and not down
    if ready:
        detail = ""
    elif not nats_ok:
        detail = "NATS not connected"
    elif not coordinator_ok:
        detail = "no coordinator"
    else:
        detail = "down: " + "; ".join(f"{name} ({why})" for name, why in (down or {}).items())
    body = Readiness(
        status="ready" if ready else "not_ready",
        nats=nats_ok,
        coordinator=coordinator_ok,
        detail=detail,
        down=down or {},
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _coordinator_down(bus: Bus) -> dict[str, str] | None:
    """The answering coordinator's loops that are down (empty: all well); None when no
    coordinator answers."""
    try:
        reply = await bus.ask(GetStats(), READY_TIMEOUT_S)
    except BusError:
        return None
    if reply.status != "ok" or reply.result is None:
        return None
    return dict(reply.result.get("down") or {})
