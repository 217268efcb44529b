"""Who may define an agent, and where it may point: one pure rule for every interface.

The coordinator applies it to every RegisterAgent / UpdateAgent (authoritative: REST,
WebSocket, MCP and the `whoosh` command all inherit it); the gateway applies the same rule
before it asks an executor to test a new agent's connectivity, so a refused definition
never reaches a host. Every refusal names the role, setting or entry that would allow it.

`role` is the caller's API-key role as the gateway verified it; None means a client on
the bus itself (`whoosh up`, `whoosh --nats`), whose NATS credentials are the authority.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import shlex
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from whoosh_shared.contract.agents import AgentSpec, split_host
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.contract.security_settings import SecuritySettings

RUN_FIELDS = frozenset({"command", "workdir", "env", "host", "ssh"})
"""Fields of a command agent that decide what runs where."""
METADATA_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
)
METADATA_NAMES = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
     "instance-data.ec2.internal", "metadata.azure.com"}
)  # fmt: skip
CODE_CHANGING_ENV = frozenset(
    {"PATH", "BASH_ENV", "ENV", "IFS", "SHELLOPTS", "PYTHONPATH", "PYTHONSTARTUP",
     "PYTHONHOME", "NODE_OPTIONS", "PERL5OPT", "PERL5LIB", "RUBYOPT", "GIT_SSH_COMMAND"}
)  # fmt: skip


class PolicyRefusal(ValueError):
    """The definition is not allowed for this caller; the message says what would allow it."""


def check_definition(
    spec: AgentSpec,
    role: Role | None,
    security: SecuritySettings,
    changed: Iterable[str] | None = None,
) -> None:
    """Raise PolicyRefusal unless `role` may define `spec`. `changed`: the fields an update
    sets (None: a registration, everything counts)."""
    for host, what in _targets(spec):
        check_endpoint_host(host, what, security)
    if spec.type is not AgentType.CLI or role in (None, Role.ADMIN):
        return
    touched = RUN_FIELDS if changed is None else RUN_FIELDS & set(changed)
    if not touched:
        return  # e.g. capabilities or max_concurrent: nothing about what runs
    if role is not Role.OPERATOR:
        raise PolicyRefusal(f"changing a command agent needs the admin role (key role: {role})")
    check_command(spec.command, security)
    dangerous = sorted(name for name in spec.env if _changes_code(name))
    if dangerous:
        raise PolicyRefusal(
            f"env {', '.join(dangerous)} changes which code the command runs: only an admin "
            "key may set it (security.allowed_commands covers the command, not its environment)"
        )


def check_command(command: list[str], security: SecuritySettings) -> None:
    """An operator's command agent: its command line must match an allowed_commands entry."""
    line = shlex.join(command)
    if any(_command_matches(line, pattern) for pattern in security.allowed_commands):
        return
    listed = (
        f"none of its {len(security.allowed_commands)} entries matches"
        if security.allowed_commands
        else "it is empty"
    )
    raise PolicyRefusal(
        f"a command agent runs {line!r} on the executor's host: that needs an admin key, or "
        f"an operator key with the command matched by an entry of security.allowed_commands "
        f"in whoosh.yaml ({listed}; e.g. add {line!r})"
    )


def check_endpoint_host(host: str, what: str, security: SecuritySettings) -> None:
    """An endpoint or SSH host: within allowed_endpoints when it is set, and never a
    link-local or cloud-metadata address unless an entry names it."""
    listed = _listed(host, security.allowed_endpoints)
    if _metadata(host) and not listed:
        raise PolicyRefusal(
            f"{what} {host} is a link-local or cloud-metadata address: refused unless "
            "security.allowed_endpoints in whoosh.yaml lists it"
        )
    if security.allowed_endpoints and not listed:
        raise PolicyRefusal(
            f"{what} {host} is not in security.allowed_endpoints in whoosh.yaml "
            f"({', '.join(security.allowed_endpoints[:5])}"
            f"{', ...' if len(security.allowed_endpoints) > 5 else ''})"
        )


def merged_spec(current: Mapping[str, Any], changes: Mapping[str, Any]) -> AgentSpec:
    """The definition an update would leave (to judge the result, not the request)."""
    return AgentSpec.model_validate({**current, **changes})


def _targets(spec: AgentSpec) -> list[tuple[str, str]]:
    found = []
    if spec.endpoint:
        hostname = urlparse(spec.endpoint).hostname
        if hostname:
            found.append((hostname, "endpoint host"))
    if spec.host:
        found.append((split_host(spec.host)[1], "SSH host"))
    return found


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _metadata(host: str) -> bool:
    address = _address(host)
    if address is None:
        return host.lower().rstrip(".") in METADATA_NAMES
    return any(address in network for network in METADATA_NETWORKS)


def _listed(host: str, entries: list[str]) -> bool:
    address = _address(host)
    for entry in entries:
        if address is not None:
            network = _network(entry)
            if network is not None and address in network:
                return True
        elif "/" not in entry and fnmatch.fnmatchcase(host.lower(), entry.lower()):
            return True
    return False


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


def _command_matches(line: str, pattern: str) -> bool:
    """fnmatch, where a trailing ' *' also covers no arguments ('claude *' allows 'claude')."""
    if fnmatch.fnmatchcase(line, pattern):
        return True
    return pattern.endswith(" *") and fnmatch.fnmatchcase(line, pattern[:-2])


def _changes_code(name: str) -> bool:
    upper = name.upper()
    return upper in CODE_CHANGING_ENV or upper.startswith(("LD_", "DYLD_"))
