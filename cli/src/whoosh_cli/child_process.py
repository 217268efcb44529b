"""Starting the service processes so that they never outlive `whoosh up`.

Each child asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG),
which covers kill -9 of `up`. Each runs in its own session, so a Ctrl-C in the
terminal reaches only `up`, which then stops the children in order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ChildSpec:
    """How to start one service: its name (for logs and messages) and its argv."""

    name: str
    argv: list[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    inherits: tuple[socket.socket, ...] = ()
    """Listening sockets the child gets at the same descriptor numbers (kept open here,
    so a restarted child gets them again)."""


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()


def die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A preexec_fn: SIGTERM this child when `parent_pid` dies (Linux; no-op elsewhere).

    The parent may die between fork and prctl; then the child is already
    orphaned and the death signal would never come, so it exits right away.
    """

    def _preexec() -> None:
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)

    return _preexec


def spawn(spec: ChildSpec) -> subprocess.Popen[bytes]:
    """Start the child with stdout and stderr appended to its log file.

    Must be called from the main thread: the death signal fires when the
    *thread* that forked the child exits.
    """
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
    with spec.log_path.open("ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"--- whoosh up: starting {spec.name} at {stamp} ---\n".encode())
        log.flush()
        return subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            pass_fds=[sock.fileno() for sock in spec.inherits],
            preexec_fn=die_with_parent(os.getpid()),
        )


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> int | None:
    """SIGTERM, wait up to `grace_s`, then SIGKILL; returns the exit status."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a log, to show why a service did not come up."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


def process_cmdline(pid: int) -> list[str] | None:
    """argv of a live process from /proc, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None  # a zombie, or a kernel thread
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def is_same_process(pid: int, argv: Sequence[str]) -> bool:
    """Whether `pid` is still the process we started (pids get reused)."""
    return process_cmdline(pid) == list(argv)
