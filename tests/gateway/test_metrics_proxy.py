"""`/metrics` on the gateway: the monitor's Prometheus metrics passed through unchanged
(body and content type, OpenMetrics when asked), and each way the monitor can fail as
the shared error shape -- never a 500.

A real gateway process (on the shared stack) pointed at a loopback stand-in for the
monitor's endpoint (metrics_double.py), whose behaviour each test switches.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
from gateway.calls import error_of
from gateway.metrics_double import SERIES, MetricsDouble, Mode
from gateway.stack import Gateway, Stack
from prometheus_client import generate_latest
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.gateway_settings import GatewaySettings

TIMEOUT_S = 0.5  # the proxying gateway's monitor_timeout_s
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture(scope="module")
def monitor() -> Iterator[MetricsDouble]:
    double = MetricsDouble(stall_s=10 * TIMEOUT_S).start()
    try:
        yield double
    finally:
        double.stop()


@pytest.fixture(scope="module")
async def proxying(stack: Stack, monitor: MetricsDouble) -> AsyncIterator[Gateway]:
    """A gateway whose monitor_metrics_url names the stand-in."""
    env = {
        "WHOOSH__GATEWAY__MONITOR_METRICS_URL": monitor.url,
        "WHOOSH__GATEWAY__MONITOR_TIMEOUT_S": str(TIMEOUT_S),
    }
    gateway = await stack.start_gateway(env=env)
    try:
        yield gateway
    finally:
        gateway.process.stop()
        stack.gateways.remove(gateway)


@pytest.fixture(autouse=True)
def healthy_monitor(monitor: MetricsDouble) -> None:
    monitor.mode = Mode.OK


async def test_a_viewer_reads_the_monitors_metrics_as_they_are(
    proxying: Gateway, monitor: MetricsDouble, keys: dict[Role, str]
) -> None:
    async with proxying.client(keys[Role.VIEWER]) as viewer:
        response = await viewer.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert f"\n{SERIES} " in response.text
    assert response.content == generate_latest(monitor.registry)  # byte for byte


async def test_openmetrics_is_served_when_the_scraper_asks_for_it(
    proxying: Gateway, keys: dict[Role, str]
) -> None:
    """Prometheus negotiates the format with Accept; the proxy passes it on."""
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    async with proxying.client(keys[Role.VIEWER]) as viewer:
        response = await viewer.get("/metrics", headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(OPENMETRICS)  # + escaping=, by version
    assert response.text.endswith("# EOF\n")


async def test_without_a_key_it_is_refused(proxying: Gateway) -> None:
    async with proxying.client() as anonymous:
        error_of(await anonymous.get("/metrics"), 401, "unauthorized")


async def test_a_gateway_without_a_monitor_url_says_it_is_not_configured(
    stack: Stack, keys: dict[Role, str]
) -> None:
    async with stack.gateway.client(keys[Role.VIEWER]) as viewer:
        message = error_of(await viewer.get("/metrics"), 404, "not_configured")
    assert "monitor_metrics_url" in message


async def test_a_failing_monitor_is_a_502_naming_its_status(
    proxying: Gateway, monitor: MetricsDouble, keys: dict[Role, str]
) -> None:
    monitor.mode = Mode.ERROR
    async with proxying.client(keys[Role.VIEWER]) as viewer:
        message = error_of(await viewer.get("/metrics"), 502, "monitor_error")
    assert "HTTP 500" in message and monitor.url in message


async def test_a_slow_monitor_is_a_504_within_the_timeout(
    proxying: Gateway, monitor: MetricsDouble, keys: dict[Role, str]
) -> None:
    monitor.mode = Mode.SLOW
    async with proxying.client(keys[Role.VIEWER]) as viewer:
        started = time.monotonic()
        response = await viewer.get("/metrics")
        took = time.monotonic() - started
    message = error_of(response, 504, "monitor_timeout")
    assert f"{TIMEOUT_S:g}s" in message
    assert took < monitor.stall_s / 2, f"answered after {took:.1f}s, not at the timeout"


async def test_a_monitor_that_is_down_is_a_502_and_the_gateway_stays_up(
    stack: Stack, keys: dict[Role, str]
) -> None:
    """A port nothing listens on: connection refused. Its own gateway, so the shared
    stand-in stays up for the other tests whatever the order."""
    gone = MetricsDouble().start()
    gone.stop()
    env = {"WHOOSH__GATEWAY__MONITOR_METRICS_URL": gone.url}
    gateway = await stack.start_gateway(env=env)
    try:
        async with gateway.client(keys[Role.VIEWER]) as viewer:
            message = error_of(await viewer.get("/metrics"), 502, "monitor_unreachable")
            assert gone.url in message and "cannot be reached" in message
            assert (await viewer.get("/api/v1/me")).status_code == 200
    finally:
        gateway.process.stop()
        stack.gateways.remove(gateway)


def test_the_monitor_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        GatewaySettings(monitor_metrics_url="monitor:9464/metrics")
    assert GatewaySettings().monitor_metrics_url is None
