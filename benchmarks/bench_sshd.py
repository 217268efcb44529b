"""A private OpenSSH sshd for the SSH benchmark: throwaway keys, loopback, its own config.

The same recipe as the tests' `tests/executor_cli/sshd_server.py` (which a benchmark must
not import: it pulls in pytest fixtures), cut to what a benchmark needs: a temp host key,
an authorized_keys holding a fresh client key, a known_hosts for the client, and a
config that works without root (no PAM, no strict modes, absolute paths everywhere).
Two differences: `MaxSessions`, since the benchmark's bare asyncssh loop runs up to 50
channels on one connection, so the server must accept that many sessions per connection;
and, unless asked otherwise, `SetEnv SHLVL=1`, which keeps the user's ~/.bashrc out of
every command. Debian's bash sources ~/.bashrc when sshd starts it (even for `bash -c`),
but only at shell level 1, and with SHLVL=1 in its environment the shell counts itself
level 2. On a machine whose root ~/.bashrc runs `pyenv init`, that rc alone costs about
70 ms per command: it would drown what the benchmark measures, on both sides alike.

The server is a `bench_support.Proc`, so `Proc.stop_all()` stops it with every other
child; its stop also ends the per-connection sshd processes, which leave the listener's
process group (sshd calls setsid for each connection) and would outlive a killpg.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from bench_support import BenchError, Proc, cpu_seconds

SSHD = Path(os.environ.get("WHOOSH_SSHD", "/usr/sbin/sshd"))
START_TIMEOUT_S = 15.0


def require_sshd() -> None:
    """A BenchError naming the fix when sshd or ssh-keygen is missing."""
    import shutil

    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        raise BenchError(
            f"{SSHD} or ssh-keygen not found: scripts/ensure_sshd.sh installs openssh-server "
            "(or set WHOOSH_SSHD to an sshd binary)"
        )


def keygen(path: Path) -> Path:
    """A fresh ed25519 key pair without passphrase; returns the private key's path."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "whoosh-bench", "-f", str(path)],
        check=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    return path


def _supports(option: str, config: Path) -> bool:
    """Whether this sshd knows a config option (PerSourcePenalties came with OpenSSH 9.8)."""
    probe = config.with_suffix(".probe")
    probe.write_text(config.read_text() + f"{option}\n")
    try:
        result = subprocess.run(
            [str(SSHD), "-t", "-f", str(probe)], capture_output=True, text=True, timeout=30
        )
    finally:
        probe.unlink(missing_ok=True)
    return result.returncode == 0


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19])


def descendants(pid: int) -> list[tuple[int, int]]:
    """Every live descendant of `pid` as (pid, start time): the start time tells a reused
    pid apart when they are killed later."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append((int(entry.name), stat[1]))
    found: list[tuple[int, int]] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def comm(pid: int) -> str:
    """A process's command name ('' if it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class Sshd(Proc):
    """One sshd on 127.0.0.1:`port`, with its keys and config under `root`."""

    host = "127.0.0.1"

    def __init__(
        self, root: Path, port: int, max_sessions: int, logdir: Path, skip_shell_rc: bool = True
    ) -> None:
        require_sshd()
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.port, self.max_sessions = root, port, max_sessions
        self.skip_shell_rc = skip_shell_rc
        self.user = getpass.getuser()
        self.client_key = keygen(root / "client_ed25519")
        self.host_key = keygen(root / "host_ed25519")
        self.authorized_keys = root / "authorized_keys"
        self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        self.known_hosts = root / "known_hosts"
        host_pub = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[{self.host}]:{port} {host_pub[0]} {host_pub[1]}\n")
        self.config = self._write_config()
        # sshd re-executes itself for each connection, so its path must be absolute.
        super().__init__("sshd", [str(SSHD), "-D", "-e", "-f", str(self.config)], logdir)

    def _write_config(self) -> Path:
        config = self.root / "sshd_config"
        lines = [
            f"ListenAddress {self.host}",
            f"Port {self.port}",
            f"HostKey {self.host_key}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            f"MaxSessions {self.max_sessions}",
            "MaxStartups 200:30:400",
            "PrintMotd no",
            "LogLevel ERROR",
            *(["SetEnv SHLVL=1"] if self.skip_shell_rc else []),  # see the module's docstring
            "",
        ]
        config.write_text("\n".join(lines))
        if _supports("PerSourcePenalties no", config):
            # Newer sshd penalise a source address whose connections end badly; every
            # connection here comes from 127.0.0.1.
            config.write_text(config.read_text() + "PerSourcePenalties no\n")
        return config

    def start(self) -> Sshd:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        super().start()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Until the server sends its SSH banner (listening alone is not ready enough)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"sshd exited at start; last lines of {self.log}:\n{self.tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=1) as sock,
            ):
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    return
            time.sleep(0.05)
        raise BenchError(f"sshd on port {self.port} not ready after {START_TIMEOUT_S:g}s")

    def server_pids(self) -> list[int]:
        """The listener and its per-connection sshd processes (not the users' commands)."""
        if not self.alive():
            return []
        return [self.pid, *(pid for pid, _ in descendants(self.pid) if comm(pid) == "sshd")]

    def cpu_seconds(self) -> float:
        """CPU of the server side: the listener and every connection's sshd processes, with
        the commands they ran once reaped (a session's shell and `true` are their children;
        a connection that ended is in the listener's reaped children)."""
        return sum(cpu_seconds(pid, children=True) for pid in self.server_pids())

    def stop(self, timeout: float = 8.0) -> None:
        """The listener (as any Proc), then whatever it still served: per-connection sshd
        processes and the commands they ran, which sit in sessions of their own."""
        left = descendants(self.pid) if self.alive() else []
        super().stop(timeout)
        for pid, started in left:
            stat = _stat(pid)
            if stat is not None and stat[1] == started:  # the same process, not a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
