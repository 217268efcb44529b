"""The gateway's memory of recent output lines: bounded in tasks and in lines per task."""

from __future__ import annotations

from uuid import uuid4

from whoosh_gateway.recent_lines import RecentLines
from whoosh_shared.contract.work import ProgressLine


def line(task_id, seq: int) -> ProgressLine:
    return ProgressLine(task_id=task_id, attempt=1, seq=seq, line=f"line-{seq}")


def test_keeps_the_last_lines_of_the_most_recent_tasks() -> None:
    recent = RecentLines(tasks=2, per_task=3)
    a, b, c = uuid4(), uuid4(), uuid4()
    for seq in range(5):
        recent.add(line(a, seq), f"a{seq}")
    recent.add(line(b, 0), "b0")
    assert [text for _, text in recent.of(a)] == ["a2", "a3", "a4"]  # the end, in order
    recent.add(line(a, 5), "a5")  # a is the most recent again
    recent.add(line(c, 0), "c0")  # so b, the oldest, goes
    assert recent.of(b) == [] and [t for _, t in recent.of(c)] == ["c0"]
    assert [t for _, t in recent.of(a)] == ["a3", "a4", "a5"]
    assert recent.of(uuid4()) == []
