"""The gateway's MCP endpoint settings (`gateway.mcp` in whoosh.yaml).

Its own module so the MCP server's knobs do not crowd the gateway's section; the
defaults are what AI hosts tolerate: a wait under Claude Code's 5-minute idle limit,
progress well inside it, and result tails small enough for a model's context.
"""

from __future__ import annotations

from pydantic import Field

from whoosh_shared.contract.agents import Strict


class McpSettings(Strict):
    """`/mcp` on the gateway: Streamable HTTP, stateless, the gateway's API keys."""

    enabled: bool = Field(default=True, description="serve MCP at /mcp")
    max_wait_s: float = Field(
        default=240.0,
        gt=0,
        le=3600,
        description="the longest whoosh_wait_task may hold a call (hosts cut idle calls at 300 s)",
    )
    max_submit_wait_s: float = Field(
        default=50.0,
        ge=0,
        le=3600,
        description="the longest wait_s of whoosh_submit_task (some hosts cut calls at 60 s)",
    )
    progress_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="a waiting call sends a progress notification at least this often",
    )
    tail_bytes: int = Field(
        default=4096,
        ge=256,
        le=1_000_000,
        description="tool results carry this much of a task's output (the end); the whole "
        "output is the resource whoosh://tasks/{id}/output",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Host header values accepted besides the gateway's own (host:port, "
        "public_url, and loopback names when it listens on loopback); 'name:*' for any port",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Origin header values accepted besides the gateway's own; a request "
        "without Origin (a non-browser client) is always accepted",
    )
    dns_rebinding_protection: bool = Field(
        default=True,
        description="refuse unknown Host (421) and Origin (403) headers; turn off only behind "
        "a proxy that sets Host itself",
    )
