"""What one attempt running on this executor is: the process that runs it, local or remote.

The registry of runs and their stopping live in `whoosh_shared.runtime.running_attempts`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.running_attempts import StopCause

from whoosh_executor_cli.profiles import AgentRun
from whoosh_executor_cli.run_result import RunResult


class CommandProcess(Protocol):
    """A run of an agent's command: LocalProcess, or RemoteProcess over SSH."""

    @property
    def lines(self) -> int: ...

    @property
    def cancelled(self) -> bool: ...

    def cancel(self, reason: str) -> None: ...

    async def run(self) -> RunResult: ...


@dataclass
class AttemptRun:
    """One attempt of one task on this executor, with the process that runs it."""

    item: WorkItem
    process: CommandProcess
    stop_cause: StopCause | None = None
    reader: AgentRun | None = None
    """Reads a vendor CLI's machine-readable stdout (None for a plain command)."""

    def stop(self, cause: StopCause, reason: str) -> None:
        """Kill the run (or keep it from starting); the first cause given is the one kept."""
        if self.stop_cause is None:
            self.stop_cause = cause
        self.process.cancel(reason)
