"""The agent definition: what `whoosh.yaml`, the CLI and commands all describe."""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from whoosh_shared.contract.enums import AgentType, CliKind

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
AgentName = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="lower-case letters, digits, '-' and '_' (it becomes part of NATS subjects)",
    ),
]
CapabilityName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
Proficiency = Annotated[float, Field(ge=0.0, le=1.0)]
Weight = Annotated[
    int,
    Field(
        ge=0,
        le=100,
        description="traffic weight 0..100: agents with a free slot share new work in "
        "proportion; 0 drains (no new work, running work finishes)",
    ),
]


class Strict(BaseModel):
    """Base for every boundary model: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Hardware(Strict):
    gpu_type: str | None = None
    vram_gb: float | None = Field(default=None, ge=0)
    cpu_cores: int | None = Field(default=None, ge=1)


class PerformanceTargets(Strict):
    min_tps: float | None = Field(default=None, ge=0, description="minimum tokens per second")
    max_response_time: float | None = Field(
        default=None, gt=0, description="seconds a response may take"
    )


HOST_PATTERN = (
    r"^(?:[A-Za-z0-9._][A-Za-z0-9._+-]*@)?"  # user@
    r"(?:[A-Za-z0-9_%][A-Za-z0-9._%-]*|\[[0-9A-Fa-f:.%]+\])"  # name, address or [IPv6]
    r"(?::\d{1,5})?$"  # :port
)


class SshSettings(Strict):
    """How the CLI executor reaches a remote agent's host over SSH.

    Defaults are the safe ones: host keys are checked against known_hosts (turning that
    off is this explicit, visible setting, never a fallback), and a connection carries
    fewer channels than OpenSSH's default MaxSessions (10), leaving room for the
    separate channel a cancel uses to kill a run.
    """

    user: str | None = Field(
        default=None, description="remote user (default: `user@` in host, else the executor's user)"
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="default: `:port` in host, else 22"
    )
    identity_file: str | None = Field(
        default=None, description="private key (default: ~/.ssh/id_* and ssh-agent)"
    )
    known_hosts: str | None = Field(
        default=None, description="known_hosts file (default: ~/.ssh/known_hosts)"
    )
    insecure_skip_host_key_check: bool = Field(
        default=False, description="accept any host key: exposes the prompt to a man in the middle"
    )
    channels_per_connection: int = Field(
        default=8, ge=1, le=256, description="keep below the server's MaxSessions"
    )
    max_connections: int = Field(default=4, ge=1, le=64, description="connections per host")
    keepalive_interval_s: float = Field(default=15.0, gt=0, le=3600)
    keepalive_count_max: int = Field(default=3, ge=1, le=100)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_host_key_policy(self) -> SshSettings:
        if self.insecure_skip_host_key_check and self.known_hosts:
            raise ValueError("set either 'known_hosts' or 'insecure_skip_host_key_check', not both")
        return self


class SshTarget(Strict):
    """Where and as whom to connect: the agent's `host` resolved against its `ssh` settings."""

    host: str
    port: int = 22
    user: str | None = None
    settings: SshSettings = Field(default_factory=SshSettings)

    @property
    def label(self) -> str:
        """`user@host:port` as it appears in logs and failure reasons."""
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{user}{host}:{self.port}"


def split_host(value: str) -> tuple[str | None, str, int | None]:
    """`[user@]host[:port]` (an IPv6 address in brackets) into (user, host, port)."""
    user, _, rest = value.rpartition("@")
    port: int | None = None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail:
            port = int(tail.removeprefix(":"))
    elif rest.count(":") == 1:
        host, _, digits = rest.partition(":")
        port = int(digits)
    else:
        host = rest
    return user or None, host, port


class AgentSpec(Strict):
    """Everything needed to register an agent and to run work on it."""

    name: AgentName
    type: AgentType = AgentType.CLI
    display_name: str | None = None
    endpoint: str | None = Field(default=None, description="HTTP base URL (ollama / openai)")
    host: str | None = Field(default=None, description="SSH host for remote CLI agents")
    ssh: SshSettings | None = Field(
        default=None, description="how to reach `host` (defaults apply when unset)"
    )
    cli: CliKind = CliKind.GENERIC
    command: list[str] = Field(default_factory=list, description="argv; the prompt goes on stdin")
    workdir: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    model: str | None = None
    specialization: str | None = None
    capabilities: dict[CapabilityName, Proficiency] = Field(default_factory=dict)
    hardware: Hardware = Field(default_factory=Hardware)
    max_concurrent: int = Field(default=1, ge=1, le=1024)
    performance_targets: PerformanceTargets = Field(default_factory=PerformanceTargets)
    enabled: bool = True
    weight: Weight = 100
    projects: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="projects this agent serves, for semantic addresses (empty: every project)",
    )

    @field_validator("capabilities", mode="before")
    @classmethod
    def _capabilities_from_list(cls, value: Any) -> Any:
        """The seeds write capabilities as a list; a list means full proficiency."""
        if isinstance(value, list | tuple):
            return {str(name): 1.0 for name in value}
        return value

    @field_validator("command", mode="before")
    @classmethod
    def _command_from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return shlex.split(value)
        return value

    @field_validator("env")
    @classmethod
    def _env_bounded(cls, value: dict[str, str]) -> dict[str, str]:
        from whoosh_shared.contract.limits import check_map  # limits builds on this module

        check_map(value, "env")
        size = sum(len(k) + len(v) for k, v in value.items())
        if size > 65_536:
            raise ValueError(f"env holds {size} characters, over the limit of 65536")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint_is_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"endpoint {value!r} is not an http(s) URL (e.g. http://gpu1:11434)")
        try:
            parsed.port  # noqa: B018 - raises on a port that is not a number in range
        except ValueError:
            raise ValueError(f"endpoint {value!r} has an invalid port") from None
        return value.rstrip("/")

    @field_validator("host")
    @classmethod
    def _host_is_ssh_destination(cls, value: str | None) -> str | None:
        return _check_host(value)

    @model_validator(mode="after")
    def _type_needs_its_target(self) -> AgentSpec:
        if self.type is AgentType.CLI and not self.command:
            raise ValueError(f"agent '{self.name}': a cli agent needs a 'command'")
        if self.type is not AgentType.CLI and not self.endpoint:
            raise ValueError(f"agent '{self.name}': a {self.type.value} agent needs an 'endpoint'")
        return self

    @model_validator(mode="after")
    def _ssh_needs_a_host(self) -> AgentSpec:
        if self.ssh is not None and not self.host:
            raise ValueError(f"agent '{self.name}': 'ssh' settings need a 'host'")
        if self.host:
            self.ssh_target()  # a user or port given twice, differently, is refused here
        return self

    def ssh_target(self) -> SshTarget | None:
        """Where this agent runs over SSH, or None for a local agent.

        `host` may carry `user@` and `:port`; the `ssh` settings may too, but not
        differently, since which one wins would be a guess.
        """
        if not self.host:
            return None
        settings = self.ssh or SshSettings()
        user, host, port = split_host(self.host)
        for what, in_host, in_settings in (
            ("user", user, settings.user),
            ("port", port, settings.port),
        ):
            if in_host is not None and in_settings is not None and in_host != in_settings:
                raise ValueError(
                    f"agent '{self.name}': {what} {in_host!r} in host and {in_settings!r} "
                    "in ssh settings differ"
                )
        return SshTarget(
            host=host,
            port=port or settings.port or 22,
            user=user or settings.user,
            settings=settings,
        )


class AgentUpdate(Strict):
    """Fields an update may change; None means 'leave as is'."""

    display_name: str | None = None
    endpoint: str | None = None
    host: str | None = None
    ssh: SshSettings | None = None
    command: list[str] | None = None
    workdir: str | None = None
    env: dict[str, str] | None = None
    model: str | None = None
    specialization: str | None = None
    capabilities: dict[CapabilityName, Proficiency] | None = None
    hardware: Hardware | None = None
    max_concurrent: int | None = Field(default=None, ge=1, le=1024)
    performance_targets: PerformanceTargets | None = None
    weight: Weight | None = None

    _capabilities_from_list = field_validator("capabilities", mode="before")(
        AgentSpec._capabilities_from_list.__func__  # type: ignore[attr-defined]
    )
    _command_from_string = field_validator("command", mode="before")(
        AgentSpec._command_from_string.__func__  # type: ignore[attr-defined]
    )
    _endpoint_is_http_url = field_validator("endpoint")(
        AgentSpec._endpoint_is_http_url.__func__  # type: ignore[attr-defined]
    )
    _host_is_ssh_destination = field_validator("host")(
        AgentSpec._host_is_ssh_destination.__func__  # type: ignore[attr-defined]
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _check_host(value: str | None) -> str | None:
    """A host is `[user@]name[:port]`: no spaces, no leading '-', a port in range."""
    if value is None:
        return value
    value = value.strip()
    if not re.match(HOST_PATTERN, value):
        raise ValueError(f"host {value!r} is not [user@]host[:port] (e.g. builder@dev-box.lan)")
    _, _, port = split_host(value)
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"host {value!r} has an invalid port")
    return value
