"""`/healthz` (the process answers) and `/readyz` (NATS and a coordinator answer)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

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
    bus = state_of(request).bus
    nats_ok = bus.nc is not None and bus.nc.is_connected
    coordinator_ok = nats_ok and await bus.coordinator_answers(READY_TIMEOUT_S)
    detail = "" if coordinator_ok else ("NATS not connected" if not nats_ok else "no coordinator")
    body = Readiness(
        status="ready" if coordinator_ok else "not_ready",
        nats=nats_ok,
        coordinator=coordinator_ok,
        detail=detail,
    )
    return JSONResponse(body.model_dump(), status_code=200 if coordinator_ok else 503)
