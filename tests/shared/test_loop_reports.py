"""What a coordinator makes of other processes' loop reports: down loops named by process
and loop, a recovered loop gone at the next report, a silent process gone after its
reports expire, a malformed report dropped (it cannot clear or fake anything)."""

from __future__ import annotations

from datetime import UTC, datetime

from whoosh_shared.runtime.loop_reports import (
    REPORT_TTL_INTERVALS,
    LoopReport,
    RemoteLoops,
    report_of,
)
from whoosh_shared.runtime.supervision import LoopHealth


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def report(process: str, down: dict[str, str], interval_s: float = 1.0) -> bytes:
    beat = LoopReport(process=process, down=down, interval_s=interval_s, sent_at=datetime.now(UTC))
    return beat.model_dump_json().encode()


def test_down_loops_are_named_by_process_and_cleared_by_the_next_report() -> None:
    clock = Clock()
    loops = RemoteLoops(clock)
    loops.take(report("cli-1", {"host checks": "OSError: boom"}))
    loops.take(report("llm-1", {}))
    assert loops.down_now() == {"cli-1: host checks": "OSError: boom"}
    loops.take(report("cli-1", {}))
    assert loops.down_now() == {}


def test_a_process_that_stops_reporting_drops_out_after_its_reports_expire() -> None:
    clock = Clock()
    loops = RemoteLoops(clock)
    loops.take(report("cli-1", {"fetch x": "RuntimeError: y"}, interval_s=2.0))
    clock.now += 2.0 * REPORT_TTL_INTERVALS - 0.1
    assert "cli-1: fetch x" in loops.down_now()
    clock.now += 0.2
    assert loops.down_now() == {}


def test_a_malformed_report_is_dropped() -> None:
    loops = RemoteLoops(Clock())
    loops.take(report("cli-1", {"heartbeat": "ValueError: z"}))
    loops.take(b'{"process": "cli-1", "down": {}}')  # no interval: not a report
    loops.take(b"not json")
    assert loops.down_now() == {"cli-1: heartbeat": "ValueError: z"}


def test_a_process_reports_what_its_health_says_is_down() -> None:
    health = LoopHealth()
    health.up("heartbeat")
    health.down("probe rounds", "x" * 1000)
    made = report_of("llm-1", health, 5.0)
    assert list(made.down) == ["probe rounds"] and len(made.down["probe rounds"]) == 300
