"""A shell step's stderr, end to end with real processes: the CLI executor keeps its tail
(limits.stderr_tail_bytes, 8 KiB by default) behind a marker of the dropped bytes, and
a later step's command reads it through `{{ steps.check.stderr | tail(100) }}`."""

from __future__ import annotations

from uuid import UUID

from harness import ServiceProcess, eventually
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import RegisterAgent
from whoosh_shared.runtime.bus import Bus

FLOW = """
whoosh: workflow/v1
name: stderr-flow
steps:
  check:
    type: shell
    command: |
      i=0; while [ $i -lt 2000 ]; do echo "noise $i" >&2; i=$((i+1)); done
      echo 'warning: deprecated flag' >&2; echo checked
  report:
    type: shell
    needs: [check]
    command: |
      echo 'saw: {{ steps.check.stderr | tail(100) }}'
"""


async def execution(bus: Bus, execution_id: UUID) -> w.ExecutionView:
    reply = await bus.ask(w.GetExecution(execution_id=execution_id))
    return w.ExecutionView.model_validate(reply.result)


async def test_a_later_step_reads_the_tail_of_a_shell_steps_stderr(
    bus: Bus, ssh_system: ServiceProcess, sqlite_url: str
) -> None:
    spec = AgentSpec(name="shell", command=["sh", "-s"], capabilities=["shell"])
    assert (await bus.send(RegisterAgent(spec=spec))).accepted
    made = await bus.send(w.CreateWorkflow(source=FLOW))
    assert made.accepted, made.reason
    started = await bus.send(w.RunWorkflow(workflow="stderr-flow"))
    assert started.accepted, started.reason
    run = UUID(started.ids["execution_id"])

    async def finished() -> bool:
        return (await execution(bus, run)).status != "running"

    await eventually(finished, timeout=60, what="the end of the execution")
    view = await execution(bus, run)
    assert view.status == "succeeded", view.reason
    check, report = view.steps
    assert check.output == "checked\n"
    assert check.stderr.startswith("[... ") and " bytes of stderr dropped ...]\n" in check.stderr
    assert check.stderr.endswith("noise 1999\nwarning: deprecated flag\n")
    assert len(check.stderr.encode()) <= 8 * 1024
    assert check.error is None  # stderr is not a failure reason
    assert report.output.startswith("saw: ")
    assert report.output.endswith("noise 1999\nwarning: deprecated flag\n\n")
    assert len(report.output) == len("saw: ") + 100 + 1
    assert "bytes of stderr dropped" not in report.output

    store = open_store(sqlite_url)  # replay: the store's events give the same steps
    try:
        rebuilt = rebuild(store).workflows.executions[run]
        assert [s.stderr for s in rebuilt.steps] == [check.stderr, ""]
    finally:
        store.close()
