"""The agent definition: what `whoosh.yaml`, the CLI and commands all describe."""

from __future__ import annotations

import shlex
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from whoosh_shared.enums import AgentType, CliKind

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


class AgentSpec(Strict):
    """Everything needed to register an agent and to run work on it."""

    name: AgentName
    type: AgentType = AgentType.CLI
    display_name: str | None = None
    endpoint: str | None = Field(default=None, description="HTTP base URL (ollama / openai)")
    host: str | None = Field(default=None, description="SSH host for remote CLI agents")
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

    @model_validator(mode="after")
    def _type_needs_its_target(self) -> AgentSpec:
        if self.type is AgentType.CLI and not self.command:
            raise ValueError(f"agent '{self.name}': a cli agent needs a 'command'")
        if self.type is not AgentType.CLI and not self.endpoint:
            raise ValueError(f"agent '{self.name}': a {self.type.value} agent needs an 'endpoint'")
        return self


class AgentUpdate(Strict):
    """Fields an update may change; None means 'leave as is'."""

    display_name: str | None = None
    endpoint: str | None = None
    host: str | None = None
    command: list[str] | None = None
    workdir: str | None = None
    env: dict[str, str] | None = None
    model: str | None = None
    specialization: str | None = None
    capabilities: dict[CapabilityName, Proficiency] | None = None
    hardware: Hardware | None = None
    max_concurrent: int | None = Field(default=None, ge=1, le=1024)
    performance_targets: PerformanceTargets | None = None

    _capabilities_from_list = field_validator("capabilities", mode="before")(
        AgentSpec._capabilities_from_list.__func__  # type: ignore[attr-defined]
    )
    _command_from_string = field_validator("command", mode="before")(
        AgentSpec._command_from_string.__func__  # type: ignore[attr-defined]
    )
    _endpoint_is_http_url = field_validator("endpoint")(
        AgentSpec._endpoint_is_http_url.__func__  # type: ignore[attr-defined]
    )

    def changes(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
