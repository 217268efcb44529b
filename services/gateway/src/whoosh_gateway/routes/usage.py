"""`GET /api/v1/usage`: tokens, cost and time per submitting key, agent and model, since
the store began (budgets, at `/api/v1/budgets`, count only their own scope and period)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from whoosh_shared.contract.usage import GetUsage, UsageReport

from whoosh_gateway.access import Viewer
from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ERROR_RESPONSES
from whoosh_gateway.gateway_state import state_of

router = APIRouter(tags=["budgets"], responses=ERROR_RESPONSES)


@router.get("/usage", response_model=UsageReport, summary="Usage per key, agent and model")
async def usage(request: Request, caller: Caller = Viewer) -> UsageReport:
    return await state_of(request).coordinator.ask(GetUsage(), UsageReport)
