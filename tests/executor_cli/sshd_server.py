"""A real OpenSSH server for the SSH transport's tests: throwaway keys, loopback, free port.

Each `SshdServer` is its own `sshd -D -e -f CONFIG` with a temp host key and an
authorized_keys holding the session's client key, a config that works without root
(no PAM, no strict modes, absolute paths everywhere) and a known_hosts file for the
client. Tests that change the server (a lower MaxSessions, killing it mid-task) make
their own with the `sshd_factory` fixture; the rest share the session's `sshd`.

Import the fixtures into a test module (`from executor_cli.sshd_server import
sshd_fixture, sshd_factory_fixture`): pytest finds fixtures in a module's namespace, by
their names `sshd` and `sshd_factory`.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import free_port
from whoosh_shared.contract.agents import AgentSpec, SshSettings

SSHD = Path(os.environ.get("WHOOSH_SSHD", "/usr/sbin/sshd"))
START_TIMEOUT_S = 15.0


def require_sshd() -> None:
    """Skip (or, where WHOOSH_REQUIRE_SSHD is set, as on CI, fail) without an sshd binary."""
    if SSHD.exists() and shutil.which("ssh-keygen"):
        return
    why = f"{SSHD} or ssh-keygen not found: ./test installs openssh-server where it can"
    if os.environ.get("WHOOSH_REQUIRE_SSHD"):
        pytest.fail(why)
    pytest.skip(why)


def keygen(path: Path) -> Path:
    """A fresh ed25519 key pair without passphrase; returns the private key's path."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "whoosh-test", "-f", str(path)],
        check=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    return path


def _supports(option: str, config: Path) -> bool:
    """Whether this sshd knows a config option (PerSourcePenalties came with OpenSSH 9.8)."""
    probe = config.with_suffix(".probe")
    probe.write_text(config.read_text() + f"{option}\n")
    result = subprocess.run(
        [str(SSHD), "-t", "-f", str(probe)], capture_output=True, text=True, timeout=30
    )
    probe.unlink()
    return result.returncode == 0


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, from /proc (children before their own children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class SshdServer:
    """One sshd on 127.0.0.1 with its own keys and config."""

    root: Path
    client_key: Path
    max_sessions: int = 10
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    host = "127.0.0.1"
    user = getpass.getuser()

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(self.root / "host_ed25519")
        self.authorized_keys = self.root / "authorized_keys"
        self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        self.known_hosts = self.root / "known_hosts"
        host_pub = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.log = self.root / "sshd.log"
        self.config = self._write_config()

    def _write_config(self) -> Path:
        config = self.root / "sshd_config"
        config.write_text(
            "\n".join(
                [
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
                    "",
                ]
            )
        )
        if _supports("PerSourcePenalties no", config):
            # Newer sshd penalise a source address whose connections end badly (killed
            # sessions, failed auth): every test connects from 127.0.0.1 and does both.
            config.write_text(config.read_text() + "PerSourcePenalties no\n")
        return config

    def settings(self, **overrides: object) -> SshSettings:
        """Client settings that reach this server: its known_hosts, the client key."""
        values: dict[str, object] = {
            "user": self.user,
            "port": self.port,
            "identity_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
            "connect_timeout_s": 10.0,
        }
        values.update(overrides)
        return SshSettings.model_validate(values)

    def agent(self, name: str, command: list[str], **fields: object) -> AgentSpec:
        """A remote CLI agent on this server."""
        ssh = fields.pop("ssh", None)
        settings = ssh if isinstance(ssh, SshSettings) else self.settings()
        return AgentSpec(name=name, command=command, host=self.host, ssh=settings, **fields)

    def start(self) -> SshdServer:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Until the server sends its SSH banner (listening alone is not ready enough)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited at start: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"sshd on port {self.port} not ready after {START_TIMEOUT_S}s")

    def sshd_pids(self) -> list[int]:
        """The listener and its per-connection sshd processes (not the users' commands)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return [self.proc.pid, *(p for p in descendants(self.proc.pid) if comm(p) == "sshd")]

    def crash(self) -> None:
        """SIGKILL every sshd process of this server: every connection drops at once, while
        the commands they started keep running (as after a network cut)."""
        for pid in reversed(self.sshd_pids()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def drop_connections(self) -> None:
        """SIGKILL the per-connection sshd processes only: every connection drops, the
        listener keeps accepting new ones, the commands keep running."""
        assert self.proc is not None
        for pid in reversed(self.sshd_pids()):
            if pid != self.proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP (or SIGCONT) every sshd process: connections go silent without closing,
        as when a host hangs or a network drops packets; only keepalives can tell."""
        for pid in self.sshd_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self) -> None:
        """Stop the listener and every session it still serves."""
        if self.proc is None or self.proc.poll() is not None:
            return
        children = descendants(self.proc.pid)
        self.freeze(False)  # a frozen server would never see the TERM
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


SshdFactory = Callable[..., SshdServer]


@pytest.fixture(scope="session", name="sshd_factory")
def sshd_factory_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFactory]:
    """Start sshd servers (`factory(max_sessions=3)`); all are stopped at the end."""
    require_sshd()
    keys = tmp_path_factory.mktemp("ssh-client")
    client_key = keygen(keys / "id_ed25519")
    servers: list[SshdServer] = []

    def start(max_sessions: int = 10) -> SshdServer:
        server = SshdServer(
            root=tmp_path_factory.mktemp("sshd"), client_key=client_key, max_sessions=max_sessions
        )
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session", name="sshd")
def sshd_fixture(sshd_factory: SshdFactory) -> SshdServer:
    """The session's shared server (OpenSSH's default MaxSessions, 10)."""
    return sshd_factory()
