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
import time
from typing import Any
from uuid import UUID

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from whoosh_shared.contract.enums import TaskStatus

from whoosh_cli.errors import NOT_RUNNING_HINT, CliError, UnreachableError, UsageError
from whoosh_cli.output import notice
from whoosh_cli.stream_render import OutputWriter, Progress, verbose_summary
from whoosh_cli.submit_retry import RETRY_FOR_S
from whoosh_cli.task_outcome import Outcome

LATE_LINES_GRACE_S = 0.3  # output lines may trail the terminal event by a moment
RECONNECTS = 5
ENDS = {
    "execution_completed": TaskStatus.COMPLETED,
    "execution_stopped": TaskStatus.CANCELLED,
}


class Follower:
    def __init__(self, live_output: bool, verbose: bool = False) -> None:
        self.live_output = live_output
        self.verbose = verbose
        self.progress = Progress()
        self.writer = OutputWriter(self.progress, live=live_output)
        self.usage: dict[str, Any] = {}
        self.task_id: str | None = None
        self.last_event_id = 0
        self.lines: set[tuple[int, int]] = set()
        self.attempts_with_output: set[int] = set()
        self.start_retries_until = 0.0  # a start refused as unavailable is resent until then

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
            # An LLM call starts before its claim is answered, so its first tokens can come
            # before this event: then the text is not broken by a line saying it runs.
            if int(message.get("attempt", 0)) not in self.attempts_with_output:
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
            stream = str(message.get("stream") or "stdout")
            if stream != "stderr":
                self.attempts_with_output.add(key[0])
            self.writer.write(stream, str(message.get("text", "")))
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
        self.usage = message.get("usage") or {}
        return Outcome(
            status,
            message.get("reason"),
            message.get("output") or "",
            int(message.get("attempt") or 0),
            UUID(self.task_id) if self.task_id else None,
        )

    def finish(self, outcome: Outcome, took_s: float, duration_s: float) -> None:
        self.progress.clear()
        if outcome.attempt not in self.attempts_with_output:
            self.writer.write_stored(outcome.output)
        self.writer.finish()
        if outcome.status is TaskStatus.COMPLETED:
            took = duration_s or took_s
            timing = f" in {took:.1f}s" if took else ""
        else:
            timing = f" after {took_s:.1f}s"
        why = f": {outcome.reason}" if outcome.reason else ""
        notice(f"whoosh: {outcome.status.value.replace('_', ' ')}{timing}{why}")
        if self.verbose:
            for line in verbose_summary(self.usage, self.writer.clock):
                notice(line)


def websocket_url(gateway_url: str) -> str:
    if gateway_url.startswith("https://"):
        return "wss://" + gateway_url.removeprefix("https://") + "/api/v1/ws"
    return "ws://" + gateway_url.removeprefix("http://") + "/api/v1/ws"


async def follow_over_websocket(
    gateway_url: str,
    api_key: str | None,
    task: dict[str, Any],
    live_output: bool,
    idempotency_key: str | None = None,
    verbose: bool = False,
) -> Outcome:
    """Submit a task over the socket and follow it to its end. With an idempotency key, a
    start refused as unavailable (coordinator restarting) is sent again for a while."""
    follower = Follower(live_output, verbose)
    first: dict[str, Any] = {"action": "start", "task": task}
    if idempotency_key:
        first["idempotency_key"] = idempotency_key
        follower.start_retries_until = time.monotonic() + RETRY_FOR_S
    return await _follow(gateway_url, api_key, follower, first)


async def watch_over_websocket(
    gateway_url: str, api_key: str | None, task_id: UUID, live_output: bool, verbose: bool = False
) -> Outcome:
    """`whoosh task watch ID`: follow any task, replaying its stored history first (so a
    task that already ended reports its end at once)."""
    follower = Follower(live_output, verbose)
    follower.task_id = str(task_id)
    follower.progress.state = "watching"
    return await _follow(gateway_url, api_key, follower, None)


async def _follow(
    gateway_url: str, api_key: str | None, follower: Follower, first: dict[str, Any] | None
) -> Outcome:
    started = time.monotonic()
    url = websocket_url(gateway_url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    watching = first is None
    for attempt in range(RECONNECTS + 1):
        try:
            async with connect(url, additional_headers=headers, proxy=None, max_size=None) as ws:
                if first is not None and follower.task_id is None:
                    await ws.send(json.dumps(first))
                else:  # reconnected: resume after the last event seen
                    await ws.send(json.dumps({
                        "action": "subscribe", "scope": "task", "id": follower.task_id,
                        "last_event_id": follower.last_event_id,
                    }))  # fmt: skip
                outcome, usage_s = await _receive_until_end(ws, follower, first)
                follower.finish(outcome, time.monotonic() - started, usage_s)
                return outcome
        except (OSError, InvalidStatus, InvalidURI) as exc:
            if follower.task_id is None or (watching and follower.last_event_id == 0):
                raise UnreachableError(
                    f"cannot reach the gateway at {gateway_url}: {exc}; {NOT_RUNNING_HINT}"
                ) from None
        except ConnectionClosed as exc:
            if follower.task_id is None or (watching and follower.last_event_id == 0):
                reason = exc.rcvd.reason if exc.rcvd else str(exc)
                raise CliError(f"the gateway closed the connection: {reason}") from None
        if attempt < RECONNECTS:
            follower.progress.say(f"whoosh: connection lost; resuming task {follower.task_id}")
            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
    raise UnreachableError(
        f"lost the gateway at {gateway_url} while following task {follower.task_id}: "
        f"{NOT_RUNNING_HINT}"
    )


async def _receive_until_end(
    ws: ClientConnection, follower: Follower, first: dict[str, Any] | None
) -> tuple[Outcome, float]:
    pause = 0.25
    while True:
        message = json.loads(await ws.recv())
        if message.get("type") == "accepted":
            follower.task_id = str(message["task_id"])
            continue
        if message.get("type") == "error" and follower.task_id is None:
            code, text = message.get("code"), message.get("message")
            if code == "unavailable" and time.monotonic() + pause < follower.start_retries_until:
                follower.progress.say(f"whoosh: {text}; starting again with the same key")
                await asyncio.sleep(pause)  # the same key: at most one task however many
                pause = min(2.0, pause * 2)
                await ws.send(json.dumps(first))
                continue
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
