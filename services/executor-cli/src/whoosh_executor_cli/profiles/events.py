"""The one event model every CLI's output is parsed into.

Gemini CLI, Claude Code and Codex each stream their own JSONL dialect; the
executor should not care which one it ran. Each profile's parser turns its
CLI's lines into these events, and `verdict.py` folds them into one outcome.
The events are frozen so a parser can hand them out without the caller being
able to change what the tally has seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Started:
    """The CLI has begun a session (Claude `system/init`, Codex `thread.started`, Gemini `init`)."""

    session_id: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Text the agent wrote for the user (a chunk, or a whole message where the CLI gives no
    chunks); concatenated, the deltas are the run's answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The agent asked to run a tool: a shell command, a file edit, an MCP call...

    `read_only` is set only for tools the profile knows cannot change anything
    (reading a file, a web search); every other tool call counts as a side
    effect, so an unknown tool is treated as one that changed the workspace.
    """

    name: str
    call_id: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict, hash=False)
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call returned; `output` is clipped, the full text stays in the CLI's log."""

    call_id: str | None
    ok: bool
    output: str = ""


@dataclass(frozen=True, slots=True)
class UsageReport:
    """What the run consumed, as the CLI reported it.

    `tokens_in` counts every input token, cached ones included (`cached_tokens`
    says how many of them were cache hits, where the CLI tells). Each CLI reports
    totals for the whole run in its terminal event, so the last report wins.
    """

    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int | None = None
    cost_usd: float | None = None
    duration_s: float | None = None


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """An error the CLI reported. `fatal` errors end the run unless a terminal event follows
    (Codex's top-level `error`); the others are warnings the agent may recover from."""

    message: str
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class Finished:
    """How the run ended.

    Parsers emit it for the CLI's terminal event (Claude `result`, Codex
    `turn.completed`/`turn.failed`, Gemini `result`). When a stream ends without
    one, the verdict makes one from the exit code and sets `by_exit_code`.
    `final_text` is the answer where the terminal event carries it.
    """

    success: bool
    reason: str
    final_text: str | None = None
    by_exit_code: bool = False
    exit_code: int | None = None


AgentEvent = Started | TextDelta | ToolCall | ToolResult | UsageReport | ErrorEvent | Finished
"""Any event a profile's parser produces."""
