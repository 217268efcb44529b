"""`security:` in whoosh.yaml: who may define what runs, and where agents may point.

Registering an agent of type `cli` is running code on an executor's host, so by default
only an **admin** key may register or change one; `allowed_commands` lets operators
register the commands listed there. `allowed_endpoints` limits the hosts LLM endpoints and
SSH agents may name; link-local and cloud-metadata addresses are refused unless listed.
"""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from whoosh_shared.contract.agents import Strict


class SecuritySettings(Strict):
    allowed_commands: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="shell-style patterns (fnmatch) matched against the command line "
        "(shlex-joined argv), e.g. 'claude -p *' (a trailing ' *' also allows no further "
        "arguments): an operator may register or change a "
        "command agent whose command matches one; an admin may register any",
    )
    allowed_endpoints: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="hosts an agent's endpoint or SSH host may name: a host name (patterns "
        "like '*.lan' allowed), an address or a CIDR block ('10.0.0.0/8', 'fd00::/8'); "
        "empty: any host except link-local and cloud-metadata ones",
    )
    # Keys the seeds' whoosh.yaml carries; accepted, not used.
    require_approval: bool | None = Field(default=None, description="reserved")
    api_rate_limit: int | None = Field(default=None, description="reserved (see gateway)")
    session_timeout: int | None = Field(default=None, description="reserved")

    @field_validator("allowed_commands", "allowed_endpoints")
    @classmethod
    def _no_blank_entries(cls, value: list[str]) -> list[str]:
        if any(not entry.strip() for entry in value):
            raise ValueError("entries must not be empty")
        return [entry.strip() for entry in value]

    @field_validator("allowed_endpoints")
    @classmethod
    def _cidr_entries_parse(cls, value: list[str]) -> list[str]:
        for entry in value:
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not a CIDR block (e.g. 10.0.0.0/8)") from None
        return value
