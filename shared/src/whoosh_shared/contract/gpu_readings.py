"""GPU readings as the monitor exposes them (its Prometheus gauges, DCGM label names),
read back into one record per (host, GPU): what the dashboard and `whoosh top` show.
Pure; the names come from metric_names, so writer and readers cannot drift apart."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from whoosh_shared.contract import metric_names as m

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
