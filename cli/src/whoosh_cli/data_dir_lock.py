"""One `whoosh up` per data dir, enforced by an exclusive flock.

A flock is released by the kernel when its holder dies, even by kill -9, so a
crashed `up` never leaves a lock that has to be removed by hand. The pid inside
is only for the message shown to the second `up`.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from whoosh_cli.errors import CliError

LOCK_FILE = "whoosh.lock"


class DataDirLock:
    """Exclusive lock on `<data_dir>/whoosh.lock`, held for the life of `whoosh up`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or refuse with the pid of the `whoosh up` holding it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)  # it holds prompts, agents' env, keys and tokens
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "pid unknown"
            raise CliError(
                f"WHOOSH is already running on data dir {self.data_dir} ({who}); "
                "stop it first, or use another data dir (data_dir in whoosh.yaml or "
                "WHOOSH_DATA_DIR)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases the flock)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
