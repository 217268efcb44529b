"""Loop reports: how a process that is not the coordinator makes its loops' health seen.

`/readyz` and `whoosh status` ask a coordinator (GetStats), which knows its own loops
only. Executors and the monitor therefore publish, every few seconds on core NATS
(`whoosh.loops.<process>`), which of their supervised loops are down and why; every
coordinator keeps the latest report of each process for a few intervals and adds the
down loops to its answer, as "<process>: <loop>". A process that stops reporting drops
out after `REPORT_TTL_INTERVALS` intervals (a dead executor is the monitor's business:
its agents turn unhealthy).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from nats.aio.client import Client
from pydantic import Field, ValidationError

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import Strict
from whoosh_shared.runtime.supervision import LoopHealth

log = logging.getLogger(__name__)

MAX_LOOPS = 64
MAX_CAUSE_CHARS = 300
REPORT_TTL_INTERVALS = 3
LOOP_REPORT_INTERVAL_S = 2.0  # for processes without a heartbeat interval of their own


class LoopReport(Strict):
    """The supervised loops of one process that are down now, each with its cause."""

    process: str = Field(min_length=1, max_length=200)
    down: dict[str, str] = Field(default_factory=dict, max_length=MAX_LOOPS)
    interval_s: float = Field(gt=0, le=3600, description="the next one comes this much later")
    sent_at: datetime


def report_of(process: str, health: LoopHealth, interval_s: float) -> LoopReport:
    down = {
        name[:100]: cause[:MAX_CAUSE_CHARS]
        for name, cause in list(health.down_now().items())[:MAX_LOOPS]
    }
    return LoopReport(process=process, down=down, interval_s=interval_s, sent_at=datetime.now(UTC))


async def publish_loop_reports(
    nc: Client, process: str, health: LoopHealth, interval_s: float
) -> None:
    """Publish this process's report at once and every `interval_s`, until cancelled (run it
    under `supervise`). A publish that fails (NATS reconnecting) is the report that did
    not come; the next one says the same."""
    subject = subjects.loops(process)
    while True:
        report = report_of(process, health, interval_s)
        try:
            await nc.publish(subject, report.model_dump_json().encode())
        except Exception as exc:
            log.debug("loop report not sent: %s", exc)
        await asyncio.sleep(interval_s)


class RemoteLoops:
    """The latest loop report of every process, as a coordinator keeps them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._reports: dict[str, tuple[float, dict[str, str]]] = {}

    def take(self, data: bytes) -> None:
        """One report off the bus; a malformed one is dropped (it is nobody's command)."""
        try:
            report = LoopReport.model_validate_json(data)
        except ValidationError as exc:
            log.debug("malformed loop report dropped: %s", exc)
            return
        expires = self._clock() + report.interval_s * REPORT_TTL_INTERVALS
        self._reports[report.process] = (expires, dict(report.down))

    def down_now(self) -> dict[str, str]:
        """ "<process>: <loop>" -> cause, for every live process's loops that are down."""
        now = self._clock()
        for process in [p for p, (expires, _) in self._reports.items() if expires < now]:
            del self._reports[process]
        return {
            f"{process}: {loop}": cause
            for process, (_, down) in sorted(self._reports.items())
            for loop, cause in sorted(down.items())
        }
