"""`/metrics`: the monitor's Prometheus metrics, through the gateway (viewer role).

At the root, next to `/healthz` and `/readyz`, because that is where scrapers look for
it; unlike those it needs a key (Prometheus sends one with `authorization:
{credentials: whk_...}` in its scrape config), as every other read does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from whoosh_gateway.access import Viewer
from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ERROR_RESPONSES, ErrorResponse
from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.metrics_proxy import OPENMETRICS_FORMAT, TEXT_FORMAT

router = APIRouter(tags=["monitoring"])

METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    200: {
        "description": "the monitor's metrics, in the format the Accept header asked for",
        "content": {
            TEXT_FORMAT.split(";")[0]: {"schema": {"type": "string"}},
            OPENMETRICS_FORMAT.split(";")[0]: {"schema": {"type": "string"}},
        },
    },
    404: {"model": ErrorResponse, "description": "not configured (gateway.monitor_metrics_url)"},
    502: {"model": ErrorResponse, "description": "the monitor is unreachable or failed"},
    504: {"model": ErrorResponse, "description": "the monitor did not answer in time"},
}


@router.get(
    "/metrics",
    response_class=Response,
    responses=METRICS_RESPONSES,
    summary="The monitor's Prometheus metrics (proxied)",
)
async def metrics(request: Request, caller: Caller = Viewer) -> Response:
    """Fetched from the monitor on each request (`gateway.monitor_metrics_url`); the body
    and its content type are the monitor's own."""
    page = await state_of(request).metrics.fetch(request.headers.get("accept"))
    return Response(content=page.body, media_type=None, headers={"Content-Type": page.content_type})
