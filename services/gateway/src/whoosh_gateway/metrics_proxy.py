"""The monitor's Prometheus metrics, fetched on demand and served again by the gateway.

Why a proxy: the monitor listens inside the deployment's network (unpublished), while
the gateway is the one published port with API keys. A scraper or a person with a viewer
key reads `/metrics` here without a second port being opened.

Every way the fetch can go wrong becomes an `ApiError` in the shared error shape: not
configured (404), the monitor unreachable or answering an error (502), or too slow as a
whole (504). Nothing is cached: each request is one fetch, so the numbers are the
monitor's own at that moment.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from pydantic import BaseModel

from whoosh_gateway.errors import ApiError

log = logging.getLogger(__name__)

# prometheus_client's classic text format: what the monitor answers unless asked for
# OpenMetrics, and what we claim when it names no type at all.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_FORMAT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
NOT_CONFIGURED = (
    "the metrics proxy is not configured: set gateway.monitor_metrics_url "
    "(WHOOSH__GATEWAY__MONITOR_METRICS_URL) to the monitor's /metrics URL"
)


class MetricsPage(BaseModel):
    """One successful fetch: the exposition text as the monitor sent it, and its type."""

    body: bytes
    content_type: str


class MetricsProxy:
    """Fetches the monitor's /metrics with a bounded time; one HTTP client per gateway."""

    def __init__(self, url: str | None, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """The client only where there is a monitor to reach (the app's lifespan calls it)."""
        if self.url is not None and self._client is None:
            # trust_env off: the monitor is on the deployment's own network, never behind
            # the HTTP(S)_PROXY a container may carry for the outside world.
            self._client = httpx.AsyncClient(timeout=self.timeout_s, trust_env=False)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def fetch(self, accept: str | None) -> MetricsPage:
        """The monitor's metrics, in the format `accept` asks for (Prometheus negotiates
        OpenMetrics this way); an `ApiError` for each way the fetch fails."""
        if self.url is None or self._client is None:
            raise ApiError(404, "not_configured", NOT_CONFIGURED)
        try:
            async with asyncio.timeout(self.timeout_s):  # httpx bounds each phase, not the sum
                headers = {"Accept": accept} if accept else {}
                response = await self._client.get(self.url, headers=headers)  # body read too
        except (TimeoutError, httpx.TimeoutException):
            raise self._failure(
                504, "monitor_timeout", f"did not answer within {self.timeout_s:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise self._failure(502, "monitor_unreachable", describe(exc)) from None
        if response.status_code != 200:
            raise self._failure(502, "monitor_error", f"answered HTTP {response.status_code}")
        content_type = response.headers.get("content-type") or TEXT_FORMAT
        return MetricsPage(body=response.content, content_type=content_type)

    def _failure(self, status: int, code: str, what: str) -> ApiError:
        message = f"the monitor at {self.url} {what}"
        log.warning("metrics proxy: %s", message)
        return ApiError(status, code, message)


def describe(exc: httpx.HTTPError) -> str:
    """'cannot be reached (ConnectError: [Errno 111] Connection refused)': the cause in a
    line, for the operator reading the 502."""
    detail = str(exc) or "no detail"
    return f"cannot be reached ({type(exc).__name__}: {detail})"
