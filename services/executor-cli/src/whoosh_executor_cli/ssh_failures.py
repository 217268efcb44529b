"""Why an SSH connection or remote command failed, in words an operator can act on.

Each failure has a cause from a closed list, because what follows differs: a host
that is down may be up for the next attempt (retryable), while a rejected key, a host
key that does not match known_hosts, or a CLI missing on the host will fail the same
way every time until someone changes something (not retryable; a registration probe
refuses the agent with the same words).
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum

import asyncssh
from whoosh_shared.contract.agents import SshTarget


class SshFailureCause(StrEnum):
    UNREACHABLE = "host_unreachable"
    AUTH_FAILED = "auth_failed"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    CONNECTION_LOST = "connection_lost"
    COMMAND_NOT_FOUND = "command_not_found"
    SSH_ERROR = "ssh_error"

    @property
    def retryable(self) -> bool:
        """Whether another attempt (later, or on another agent) may go differently."""
        return self in (
            SshFailureCause.UNREACHABLE,
            SshFailureCause.CONNECTION_LOST,
            SshFailureCause.SSH_ERROR,
        )


class SshFailure(Exception):
    """An SSH failure with its cause; `str()` is the sentence for reports and logs."""

    def __init__(self, cause: SshFailureCause, message: str) -> None:
        super().__init__(message)
        self.cause = cause
        self.message = message


def known_hosts_path(target: SshTarget) -> str | None:
    """The known_hosts file checked for `target`, or None where checking is turned off."""
    if target.settings.insecure_skip_host_key_check:
        return None
    return os.path.expanduser(target.settings.known_hosts or "~/.ssh/known_hosts")


def classify_connect_error(exc: BaseException, target: SshTarget) -> SshFailure:
    """The cause and sentence for an exception raised while connecting to `target`."""
    where = target.label
    if isinstance(exc, SshFailure):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return _host_key_failure(target, exc)
    if isinstance(exc, asyncssh.PermissionDenied):
        key = target.settings.identity_file or "the default keys and ssh-agent"
        return SshFailure(
            SshFailureCause.AUTH_FAILED,
            f"ssh: authentication failed for {where} with {key} ({exc.reason})",
        )
    if isinstance(exc, socket.gaierror):
        return SshFailure(
            SshFailureCause.UNREACHABLE, f"ssh: cannot resolve {target.host!r}: {exc.strerror}"
        )
    if isinstance(exc, TimeoutError):
        return SshFailure(
            SshFailureCause.UNREACHABLE,
            f"ssh: cannot reach {where}: no answer within {target.settings.connect_timeout_s:g}s",
        )
    if isinstance(exc, OSError):
        return SshFailure(
            SshFailureCause.UNREACHABLE,
            f"ssh: cannot reach {where}: {exc.strerror or exc}",
        )
    if isinstance(exc, asyncssh.ConnectionLost | asyncssh.DisconnectError):
        return SshFailure(
            SshFailureCause.UNREACHABLE,
            f"ssh: {where} closed the connection during the handshake ({exc.reason})",
        )
    return SshFailure(SshFailureCause.SSH_ERROR, f"ssh: cannot connect to {where}: {exc}")


def _host_key_failure(target: SshTarget, exc: asyncssh.HostKeyNotVerifiable) -> SshFailure:
    """Unknown host or changed key: the first needs known_hosts filled in, the second is
    either a reinstalled host or someone in the middle, and must never be glossed over."""
    path = known_hosts_path(target)
    listed = _known_keys_for(path, target) if path else 0
    if listed:
        return SshFailure(
            SshFailureCause.HOST_KEY_MISMATCH,
            f"ssh: host key mismatch for {target.label}: the key it presented differs from "
            f"the one in {path} (a reinstalled host, or a man in the middle)",
        )
    where = f"{path}" if path and os.path.exists(path) else f"{path} (no such file)"
    return SshFailure(
        SshFailureCause.HOST_KEY_UNKNOWN,
        f"ssh: host key of {target.label} is not in {where}; add it with "
        f"ssh-keyscan -p {target.port} {target.host} >> {path} ({exc.reason})",
    )


def _known_keys_for(path: str, target: SshTarget) -> int:
    """How many host keys `path` lists for the target (0 if unreadable)."""
    try:
        known = asyncssh.read_known_hosts(path)
    except (OSError, ValueError):
        return 0
    port = target.port if target.port != 22 else None
    trusted, trusted_ca, *_ = known.match(target.host, "", port)
    return len(trusted) + len(trusted_ca)
