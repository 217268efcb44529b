"""`whoosh.yaml`: one file that configures a whole WHOOSH installation.

Loaded once per process, validated completely, overridable from the environment
(`WHOOSH_NATS_URL`, `WHOOSH_STORE_URL`, `WHOOSH_DATA_DIR`, or any key as
`WHOOSH__SECTION__KEY=value`). A malformed file fails at start with the file,
the line and the field named, never later in the middle of work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from whoosh_shared.contract.agents import AgentSpec, Strict
from whoosh_shared.contract.alerts import (
    DEFAULT_RULES,
    AlertMetric,
    AlertRule,
    WebhookSettings,
    check_threshold,
)
from whoosh_shared.contract.escalation_rules import EscalationRule
from whoosh_shared.contract.gateway_settings import GatewaySettings
from whoosh_shared.contract.limits import LimitSettings
from whoosh_shared.contract.nats_credentials import NatsCredentials
from whoosh_shared.contract.security_settings import SecuritySettings
from whoosh_shared.contract.stream_limits import StreamLimits

DEFAULT_CONFIG_NAME = "whoosh.yaml"
DEFAULT_NATS_PORT = 4311  # not 4222: machines often run their own NATS there
ENV_SHORTCUTS = {
    "WHOOSH_NATS_URL": ("nats", "url"),
    "WHOOSH_STORE_URL": ("store", "url"),
    "WHOOSH_DATA_DIR": ("data_dir",),
}


class ConfigError(ValueError):
    """A configuration problem, worded for the person who wrote the file."""


class ClusterSettings(Strict):
    name: str = "WHOOSH"
    region: str | None = None


class NatsSettings(NatsCredentials):
    url: str | None = Field(default=None, description="existing NATS to use; unset: embedded")
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_NATS_PORT, ge=0, le=65535, description="0: a free port")
    stream_replicas: int = Field(default=1, ge=1, le=5, description="3 on a NATS cluster")
    streams: StreamLimits = Field(default_factory=StreamLimits)

    def client_url(self) -> str:
        return self.url or f"nats://{self.host}:{self.port}"


class StoreSettings(Strict):
    url: str | None = Field(
        default=None,
        description="sqlite:///PATH or postgresql://USER@HOST:PORT/DB[?schema=S]; unset: SQLite "
        "file in the data dir",
    )
    sync: Literal["normal", "full"] = Field(
        default="normal",
        description="commit durability. normal: a commit survives a crash of any WHOOSH "
        "process, an OS crash may lose the last commits (SQLite WAL synchronous=NORMAL; "
        "PostgreSQL synchronous_commit=off); full: every commit is flushed to disk before "
        "it is acknowledged (SQLite synchronous=FULL; PostgreSQL synchronous_commit=on)",
    )


class FairShareSettings(Strict):
    """Shares of queued work at equal priority, by API key name (unset: 1 each)."""

    shares: dict[str, float] = Field(
        default_factory=dict,
        description="API key name -> share (e.g. ci: 1, alice: 3); a key with share 3 gets "
        "three turns to one of a key with share 1",
    )

    @field_validator("shares")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, share in value.items():
            if not 0 < share <= 1000:
                raise ValueError(f"share of key {name!r} must be > 0 and <= 1000, not {share}")
        return value


class CoordinatorSettings(Strict):
    poll_interval_s: float = Field(default=0.25, gt=0, le=60)
    sweep_interval_s: float = Field(default=0.5, gt=0, le=60)
    timeout_grace_s: float = Field(default=5.0, ge=0, le=3600)
    fair_share: FairShareSettings = Field(default_factory=FairShareSettings)
    prices: dict[str, dict[Literal["in", "out"], Annotated[float, Field(ge=0)]]] = Field(
        default_factory=dict,
        description="USD per million tokens in and out, per agent name or model, for budgets "
        "(a CLI's own reported cost wins; unlisted local models cost 0)",
    )
    thread_escalation: list[EscalationRule] = Field(
        default_factory=list,
        max_length=20,
        description="escalation rules every thread gets (a thread's own rule of the same "
        "name replaces one of these)",
    )


class ExecutorSettings(Strict):
    max_parallel: int = Field(
        default=32,
        ge=1,
        le=4096,
        description="attempts one executor process runs at once, per agent type it serves "
        "(executor-ollama serves two: ollama and openai-compatible)",
    )
    ack_wait_s: float = Field(default=30.0, ge=1, le=3600)
    kill_grace_s: float = Field(default=2.0, ge=0, le=60)
    start_before_claim: bool = Field(
        default=True,
        description="executor-cli: start a local command while its claim (StartTask) is on "
        "the way, its prompt and output held until the claim is accepted (a refused claim "
        "kills it). Turn off for agents whose command acts without reading its prompt.",
    )
    milestone_interval_s: float = Field(default=5.0, gt=0, le=3600)
    probe_interval_s: float = Field(
        default=15.0, gt=0, le=3600, description="how often LLM servers' inventory is probed"
    )
    probe_timeout_s: float = Field(default=5.0, gt=0, le=600)
    heartbeat_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="how often executors tell the monitor they live"
    )


class MonitoringSettings(Strict):
    """The monitor: agent health from heartbeats and probes, metrics, alert rules.

    `health_check_interval` is the detection window (the seeds' key, their 30 s made 5):
    an agent whose executors all stopped heartbeating, or whose server stopped answering,
    is out of rotation within it. The probe interval and timeout default to a fifth of it,
    and an executor counts as dead after 60 % of it without a heartbeat."""

    metrics_retention_days: int = Field(default=30, ge=1)
    alert_thresholds: dict[AlertMetric, float] = Field(
        default_factory=dict, description="the seeds' shorthand: metric -> threshold"
    )
    health_check_interval: float = Field(default=5.0, gt=0, le=3600)
    probe_interval_s: float | None = Field(default=None, gt=0, le=3600)
    probe_timeout_s: float | None = Field(default=None, gt=0, le=600)
    probe_failures: int = Field(
        default=2, ge=1, le=100, description="failed probes in a row that make an agent unhealthy"
    )
    requeue_grace_s: float = Field(
        default=10.0,
        ge=0,
        le=86400,
        description="a task still held by an unhealthy agent or a dead executor after this "
        "long is sent back to the queue",
    )
    metrics_host: str = Field(default="127.0.0.1", description="where /metrics listens")
    metrics_port: int = Field(default=9464, ge=0, le=65535, description="0: a free port")
    metrics_fd: int | None = Field(
        default=None,
        ge=3,
        description="a listening socket the monitor inherits instead of binding "
        "metrics_host:metrics_port (`whoosh up` binds it once, so a restarted monitor "
        "never finds its port taken)",
    )
    alert_rules: list[AlertRule] = Field(
        default_factory=list, description="added to the defaults; the same name replaces one"
    )
    default_alert_rules: bool = Field(default=True, description="false: only alert_rules")
    alert_webhook: WebhookSettings | None = None
    evaluation_interval_s: float = Field(default=1.0, gt=0, le=3600)

    @field_validator("alert_thresholds")
    @classmethod
    def _thresholds_fit_their_metrics(
        cls, value: dict[AlertMetric, float]
    ) -> dict[AlertMetric, float]:
        """The seeds' shorthand: `cpu_usage: 85` sets the threshold of the default rule."""
        for metric, threshold in value.items():
            check_threshold(metric, threshold)
        return value

    @field_validator("alert_rules")
    @classmethod
    def _rule_names_unique(cls, value: list[AlertRule]) -> list[AlertRule]:
        names = [rule.name for rule in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"alert rule names must be unique: {', '.join(twice)}")
        return value

    def rules(self) -> list[AlertRule]:
        """The rules in force: defaults (with alert_thresholds applied), then alert_rules."""
        chosen: dict[str, AlertRule] = {}
        if self.default_alert_rules:
            for rule in DEFAULT_RULES:
                threshold = self.alert_thresholds.get(rule.metric)
                if threshold is not None:
                    rule = rule.model_copy(update={"threshold": threshold})
                chosen[rule.name] = rule
        for rule in self.alert_rules:
            chosen[rule.name] = rule
        return list(chosen.values())

    @property
    def probe_every_s(self) -> float:
        return self.probe_interval_s or self.health_check_interval / 5

    @property
    def probe_within_s(self) -> float:
        return self.probe_timeout_s or max(0.5, self.health_check_interval / 5)

    def executor_dead_after_s(self, interval_s: float) -> float:
        """Silence after which an executor heartbeating every `interval_s` counts as dead."""
        return max(0.6 * self.health_check_interval, 2.5 * interval_s)


class WhooshConfig(Strict):
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    data_dir: Path = Path(".whoosh")
    nats: NatsSettings = Field(default_factory=NatsSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    coordinator: CoordinatorSettings = Field(default_factory=CoordinatorSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    agents: dict[str, AgentSpec] = Field(default_factory=dict)
    workflows: dict[str, Any] = Field(default_factory=dict, description="reserved (workflows)")
    mcp_servers: dict[str, Any] = Field(default_factory=dict, description="reserved (MCP)")
    security: SecuritySettings = Field(default_factory=SecuritySettings)

    @field_validator("agents", mode="before")
    @classmethod
    def _name_agents_by_key(cls, value: Any) -> Any:
        """Agents are keyed by name; an inner `name` (as in the seeds) is a display name."""
        if not isinstance(value, Mapping):
            return value
        named = {}
        for key, spec in value.items():
            if isinstance(spec, Mapping):
                spec = dict(spec)
                inner = spec.pop("name", None)
                if inner is not None and inner != key:
                    spec.setdefault("display_name", inner)
                spec["name"] = key
            named[key] = spec
        return named

    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{(self.data_dir / 'events.sqlite').resolve()}"


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> WhooshConfig:
    """Load `path` (or $WHOOSH_CONFIG, or ./whoosh.yaml if present), then apply env overrides."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("WHOOSH_CONFIG")
    if path is None and Path(DEFAULT_CONFIG_NAME).is_file():
        path = DEFAULT_CONFIG_NAME
    raw: dict[str, Any] = {}
    lines: dict[tuple[str, ...], int] = {}
    if path is not None:
        raw, lines = _read_yaml(Path(path))
    _apply_env(raw, environ)
    try:
        return WhooshConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path, lines)) from None


def parse_config_text(text: str, source: str = "<text>") -> WhooshConfig:
    """Validate YAML text (used by tests and by `whoosh agent add --file`)."""
    raw, lines = _parse_yaml(text, source)
    try:
        return WhooshConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, lines)) from None


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return _parse_yaml(text, str(path))


def _parse_yaml(text: str, source: str) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}:{where}: malformed YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: malformed YAML: {exc}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, not {type(data).__name__}")
    if set(data) == {"whoosh"} and isinstance(data["whoosh"], dict):  # the seeds' wrapper
        data = data["whoosh"]
        node = node.value[0][1]
    return data, _line_numbers(node)


def _line_numbers(node: yaml.Node, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each key path of a YAML document to its 1-based line, to name lines in errors."""
    found: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, str(key_node.value))
            found[key_path] = key_node.start_mark.line + 1
            found.update(_line_numbers(value_node, key_path))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            item_path = (*path, str(index))
            found[item_path] = item.start_mark.line + 1
            found.update(_line_numbers(item, item_path))
    return found


def _describe(
    exc: ValidationError, source: str | Path | None, lines: dict[tuple[str, ...], int]
) -> str:
    where = str(source) if source else "configuration"
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        line = _nearest_line(loc, lines)
        at = f" (line {line})" if line else ""
        problems.append(f"  {'.'.join(loc) or '<top>'}{at}: {error['msg']}")
    return f"{where}: invalid configuration:\n" + "\n".join(problems)


def _nearest_line(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    for cut in range(len(loc), 0, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, path in ENV_SHORTCUTS.items():
        if environ.get(name):
            _set_path(raw, path, environ[name])
    for name, value in environ.items():
        if name.startswith("WHOOSH__"):
            path = tuple(part.lower() for part in name[len("WHOOSH__") :].split("__") if part)
            if path:
                _set_path(raw, path, yaml.safe_load(value) if value else value)


def _set_path(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = raw
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value
