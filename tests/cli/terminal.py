"""`whoosh` in a pseudo-terminal, as a person runs it: stdout and stderr on one tty (or
stdout piped), keys typed into it, everything it drew read back."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field

from cli.whoosh_processes import WhooshEnv


@dataclass
class PtyRun:
    """A `whoosh` process whose terminal is the slave end of a pty we hold the master of."""

    proc: subprocess.Popen[bytes]
    master: int
    slave: int
    screen: bytearray = field(default_factory=bytearray)

    @classmethod
    def start(cls, env: WhooshEnv, *args: str, pipe_stdout: bool = False) -> PtyRun:
        master, slave = pty.openpty()
        termios.tcsetwinsize(slave, (40, 160))
        proc = subprocess.Popen(
            [sys.executable, "-m", "whoosh_cli", *args],
            env={**env.env, "TERM": "xterm-256color"},
            cwd=env.root,
            stdin=slave,
            stdout=subprocess.PIPE if pipe_stdout else slave,
            stderr=slave,
            start_new_session=True,  # the pty becomes its controlling terminal
        )
        return cls(proc, master, slave)

    def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], min(left, 0.1))
            if ready:
                try:
                    self.screen += os.read(self.master, 65536)
                except OSError:
                    return

    def wait_for_text(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.screen:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not shown in {timeout}s; screen: {self.text!r}")
            self.read_for(0.1)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read_for(0.1)
        code = self.proc.wait(max(0.1, deadline - time.monotonic()))
        self.read_for(0.2)
        return code

    @property
    def text(self) -> str:
        return self.screen.decode(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
