"""What one attempt running on this executor is: the asyncio task streaming its LLM call.

The registry of runs and their stopping live in `whoosh_shared.runtime.running_attempts`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.running_attempts import StopCause

from whoosh_executor_ollama.stream import LlmStream


@dataclass
class LlmRun:
    """One attempt of one task on this executor, with the asyncio task streaming its call."""

    item: WorkItem
    stop_cause: StopCause | None = None
    stop_reason: str = ""
    call: asyncio.Task[object] | None = None
    stream: LlmStream | None = None
    chunks: int = field(default=0)

    @property
    def partial_text(self) -> str:
        return self.stream.text if self.stream is not None else ""

    def stop(self, cause: StopCause, reason: str) -> None:
        """Cancel the call (closing its HTTP stream at once), or keep it from starting.

        The first cause given is the one kept."""
        if self.stop_cause is None:
            self.stop_cause = cause
            self.stop_reason = reason
        if self.call is not None and not self.call.done():
            self.call.cancel()
