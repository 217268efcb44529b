"""`whoosh task submit --wait` through the gateway: start the task over the WebSocket and
follow it live until it ends.

The socket's `start` action submits and subscribes in one step, replaying the task's
events from its first, so nothing that happens between the submit and the subscription
is missed. Output lines go to stdout (stderr lines to stderr) as they stream; status
changes go to stderr as notices, with a one-line progress display when stderr is a
terminal. If the connection drops, the follower reconnects and resumes after the last
event it saw.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from uuid import UUID

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from whoosh_shared.enums import TaskStatus

from whoosh_cli.errors import NOT_RUNNING_HINT, CliError, UnreachableError, UsageError
from whoosh_cli.output import notice
from whoosh_cli.task_outcome import Outcome

LATE_LINES_GRACE_S = 0.3  # output lines may trail the terminal event by a moment
RECONNECTS = 5
ENDS = {
    "execution_completed": TaskStatus.COMPLETED,
    "execution_stopped": TaskStatus.CANCELLED,
}


class Progress:
    """A single status line on a terminal's stderr: state, lines so far, elapsed time."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.state = "submitting"
        self.lines = 0
        self.started = time.monotonic()
        self._shown = False

    def update(self, state: str | None = None, lines: int = 0) -> None:
        self.state = state or self.state
        self.lines += lines
        if self.enabled:
            took = time.monotonic() - self.started
            text = f"[{self.state} · {self.lines} lines · {took:.1f}s]"
            sys.stderr.write(f"\r\033[2K{text}")
            sys.stderr.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            sys.stderr.write("\r\033[2K")
            sys.stderr.flush()
            self._shown = False

    def say(self, text: str) -> None:
        self.clear()
        notice(text)
        self.update()


class Follower:
    def __init__(self, live_output: bool) -> None:
        self.live_output = live_output
        self.progress = Progress()
        self.task_id: str | None = None
        self.last_event_id = 0
        self.lines: set[tuple[int, int]] = set()
        self.attempts_with_output: set[int] = set()

    def handle(self, message: dict[str, Any]) -> Outcome | None:
        kind = message.get("type")
        event_id = message.get("event_id")
        if isinstance(event_id, int):
            if event_id <= self.last_event_id:
                return None
            self.last_event_id = event_id
        if kind == "agent_event":
            return self._agent_event(message)
        if kind == "execution_started":
            self.progress.update("running")
            self.progress.say(f"whoosh: running (executor {message.get('executor_id')})")
        elif kind in ENDS:
            status = TaskStatus.SKIPPED if message.get("skipped") else ENDS[kind]
            return self._end(status, message)
        elif kind == "execution_error":
            status = TaskStatus.TIMED_OUT if message.get("timed_out") else TaskStatus.FAILED
            return self._end(status, message)
        elif kind == "error":
            raise CliError(f"{message.get('code')}: {message.get('message')}")
        return None

    def _agent_event(self, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        if kind == "message":
            key = (int(message.get("attempt", 0)), int(message.get("seq", 0)))
            if key in self.lines:
                return
            self.lines.add(key)
            self.progress.clear()
            if message.get("stream") == "stderr":
                print(message.get("text", ""), file=sys.stderr, flush=True)
            else:
                self.attempts_with_output.add(key[0])
                if self.live_output:
                    print(message.get("text", ""), flush=True)
            self.progress.update(lines=1)
        elif kind == "progress":
            self.progress.say(f"whoosh: {message.get('text')}")
        elif kind == "step":
            self._step(message.get("step"), message.get("data") or {})

    def _step(self, step: str | None, data: dict[str, Any]) -> None:
        if step == "submitted":
            self.progress.update("queued")
            self.progress.say(
                f"whoosh: task {self.task_id} queued (priority {data.get('priority')})"
            )
        elif step == "assigned":
            self.progress.update(f"assigned to {data.get('agent_name')}")
            self.progress.say(
                f"whoosh: assigned to {data.get('agent_name')} (attempt {data.get('attempt')})"
            )
        elif step == "attempt_failed":
            on = f" on {data['agent_name']}" if data.get("agent_name") else ""
            self.progress.update("retrying")
            self.progress.say(
                f"whoosh: attempt {data.get('attempt')} failed{on}: {data.get('reason')}; retrying"
            )

    def _end(self, status: TaskStatus, message: dict[str, Any]) -> Outcome:
        return Outcome(
            status,
            message.get("reason"),
            message.get("output") or "",
            int(message.get("attempt") or 0),
            UUID(self.task_id) if self.task_id else None,
        )

    def finish(self, outcome: Outcome, took_s: float, duration_s: float) -> None:
        self.progress.clear()
        printed = outcome.attempt in self.attempts_with_output
        if self.live_output and outcome.output and not printed:
            sys.stdout.write(
                outcome.output if outcome.output.endswith("\n") else outcome.output + "\n"
            )
            sys.stdout.flush()
        if outcome.status is TaskStatus.COMPLETED:
            took = duration_s or took_s
            timing = f" in {took:.1f}s" if took else ""
        else:
            timing = f" after {took_s:.1f}s"
        why = f": {outcome.reason}" if outcome.reason else ""
        notice(f"whoosh: {outcome.status.value.replace('_', ' ')}{timing}{why}")


def websocket_url(gateway_url: str) -> str:
    if gateway_url.startswith("https://"):
        return "wss://" + gateway_url.removeprefix("https://") + "/api/v1/ws"
    return "ws://" + gateway_url.removeprefix("http://") + "/api/v1/ws"


async def follow_over_websocket(
    gateway_url: str, api_key: str | None, task: dict[str, Any], live_output: bool
) -> Outcome:
    follower = Follower(live_output)
    started = time.monotonic()
    url = websocket_url(gateway_url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    first: dict[str, Any] = {"action": "start", "task": task}
    for attempt in range(RECONNECTS + 1):
        try:
            async with connect(url, additional_headers=headers, proxy=None, max_size=None) as ws:
                if follower.task_id is None:
                    await ws.send(json.dumps(first))
                else:  # reconnected: resume after the last event seen
                    await ws.send(json.dumps({
                        "action": "subscribe", "scope": "task", "id": follower.task_id,
                        "last_event_id": follower.last_event_id,
                    }))  # fmt: skip
                outcome, usage_s = await _receive_until_end(ws, follower)
                follower.finish(outcome, time.monotonic() - started, usage_s)
                return outcome
        except (OSError, InvalidStatus, InvalidURI) as exc:
            if follower.task_id is None:
                raise UnreachableError(
                    f"cannot reach the gateway at {gateway_url}: {exc}; {NOT_RUNNING_HINT}"
                ) from None
        except ConnectionClosed as exc:
            if follower.task_id is None:
                reason = exc.rcvd.reason if exc.rcvd else str(exc)
                raise CliError(f"the gateway closed the connection: {reason}") from None
        if attempt < RECONNECTS:
            follower.progress.say(f"whoosh: connection lost; resuming task {follower.task_id}")
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
    raise UnreachableError(
        f"lost the gateway at {gateway_url} while following task {follower.task_id}: "
        f"{NOT_RUNNING_HINT}"
    )


async def _receive_until_end(ws: ClientConnection, follower: Follower) -> tuple[Outcome, float]:
    while True:
        message = json.loads(await ws.recv())
        if message.get("type") == "accepted":
            follower.task_id = str(message["task_id"])
            continue
        if message.get("type") == "error" and follower.task_id is None:
            code, text = message.get("code"), message.get("message")
            if code == "invalid":
                raise UsageError(f"invalid task: {text}")
            raise CliError(f"task rejected ({code}): {text}")
        outcome = follower.handle(message)
        if outcome is not None:
            usage = message.get("usage") or {}
            await _drain_late_lines(ws, follower)
            return outcome, float(usage.get("duration_s") or 0.0)


async def _drain_late_lines(ws: ClientConnection, follower: Follower) -> None:
    deadline = time.monotonic() + LATE_LINES_GRACE_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), left))
        except (TimeoutError, ConnectionClosed):
            return
        if message.get("type") == "agent_event" and message.get("kind") == "message":
            follower.handle(message)
