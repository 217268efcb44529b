"""Keeps the services of `whoosh up` running, and stops them in order.

A child that exits on its own is restarted after a growing delay; one that keeps
dying is a real problem (bad config, a bug), so after too many restarts in a
short window the supervisor gives up and `up` shuts everything down with an
error instead of looping forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from whoosh_cli.child_process import ChildSpec, log_tail, spawn, stop_process
from whoosh_cli.child_registry import ChildRegistry
from whoosh_cli.errors import CliError
from whoosh_cli.output import notice

CHECK_INTERVAL_S = 0.2
STABLE_AFTER_S = 30.0  # a child that ran this long before dying starts its backoff afresh


class SupervisorError(CliError):
    """A service keeps exiting; `up` must stop."""


@dataclass
class RestartPolicy:
    max_restarts: int = 5
    window_s: float = 60.0
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0

    def delay(self, consecutive_failures: int) -> float:
        return min(self.base_delay_s * 2 ** max(0, consecutive_failures - 1), self.max_delay_s)


@dataclass
class Supervised:
    """One child and its restart bookkeeping."""

    spec: ChildSpec
    proc: subprocess.Popen[bytes]
    started_at: float
    restarts: deque[float] = field(default_factory=deque)
    consecutive_failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """Starts children, restarts the ones that die, stops them in reverse start order."""

    def __init__(
        self,
        registry: ChildRegistry,
        policy: RestartPolicy | None = None,
        say: Callable[[str], None] = notice,
    ) -> None:
        self.registry = registry
        self.policy = policy or RestartPolicy()
        self.say = say
        self._children: dict[str, Supervised] = {}

    def start(self, spec: ChildSpec) -> subprocess.Popen[bytes]:
        """Start a child now and keep watching it."""
        proc = self._spawn(spec)
        self._children[spec.name] = Supervised(spec, proc, time.monotonic())
        return proc

    def _spawn(self, spec: ChildSpec) -> subprocess.Popen[bytes]:
        proc = spawn(spec)
        self.registry.record(spec.name, proc.pid, spec.argv)
        return proc

    def is_running(self, name: str) -> bool:
        child = self._children.get(name)
        return child is not None and child.proc.poll() is None

    def returncode(self, name: str) -> int | None:
        child = self._children.get(name)
        return None if child is None else child.proc.poll()

    def check(self) -> None:
        """Notice exits, schedule restarts with backoff, restart those that are due."""
        now = time.monotonic()
        for child in self._children.values():
            if child.proc.poll() is None:
                continue
            if child.restart_at is None:
                self._schedule_restart(child, now)
            elif now >= child.restart_at:
                self._restart(child, now)

    def _schedule_restart(self, child: Supervised, now: float) -> None:
        name, code = child.spec.name, child.proc.returncode
        while child.restarts and now - child.restarts[0] > self.policy.window_s:
            child.restarts.popleft()
        if len(child.restarts) >= self.policy.max_restarts:
            raise SupervisorError(
                f"{name} keeps exiting ({len(child.restarts)} restarts in "
                f"{self.policy.window_s:g}s, last exit status {code}); {child.spec.log_path} "
                f"ends with:\n{log_tail(child.spec.log_path, 10)}"
            )
        if now - child.started_at > STABLE_AFTER_S:
            child.consecutive_failures = 0
        child.consecutive_failures += 1
        delay = self.policy.delay(child.consecutive_failures)
        child.restart_at = now + delay
        self.say(f"whoosh: {name} exited unexpectedly (status {code}); restarting in {delay:g}s")

    def _restart(self, child: Supervised, now: float) -> None:
        child.proc = self._spawn(child.spec)
        child.started_at = now
        child.restarts.append(now)
        child.restart_at = None
        self.say(f"whoosh: restarted {child.spec.name} (pid {child.proc.pid})")

    async def watch(self, stop: asyncio.Event) -> None:
        """Supervise until `stop` is set; raises SupervisorError when a child keeps dying."""
        while not stop.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_INTERVAL_S)

    def stop_all(self, grace_s: float = 10.0) -> None:
        """Stop children in reverse start order: executors, coordinator, then NATS."""
        for name in reversed(list(self._children)):
            child = self._children[name]
            if child.proc.poll() is None:
                self.say(f"whoosh: stopping {name}")
            stop_process(child.proc, grace_s)
            self.registry.forget(name)
        self._children.clear()
        self.registry.clear()


SLOW_START_NOTICE_S = 10.0  # a start slower than this gets one "still waiting" line


@dataclass
class StartWait:
    """One child's start being waited for: it must keep running, the wait is bounded, and
    a slow start is said once (so people know why `whoosh up` is quiet); each failure
    comes with the tail of the child's log. `ready` names readiness in the messages."""

    supervisor: Supervisor
    name: str
    log: Path
    timeout_s: float
    ready: str
    started: float = field(default_factory=time.monotonic)
    told: bool = False

    def still_running(self) -> None:
        """Raise CliError if the child exited."""
        if not self.supervisor.is_running(self.name):
            status = self.supervisor.returncode(self.name)
            raise CliError(
                f"the {self.name} exited while starting (status {status}); {self.log} ends "
                f"with:\n{log_tail(self.log)}"
            )

    def not_ready_yet(self) -> None:
        """After a check that found it not ready: raise CliError once the wait ran out,
        else tell people once when the start is slow."""
        waited = time.monotonic() - self.started
        if waited > self.timeout_s:
            raise CliError(
                f"the {self.name} did not {self.ready} within {self.timeout_s:g}s; {self.log} "
                f"ends with:\n{log_tail(self.log)}"
            )
        if not self.told and waited > SLOW_START_NOTICE_S:
            notice(f"whoosh: still waiting for the {self.name} to {self.ready} (see {self.log})")
            self.told = True
