"""The GPUs the dashboard shows, read from the monitor's own metrics (the gauges it
makes from executors' heartbeats, DCGM label names), through the gateway's metrics proxy.

The gateway stores nothing: each page asks the monitor once. No monitor configured, or
one that fails, shows no GPU table rather than failing the page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from whoosh_shared.contract.gpu_readings import Gpu, parse_gpus
from whoosh_shared.contract.queries import AgentView

from whoosh_gateway.errors import ApiError
from whoosh_gateway.metrics_proxy import MetricsProxy

__all__ = ["Gpu", "fleet_gpus", "gpus_of", "host_of", "parse_gpus"]


async def fleet_gpus(metrics: MetricsProxy) -> list[Gpu]:
    try:
        page = await metrics.fetch("text/plain")
    except ApiError:
        return []
    return parse_gpus(page.body.decode(errors="replace"))


def host_of(agent: AgentView) -> str | None:
    """The machine an agent runs on, as GPU readings name it (SSH host or server host)."""
    if agent.spec.host:
        return agent.spec.host.rsplit("@", 1)[-1].split(":", 1)[0]
    if agent.spec.endpoint:
        return urlsplit(agent.spec.endpoint).hostname
    return None


def gpus_of(agent: AgentView, gpus: list[Gpu], local_host: str) -> list[Gpu]:
    """The GPUs on an agent's machine; a local agent's are this machine's."""
    host = host_of(agent)
    if host in (None, "127.0.0.1", "localhost", "::1"):
        host = local_host
    return [g for g in gpus if g.host == host]
