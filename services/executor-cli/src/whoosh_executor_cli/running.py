"""What one attempt running on this executor is: the process group that runs it.

The registry of runs and their stopping live in `whoosh_shared.running_attempts`."""

from __future__ import annotations

from dataclasses import dataclass

from whoosh_shared.running_attempts import StopCause
from whoosh_shared.work import WorkItem

from whoosh_executor_cli.local_process import LocalProcess


@dataclass
class AttemptRun:
    """One attempt of one task on this executor, with the process that runs it."""

    item: WorkItem
    process: LocalProcess
    stop_cause: StopCause | None = None

    def stop(self, cause: StopCause, reason: str) -> None:
        """Kill the run (or keep it from starting); the first cause given is the one kept."""
        if self.stop_cause is None:
            self.stop_cause = cause
        self.process.cancel(reason)
