"""Real `whoosh` processes for the CLI tests: a temp config, data dir and free NATS port each.

Every `whoosh up` started here is stopped at the end of its test (SIGINT, then
SIGKILL of it and of every child it recorded), so a failing test cannot leave
NATS or a coordinator running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import free_port

READY_MARK = "try: whoosh task submit"
UP_READY_TIMEOUT_S = 90.0  # an upper bound: on a loaded 2-core machine services took 20 s+

TEST_CONFIG = """\
cluster:
  name: "cli-test"
agents:
  echo:
    type: cli
    command: ["sh", "-c", "echo \\"echo-agent got: $(cat)\\"; echo second line"]
    capabilities: [shell, general]
    max_concurrent: 4
  failing:
    type: cli
    command: ["sh", "-c", "cat >/dev/null; echo about to fail; echo fatal: disk full >&2; exit 3"]
    capabilities: [breakage]
"""


def pids_alive(pids: list[int]) -> list[int]:
    """The pids that still name a live, non-zombie process."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class WhooshEnv:
    """One installation: its config, data dir, NATS port, and a way to run `whoosh`."""

    root: Path
    env: dict[str, str]
    started: list[UpProcess] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return Path(self.env["WHOOSH_DATA_DIR"])

    @property
    def port(self) -> int:
        return int(self.env["WHOOSH__NATS__PORT"])

    @property
    def gateway_port(self) -> int:
        return int(self.env["WHOOSH__GATEWAY__PORT"])

    def run(
        self, *args: str, timeout: float = 60.0, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`whoosh ARGS` to completion; stdout and stderr captured as text."""
        return subprocess.run(
            [sys.executable, "-m", "whoosh_cli", *args],
            env=self.env,
            cwd=self.root,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self, wait_ready: bool = True) -> UpProcess:
        """Start `whoosh up` in the background (stdout/stderr to files)."""
        proc = UpProcess.start(self, len(self.started))
        self.started.append(proc)
        if wait_ready:
            proc.wait_ready()
        return proc

    def children(self) -> list[dict]:
        path = self.data_dir / "children.json"
        return json.loads(path.read_text()) if path.exists() else []


@dataclass
class UpProcess:
    """A running `whoosh up`."""

    owner: WhooshEnv
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    child_pids: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, owner: WhooshEnv, index: int) -> UpProcess:
        out, err = owner.root / f"up-{index}.out", owner.root / f"up-{index}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "whoosh_cli", "up"],
                env=owner.env,
                cwd=owner.root,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        return cls(owner, proc, out, err)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def describe(self) -> str:
        logs = self.owner.data_dir / "logs"
        tails = [
            f"--- {log.name} ---\n{log.read_text(errors='replace')[-2000:]}"
            for log in sorted(logs.glob("*.log"))
        ]
        return f"stdout:\n{self.stdout()}\nstderr:\n{self.stderr()}\n" + "\n".join(tails)

    def wait_ready(self, timeout: float = UP_READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while READY_MARK not in self.stdout():
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise AssertionError(f"whoosh up exited ({code}):\n{self.describe()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"whoosh up not ready after {timeout}s:\n{self.describe()}")
            time.sleep(0.1)
        self.child_pids = [c["pid"] for c in self.owner.children()]

    def interrupt(self, timeout: float = 40.0) -> int:
        """Ctrl-C, as a terminal would send it; returns the exit status."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def cleanup(self) -> None:
        """Whatever state the test left it in: nothing of it may survive."""
        pids = set(self.child_pids) | {c["pid"] for c in self.owner.children()}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in pids_alive(sorted(pids)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def clean_environ() -> dict[str, str]:
    """The runner's environment without any WHOOSH settings that would leak into a test."""
    return {k: v for k, v in os.environ.items() if not k.startswith("WHOOSH")}


def make_installation(root: Path, config_text: str = TEST_CONFIG) -> WhooshEnv:
    """A config file, a data dir and free ports (NATS, gateway, the monitor's /metrics)
    under `root`. Installations run side by side under xdist: with the default metrics
    port, one `whoosh up` could take 9464 between another's check and its monitor's
    bind, and that monitor then failed until its `whoosh up` gave up."""
    config = root / "whoosh.yaml"
    config.write_text(config_text)
    env = {
        **clean_environ(),
        "WHOOSH_CONFIG": str(config),
        "WHOOSH_DATA_DIR": str(root / "data"),
        "WHOOSH__NATS__PORT": str(free_port()),
        "WHOOSH__GATEWAY__PORT": str(free_port()),
        "WHOOSH__MONITORING__METRICS_PORT": str(free_port()),
        "WHOOSH_CLI_CONFIG": str(root / "cli.yaml"),  # not the user's own CLI config
        "PYTHONUNBUFFERED": "1",
    }
    return WhooshEnv(root, env)
