"""This host's readings for heartbeats: CPU and memory (psutil) plus GPUs (NVML)."""

from __future__ import annotations

import psutil

from whoosh_shared.contract.heartbeat import HostReading
from whoosh_shared.runtime.gpu import GpuCollector
from whoosh_shared.runtime.heartbeat_publisher import hostname


class SystemSampler:
    """CPU use since the previous sample (the first sample reads 0), memory, GPUs."""

    def __init__(self, gpus: GpuCollector | None = None) -> None:
        self.hostname = hostname()
        self.gpus = gpus or GpuCollector()
        psutil.cpu_percent(interval=None)  # starts the measuring window

    def sample(self) -> HostReading:
        memory = psutil.virtual_memory()
        readings, status = self.gpus.read()
        return HostReading(
            hostname=self.hostname,
            cpu_ratio=min(1.0, psutil.cpu_percent(interval=None) / 100.0),
            memory_used_bytes=int(memory.total - memory.available),
            memory_total_bytes=int(memory.total),
            gpus=readings,
            gpu_status=status,
        )
