"""Heartbeat builders for monitor tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.heartbeat import GpuReading, Heartbeat, HostReading, RunningWork


def host(name: str = "gpu-1", cpu: float = 0.1, memory: float = 0.5, **extra: Any) -> HostReading:
    total = 64 * 2**30
    return HostReading(
        hostname=name,
        cpu_ratio=cpu,
        memory_used_bytes=int(total * memory),
        memory_total_bytes=total,
        **extra,
    )


def gpu(index: int = 0, utilization: float = 0.5, **extra: Any) -> GpuReading:
    fields: dict[str, Any] = {
        "index": index,
        "uuid": f"GPU-{index:08d}-0000-0000-0000-000000000000",
        "name": "NVIDIA H100 80GB HBM3",
        "utilization_ratio": utilization,
        "memory_used_bytes": 40 * 2**30,
        "memory_total_bytes": 80 * 2**30,
        "temperature_celsius": 55.0,
        "power_watts": 350.5,
        "power_limit_watts": 700.0,
    }
    return GpuReading(**{**fields, **extra})


def beat(
    executor_id: str = "cli-1",
    types: tuple[AgentType, ...] = (AgentType.CLI,),
    running: list[tuple[UUID, int, str]] | None = None,
    interval_s: float = 1.0,
    **extra: Any,
) -> Heartbeat:
    extra.setdefault("host", host())
    return Heartbeat(
        executor_id=executor_id,
        agent_types=list(types),
        interval_s=interval_s,
        sent_at=datetime.now(UTC),
        running=[RunningWork(task_id=t, attempt=a, agent=n) for t, a, n in running or []],
        **extra,
    )
