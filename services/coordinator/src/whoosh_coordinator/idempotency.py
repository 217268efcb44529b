"""Idempotent submit: the same key from the same actor returns the task it made first.

Nothing is remembered outside the store. The task's id derives from (actor, key)
(`domain.task.task_id_for`), so a retry after a timeout, a 503 or a coordinator crash
finds the task wherever it is decided -- on this coordinator, a restarted one or another
one on the same store -- and a creation racing with it fails on the store's unique
(id, version) and is decided again, finding the task. The guarantee therefore lasts as
long as the store keeps the task (for ever), beyond the 24 h clients are promised.

A request digest recorded with the task tells a retry (same request: the same task is
answered) from a key reused for a different request (refused, naming the key).
"""

from __future__ import annotations

import hashlib
from uuid import UUID

from whoosh_shared.contract import commands as c

NOT_PART_OF_THE_REQUEST = {"actor", "max_active_tasks", "idempotency_key"}


def request_digest(cmd: c.SubmitTask) -> str:
    """SHA-256 of what the submitter asked for (not who asked or the gateway's limits)."""
    body = cmd.model_dump_json(exclude=NOT_PART_OF_THE_REQUEST)
    return hashlib.sha256(body.encode()).hexdigest()


def marker(cmd: c.SubmitTask) -> dict[str, str] | None:
    """What the new task records about its idempotency key (None: no key was sent)."""
    if cmd.idempotency_key is None:
        return None
    return {"actor": cmd.actor, "key": cmd.idempotency_key, "digest": request_digest(cmd)}


def reused_reason(cmd: c.SubmitTask, task_id: UUID) -> str:
    return (
        f"Idempotency-Key '{cmd.idempotency_key}' was already used by {cmd.actor} for a "
        f"different request (task {task_id}); send a new key for a new task"
    )
