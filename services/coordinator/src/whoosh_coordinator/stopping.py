"""Stopping other tasks inside the decision that makes them pointless.

Why here and not as CancelTask commands sent afterwards: what stops them -- a budget
used up (`on_exhausted: stop`), a thread decided or closed while answers were still
out -- is saved in one transaction, and their cancellations, slot releases and what
their ends cause (a thread's abstention, a budget's reservation dropped, a workflow's
step) are saved in that same transaction. A crash can never leave a budget exhausted
with its tasks still running, and two coordinators deciding the same thing conflict on
the aggregates' versions instead of both cancelling. Executors learn of each
cancellation from its TaskCancelled event, as for any cancel.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from whoosh_coordinator.tasks.domain import Task
from whoosh_coordinator.working_set import StaleCopy

if TYPE_CHECKING:
    from whoosh_coordinator.commands import CommandHandler


def stop_tasks(
    handler: CommandHandler,
    task_ids: Iterable[str | UUID],
    reason: str,
    actor: str,
    fresh: Iterable[Aggregate] = (),
) -> list[Aggregate]:
    """Cancel each task that has not ended (with `reason`), release its agent slot and
    run its end listeners; returns everything to save with the caller's decision. Tasks
    already ended or unknown are skipped: stopping is idempotent. `fresh`: tasks made by
    this same decision (not in the store yet)."""
    made = {a.id: a for a in fresh if isinstance(a, Task)}
    changed: list[Aggregate] = []
    for task_id in task_ids:
        changed += _stop_one(handler, UUID(str(task_id)), reason, actor, made)
    return _unique(changed)


def _stop_one(
    handler: CommandHandler, task_id: UUID, reason: str, actor: str, made: dict[UUID, Task]
) -> list[Aggregate]:
    task = made.get(task_id)
    if task is None:
        try:
            task = handler.aggregates.get(task_id)
        except AggregateNotFoundError:
            return []
    if not isinstance(task, Task) or task.terminal:
        return []
    held = task.agent_id
    task.cancel(reason=reason, actor=actor)
    changed: list[Aggregate] = [task]
    if held is not None:
        agent = handler.load_agent_by_id(held)
        if not agent.holds(task.id) and handler.aggregates.decided_from_memory:
            # As in CommandHandler.settle: a stale copy would leak the slot.
            raise StaleCopy(f"agent {agent.name}: remembered copy lacks task {task.id}")
        agent.release_slot(task.id)
        changed.append(agent)
    return changed + list(handler.task_end_followers(task))


def _unique(aggregates: list[Aggregate]) -> list[Aggregate]:
    """One entry per aggregate (a budget or agent touched by several stops)."""
    return list({id(a): a for a in aggregates}.values())
