"""`--wait` over the WebSocket: the order in which a task's first tokens and its start come."""

from __future__ import annotations

import io

from whoosh_cli.ws_follow import Follower


def follower() -> tuple[Follower, io.StringIO, io.StringIO]:
    follow = Follower(live_output=True)
    notices, out = io.StringIO(), io.StringIO()
    follow.progress.stream = notices
    follow.writer.out = out
    return follow, notices, out


def token(text: str, seq: int) -> dict[str, object]:
    return {"type": "agent_event", "kind": "message", "attempt": 1, "seq": seq,
            "stream": "token", "text": text}  # fmt: skip


STARTED = {"type": "execution_started", "attempt": 1, "executor_id": "llm-1"}


def test_the_start_is_announced_when_it_comes_before_any_output() -> None:
    follow, notices, out = follower()
    follow.handle(STARTED)
    follow.handle(token("Hello\n", 1))
    assert "whoosh: running (executor llm-1)" in notices.getvalue()
    assert out.getvalue() == "Hello\n"


def test_tokens_that_came_before_the_start_are_not_broken_by_its_notice() -> None:
    """An LLM call starts while its claim is on the way: its first tokens may overtake the
    relayed TaskStarted, and the answer's text must stay continuous."""
    follow, notices, out = follower()
    follow.handle(token("First line,\n", 1))
    follow.handle(STARTED)
    follow.handle(token("second line.\n", 2))
    assert "running" not in notices.getvalue()
    assert out.getvalue() == "First line,\nsecond line.\n"
