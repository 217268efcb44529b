"""Executor heartbeats: what each executor publishes every few seconds.

Every executor publishes a `Heartbeat` on `whoosh.heartbeat.<executor id>` (core NATS:
ephemeral, nothing stored) every `executor.heartbeat_interval_s`: which agent types it
serves, the attempts it runs now, and its host's readings (CPU, memory, GPUs, SSH
channel pools). The monitor turns their presence or absence into agent health and
their readings into metrics and alerts. Units are base units: ratios 0..1, bytes,
seconds, watts, degrees Celsius.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from whoosh_shared.contract.agents import AgentName, Strict
from whoosh_shared.contract.enums import AgentType

MAX_RUNNING = 4096
MAX_GPUS = 64
MAX_POOLS = 256


class GpuReading(Strict):
    """One GPU, as NVML reports it (units converted; None where the GPU does not say)."""

    index: int = Field(ge=0)
    uuid: str = Field(max_length=100)
    name: str = Field(max_length=200)
    utilization_ratio: float | None = Field(default=None, ge=0, le=1)
    memory_used_bytes: int | None = Field(default=None, ge=0)
    memory_total_bytes: int | None = Field(default=None, ge=0)
    memory_reserved_bytes: int | None = Field(
        default=None, ge=0, description="held by the driver, not in used (NVML v2 only)"
    )
    temperature_celsius: float | None = Field(default=None, ge=-100, le=200)
    power_watts: float | None = Field(default=None, ge=0)
    power_limit_watts: float | None = Field(default=None, ge=0)


class SshPoolReading(Strict):
    """The SSH channels one executor holds to one host: in use against what it may open."""

    target: str = Field(min_length=1, max_length=300, description="user@host:port")
    in_use: int = Field(ge=0)
    capacity: int = Field(ge=1)


class HostReading(Strict):
    hostname: str = Field(min_length=1, max_length=253)
    cpu_ratio: float = Field(ge=0, le=1)
    memory_used_bytes: int = Field(ge=0)
    memory_total_bytes: int = Field(ge=0)
    gpus: list[GpuReading] = Field(default_factory=list, max_length=MAX_GPUS)
    gpu_status: str | None = Field(
        default=None, max_length=300, description="why there are no GPU readings"
    )


class RunningWork(Strict):
    task_id: UUID
    attempt: int = Field(ge=1)
    agent: AgentName


class Heartbeat(Strict):
    executor_id: str = Field(min_length=1, max_length=200)
    agent_types: list[AgentType] = Field(min_length=1, description="agent types it serves")
    interval_s: float = Field(gt=0, le=3600, description="the next one comes this much later")
    sent_at: datetime
    max_parallel: int = Field(default=1, ge=1)
    running: list[RunningWork] = Field(default_factory=list, max_length=MAX_RUNNING)
    host: HostReading
    ssh_pools: list[SshPoolReading] = Field(default_factory=list, max_length=MAX_POOLS)
