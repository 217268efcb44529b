"""The gateway's section of `whoosh.yaml`: where it listens, auth, limits, and the
monitor whose Prometheus metrics it serves again as `/metrics`.

Its own module so that the configuration file's loader stays about loading.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from whoosh_shared.contract.agents import Strict
from whoosh_shared.contract.mcp_settings import McpSettings

DEFAULT_GATEWAY_PORT = 4312  # next to the bundled NATS; 8000/8080 are often taken
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class RateLimitSettings(Strict):
    """Per API key; shared by every gateway (the counters live in NATS, not in a gateway)."""

    requests_per_minute: int = Field(default=1200, ge=1, le=10_000_000)
    concurrent_tasks: int = Field(
        default=200, ge=1, le=10_000_000, description="unfinished tasks a key may have"
    )
    refused_keys_per_minute: int = Field(
        default=60,
        ge=1,
        le=10_000_000,
        description="per client address and gateway: unknown, expired or revoked keys the "
        "coordinator refused; beyond it such keys get 429 without asking the coordinator",
    )


class GatewaySettings(Strict):
    """The REST/WebSocket front door. `whoosh up` runs it unless `enabled` is false."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_GATEWAY_PORT, ge=0, le=65535, description="0: a free port")
    public_url: str | None = Field(
        default=None, description="how clients reach it (behind a proxy); default http://host:port"
    )
    insecure_no_auth: bool = Field(
        default=False,
        description="local development only: no API keys, every caller is admin; refused "
        "unless host is a loopback address, and shown in the startup banner",
    )
    max_body_bytes: int = Field(default=2_000_000, ge=1024, le=100_000_000)
    key_cache_s: float = Field(
        default=30.0, ge=0, le=3600, description="verified keys kept; revocation evicts at once"
    )
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    mcp: McpSettings = Field(default_factory=McpSettings, description="the MCP server at /mcp")
    ws_buffer_messages: int = Field(
        default=10_000, ge=10, le=1_000_000, description="per WebSocket; beyond it, closed"
    )
    ws_close_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="how long a WebSocket being closed (a slow client, a revoked key) may "
        "take to accept the close frame; then the connection is dropped",
    )
    request_timeout_s: float = Field(default=10.0, gt=0, le=600)
    socket_send_buffer_bytes: int | None = Field(
        default=None,
        ge=4096,
        le=64 * 1024 * 1024,
        description="cap each connection's kernel send buffer (default: the kernel tunes it); "
        "smaller makes a stalled WebSocket client reach ws_buffer_messages sooner",
    )
    monitor_metrics_url: str | None = Field(
        default=None,
        max_length=2000,
        description="the monitor's Prometheus endpoint (e.g. http://monitor:9464/metrics), "
        "served again as the gateway's /metrics; unset: /metrics answers 404 not_configured "
        "(`whoosh up` sets it to the monitor it starts)",
    )
    monitor_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="the whole fetch of the monitor's metrics; below Prometheus' default "
        "10 s scrape timeout, so a stuck monitor is reported as such, not as a lost scrape",
    )

    @field_validator("monitor_metrics_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        """Caught at start-up rather than as a 502 on every scrape."""
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"monitor_metrics_url {url!r} is not an http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def _no_auth_only_on_loopback(self) -> GatewaySettings:
        if self.insecure_no_auth and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"insecure_no_auth is for local development: host {self.host!r} is not a "
                "loopback address (use 127.0.0.1, or create API keys)"
            )
        return self

    def url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"
