"""Helpers to drive workflows on a coordinator core."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from coordinator.core import Core
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.workflows import ExecutionView

DIAMOND = """
whoosh: workflow/v1
name: diamond
inputs:
  word: {type: string, default: hi}
settings: {max_parallel: 4}
steps:
  a: {type: shell, command: "echo a {{ inputs.word }}"}
  b: {type: shell, needs: [a], command: "echo b after {{ steps.a.output | trim }}"}
  c: {type: shell, needs: [a], command: "echo c"}
  d: {type: shell, needs: [b, c], command: "echo d {{ steps.b.output | trim }}"}
"""


def create(core: Core, source: str, **fields: Any) -> c.CommandReply:
    return core.send(w.CreateWorkflow(source=source, **fields))


def start(core: Core, name: str, **inputs: Any) -> UUID:
    reply = core.send(w.RunWorkflow(workflow=name, inputs=inputs))
    assert reply.accepted, reply.reason
    return UUID(reply.ids["execution_id"])


def execution(core: Core, execution_id: UUID) -> ExecutionView:
    view = core.projection.workflows.execution(execution_id, core.projection.tasks)
    assert view is not None
    return view


def statuses(core: Core, execution_id: UUID) -> dict[str, str]:
    return {s.id: s.status for s in execution(core, execution_id).steps}


def step_task(core: Core, execution_id: UUID, step: str) -> UUID:
    for s in execution(core, execution_id).steps:
        if s.id == step:
            assert s.task_id is not None, f"step {step} has no task ({s.status})"
            return s.task_id
    raise KeyError(step)


def finish(
    core: Core, task_id: UUID, output: str = "done", ok: bool = True, stderr: str = ""
) -> None:
    """Run a step's task to its end as an executor would (`stderr`: the tail it reports)."""
    core.assigner.assign_pending()
    view = core.task(task_id)
    assert view.status is TaskStatus.ASSIGNED, view.status
    attempt = view.attempt
    assert core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="t")).accepted
    if ok:
        reply = core.send(
            c.CompleteTask(task_id=task_id, attempt=attempt, output=output, stderr=stderr)
        )
    else:
        reply = core.send(
            c.FailTask(task_id=task_id, attempt=attempt, reason="exit code 1", output=output,
                       exit_code=1, retryable=False, stderr=stderr)
        )  # fmt: skip
    assert reply.accepted, reply.reason


def shell_agent(core: Core, name: str = "sh", slots: int = 8) -> None:
    core.register(name, capabilities=["shell"], max_concurrent=slots, command=["sh", "-s"])
