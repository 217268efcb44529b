"""Commands do not outlive their executor, even one killed with kill -9.

Each command runs in a session of its own (so a signal reaches all of its helpers and
none reaches the executor), which also means nothing kills it when the executor dies
without its orderly stop. JetStream then redelivers the attempt after `ack_wait` and a
second copy of the same work would run beside the first (two coding agents in one
workspace). PDEATHSIG would need a `preexec_fn`, which costs every spawn the vfork.

So each executor starts a small reaper process once: the executor writes `+<pgid>` to the
reaper's stdin when a command's group starts and `-<pgid>` when it is gone. When the
executor dies, however it dies, the kernel closes that pipe; at end of input the reaper
sends SIGTERM to every group still listed, SIGKILL to those left after the kill grace,
and exits. An orderly stop has killed its commands already: the list is empty then. The
reaper ignores SIGINT, SIGTERM and SIGHUP (a signal to the executor's whole group must not
take it first); end of input is its only way out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable

log = logging.getLogger(__name__)
POLL_S = 0.05
READ_PAUSE_S = 0.2


class GroupReaper:
    """The executor's side: starts the reaper and tells it which groups are running."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.groups: set[int] = set()
        self.process: subprocess.Popen[bytes] | None = None
        """The reaper, from `start` until `close`."""

    def start(self) -> None:
        """Start the reaper and list the groups running now. One that cannot start is
        logged: the executor runs on without it, as it did before reapers."""
        argv = [sys.executable, "-m", "whoosh_executor_cli.group_reaper", str(self.grace_s)]
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            log.error("no group reaper (%s): a kill -9 of this executor leaves its commands", exc)
            self.process = None
            return
        self._send(f"+{pgid}\n" for pgid in self.groups)

    def watch(self, pgid: int) -> None:
        """A command's group started (its pid is its group id)."""
        self.groups.add(pgid)
        self._send([f"+{pgid}\n"])

    def forget(self, pgid: int) -> None:
        """That group is gone (killed and waited for); its id may be reused from now on."""
        if pgid in self.groups:
            self.groups.discard(pgid)
            self._send([f"-{pgid}\n"])

    def close(self) -> None:
        """End of input: the reaper kills what is still listed (nothing, after an orderly
        stop) and exits by itself; the executor's stop does not wait for it."""
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self.process = None

    def _send(self, lines: Iterable[str]) -> None:
        data = "".join(lines).encode()
        if not data or self.process is None or self.process.stdin is None:
            return
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except OSError as exc:  # the reaper died: a new one gets the whole list
            log.warning("group reaper gone (%s); starting another", exc)
            self.start()


def listed_at_end(fd: int, pause_s: float = READ_PAUSE_S) -> list[int]:
    """The groups still listed when input ends. Read in chunks with a pause between reads,
    so a busy executor's lines wake this process a few times a second rather than twice
    per command (the pipe holds thousands of lines meanwhile)."""
    groups: set[int] = set()
    rest = b""
    while data := os.read(fd, 1 << 16):
        *lines, rest = (rest + data).split(b"\n")
        for line in lines:
            sign, number = line[:1], line[1:]
            if number.isdigit():
                (groups.add if sign == b"+" else groups.discard)(int(number))
        time.sleep(pause_s)
    return sorted(groups)


def stop_groups(groups: list[int], grace_s: float) -> None:
    """SIGTERM each group, SIGKILL whichever still has a process after `grace_s`."""
    alive = [g for g in groups if _signal(g, signal.SIGTERM)]
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        time.sleep(POLL_S)
        alive = [g for g in alive if _signal(g, 0)]
    for group in alive:
        _signal(group, signal.SIGKILL)


def _signal(pgid: int, sig: int) -> bool:
    # Not local_process.signal_group: the reaper runs this module alone and imports the
    # standard library only, so it starts in a few tens of milliseconds.
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    grace_s = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    stop_groups(listed_at_end(sys.stdin.fileno()), grace_s)


if __name__ == "__main__":
    main()
