"""The GPUs the dashboard shows, read from the monitor's own metrics (the gauges it
makes from executors' heartbeats, DCGM label names), through the gateway's metrics proxy.

The gateway stores nothing: each page asks the monitor once. No monitor configured, or
one that fails, shows no GPU table rather than failing the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from whoosh_shared import metric_names as m
from whoosh_shared.queries import AgentView

from whoosh_gateway.errors import ApiError
from whoosh_gateway.metrics_proxy import MetricsProxy

SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
FIELDS = {
    m.GPU_UTILIZATION: "utilization",
    m.GPU_MEMORY_USED: "memory_used",
    m.GPU_MEMORY_TOTAL: "memory_total",
    m.GPU_TEMPERATURE: "temperature",
}


@dataclass
class Gpu:
    host: str
    index: str
    model: str
    values: dict[str, float] = field(default_factory=dict)

    @property
    def utilization_pct(self) -> float | None:
        value = self.values.get("utilization")
        return None if value is None else value * 100

    @property
    def memory_gib(self) -> tuple[float, float] | None:
        used, total = self.values.get("memory_used"), self.values.get("memory_total")
        if used is None or total is None:
            return None
        return used / 2**30, total / 2**30


def parse_gpus(text: str) -> list[Gpu]:
    """GPU gauges of a Prometheus text exposition, one Gpu per (host, index). Pure."""
    found: dict[tuple[str, str], Gpu] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if not match or match.group("name") not in FIELDS:
            continue
        labels = dict(LABEL.findall(match.group("labels")))
        key = (labels.get("Hostname", "?"), labels.get("gpu", "?"))
        gpu = found.setdefault(key, Gpu(key[0], key[1], labels.get("modelName", "")))
        try:
            gpu.values[FIELDS[match.group("name")]] = float(match.group("value"))
        except ValueError:
            continue
    return sorted(found.values(), key=lambda g: (g.host, g.index))


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
