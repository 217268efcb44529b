"""Can this agent run on its host? Connect, find its CLI, ask its version; say why not.

Meant for registration (issue 4, part 5): an agent whose host cannot be reached, whose
key is refused, whose host key does not match known_hosts or whose CLI is missing is
refused then, with that precise cause, instead of failing every task later. The probe
uses a connection of its own (not the pool's): it runs once, before any task, and a
failure must not count against the pool's backoff.
"""

from __future__ import annotations

import shlex

import asyncssh
from pydantic import BaseModel, ConfigDict
from whoosh_shared.contract.agents import AgentSpec

from whoosh_executor_cli.ssh_client import connect
from whoosh_executor_cli.ssh_failures import SshFailure, SshFailureCause

COMMAND_TIMEOUT_S = 10.0
VERSION_TIMEOUT_S = 10.0
MAX_VERSION_CHARS = 200


class ProbeResult(BaseModel):
    """What the probe found: ok with the CLI's path (and version if it told), or the cause."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool
    host: str
    cause: SshFailureCause | None = None
    reason: str | None = None
    cli_path: str | None = None
    version: str | None = None


async def probe_agent(spec: AgentSpec, *, version_flag: str | None = "--version") -> ProbeResult:
    """Probe a remote CLI agent's host (a local agent needs no probe: ValueError)."""
    target = spec.ssh_target()
    if target is None:
        raise ValueError(f"agent '{spec.name}' has no host to probe")
    cli = spec.command[0]
    try:
        conn = await connect(target)
    except SshFailure as exc:
        return ProbeResult(ok=False, host=target.label, cause=exc.cause, reason=exc.message)
    try:
        async with conn:
            found = await conn.run(
                f"command -v {shlex.quote(cli)}", check=False, timeout=COMMAND_TIMEOUT_S
            )
            path = str(found.stdout or "").strip()
            if found.exit_status != 0 or not path:
                return ProbeResult(
                    ok=False,
                    host=target.label,
                    cause=SshFailureCause.COMMAND_NOT_FOUND,
                    reason=f"{cli!r} not found on {target.label} (command -v found nothing "
                    "in the login PATH)",
                )
            version = None
            if version_flag:
                version = await _version(conn, path, version_flag)
            return ProbeResult(ok=True, host=target.label, cli_path=path, version=version)
    except (TimeoutError, asyncssh.Error, OSError) as exc:
        return ProbeResult(
            ok=False,
            host=target.label,
            cause=SshFailureCause.CONNECTION_LOST,
            reason=f"ssh: {target.label} stopped answering during the probe ({exc})",
        )


async def _version(conn: asyncssh.SSHClientConnection, path: str, flag: str) -> str | None:
    """The first line the CLI prints for its version flag; None if it says nothing in time
    (a version is informative; a CLI that cannot tell it is not refused for that)."""
    try:
        result = await conn.run(
            f"{shlex.quote(path)} {shlex.quote(flag)} </dev/null",
            check=False,
            timeout=VERSION_TIMEOUT_S,
        )
    except (TimeoutError, asyncssh.Error):
        return None
    text = str(result.stdout or "").strip() or str(result.stderr or "").strip()
    if result.exit_status != 0 or not text:
        return None
    return text.splitlines()[0][:MAX_VERSION_CHARS]
