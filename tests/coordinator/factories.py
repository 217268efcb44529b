"""Small builders for coordinator tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from whoosh_coordinator.agents.domain import Agent
from whoosh_coordinator.tasks.domain import Task
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.queries import AgentView, TaskView

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def new_task(max_attempts: int = 2, **overrides: Any) -> Task:
    fields: dict[str, Any] = {
        "prompt": "do it",
        "priority": 5,
        "capabilities": [],
        "agent_type": None,
        "model": None,
        "agent": None,
        "timeout_s": 60.0,
        "retry": {"max_attempts": max_attempts, "backoff_s": 0.0},
        "actor": "test",
    }
    return Task(**{**fields, **overrides})


def new_agent(name: str = "a1", max_concurrent: int = 1) -> Agent:
    spec = AgentSpec(name=name, command=["cat"], max_concurrent=max_concurrent)
    return Agent(spec=spec.model_dump(mode="json"), actor="test")


def agent_view(name: str, load: int = 0, **spec: Any) -> AgentView:
    enabled = spec.pop("enabled", True)
    spec.setdefault("command", ["cat"])
    return AgentView(
        id=uuid4(),
        spec=AgentSpec(name=name, **spec),
        enabled=enabled,
        in_flight=[uuid4() for _ in range(load)],
    )


def task_view(sequence: int, priority: int = 5, **fields: Any) -> TaskView:
    values: dict[str, Any] = {
        "id": uuid4(),
        "status": TaskStatus.QUEUED,
        "prompt": "p",
        "priority": priority,
        "capabilities": [],
        "timeout_s": 60.0,
        "max_attempts": 1,
        "submitted_at": NOW,
        "sequence": sequence,
    }
    return TaskView(**{**values, **fields})
