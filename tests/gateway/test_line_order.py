"""LineOrder: an attempt's output lines never go out before its start, nor after its
end, and never wait long for a start this gateway will not see."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

from whoosh_gateway.line_order import LineOrder
from whoosh_shared.contract.work import ProgressLine


def line(task_id: UUID, seq: int, attempt: int = 1) -> ProgressLine:
    return ProgressLine(task_id=task_id, attempt=attempt, seq=seq, line=f"l{seq}")


class Sent(list[str]):
    def __call__(self, line: ProgressLine, text: str) -> None:
        self.append(text)


async def test_lines_before_the_start_wait_for_it_then_go_out_in_order() -> None:
    sent = Sent()
    order = LineOrder(sent)
    task = uuid4()
    order.offer(line(task, 1), "a")
    order.offer(line(task, 2), "b")
    order.before_event(task, "TaskAssigned")  # an earlier event of the attempt
    assert sent == [], "held until the attempt's start has gone out"
    order.started(task, 1)
    order.offer(line(task, 3), "c")
    assert sent == ["a", "b", "c"]


async def test_held_lines_follow_the_start_itself_not_precede_it() -> None:
    """The event hub's order for a start: before_event, the event goes out, started."""
    sent = Sent()
    order = LineOrder(sent)
    task = uuid4()
    order.offer(line(task, 1), "tok-1")
    order.before_event(task, "TaskStarted")
    sent.append("execution_started")
    order.started(task, 1)
    assert sent == ["execution_started", "tok-1"]


async def test_lines_of_a_started_attempt_go_out_at_once_and_others_are_not_held() -> None:
    sent = Sent()
    order = LineOrder(sent)
    first, other = uuid4(), uuid4()
    order.started(first, 1)
    order.offer(line(first, 1), "now")
    order.offer(line(first, 1, attempt=2), "next attempt")
    order.offer(line(other, 1), "other task")
    assert sent == ["now"], "a new attempt waits for its own start"


async def test_a_later_event_of_the_task_releases_its_lines_first() -> None:
    sent = Sent()
    order = LineOrder(sent)
    task = uuid4()
    order.offer(line(task, 1), "last words")
    order.before_event(task, "TaskCompleted")
    assert sent == ["last words"], "lines never follow their attempt's end"


async def test_a_start_never_seen_holds_lines_only_briefly() -> None:
    sent = Sent()
    order = LineOrder(sent, hold_s=0.05)
    task = uuid4()
    order.offer(line(task, 1), "a")
    await asyncio.sleep(0.2)
    assert sent == ["a"], "a gateway that came up after the start still shows the output"
    order.offer(line(task, 2), "b")
    assert sent == ["a", "b"], "and from then on without waiting"
