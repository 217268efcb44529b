"""How a followed task ended: what `task submit --wait` reports and exits by."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from whoosh_shared.contract.enums import TaskStatus


@dataclass
class Outcome:
    """How the watched task ended."""

    status: TaskStatus
    reason: str | None = None
    output: str = ""
    attempt: int = 0
    task_id: UUID | None = None
