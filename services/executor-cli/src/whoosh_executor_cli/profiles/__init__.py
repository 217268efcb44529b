"""Agent profiles: how to run each vendor coding CLI non-interactively and read its output.

Gemini CLI, Claude Code and Codex each have a headless mode that streams JSON
lines, each in its own dialect; a `generic` agent is any other command, read as
plain text. A profile turns one CLI's dialect into the events of `events.py`
(started, text delta, tool call, tool result, usage, error, finished), so the
executor handles every agent the same way. Everything here is pure: no
processes, no I/O, which is why it is tested on recorded output.

How the executor is meant to use it, for one attempt of a `cli` agent:

1. `profile = profile_for(item.agent.cli)`.
2. `argv = profile.build_argv(item.agent.command)`: the agent's own command with the
   flags its CLI needs for machine-readable output. The prompt is never added to argv;
   it is written to the process's stdin (as `LocalProcess` already does), which every
   profile here relies on.
3. `run = profile.start()`, then `run.feed(line)` for every stdout line, in order, as it
   arrives (stderr is not fed). The returned events can be published as progress; the
   raw lines should still be streamed and kept in the output tail as today, since lines
   a profile ignores (non-JSON noise from a JSON CLI) are only visible there. Long lines
   cut into pieces by the line splitter are joined back by the JSON parsers.
4. When the process has exited by itself: `verdict = run.finish(exit_code)`. Success is
   decided by the CLI's terminal event (Claude `result`, Codex `turn.completed` /
   `turn.failed`, Gemini `result`); the exit code decides only when no terminal event
   arrived, and `verdict.reason` says so. A timeout or a cancel is still reported as
   such by the executor, not through a verdict.
5. Report it: `CompleteTask(output=verdict.text, exit_code=..., usage=verdict.to_usage(
   result.duration_s))` when `verdict.success`, else `FailTask(reason=verdict.reason,
   ..., retryable=verdict.retryable(workspace_disposable=...), usage=...)`. `to_usage`
   gives the contract's `Usage(tokens_in, tokens_out, cost_usd, duration_s)`, so the
   figures the CLI reported land in the task's events. `retryable` is false once the
   agent ran a tool that may have changed the workspace, unless the task says its
   workspace is disposable: re-running half-done edits is not safe to do unasked.
"""

from __future__ import annotations

from whoosh_executor_cli.profiles.base import AgentRun, LineParser, Profile
from whoosh_executor_cli.profiles.events import (
    AgentEvent,
    ErrorEvent,
    Finished,
    Started,
    TextDelta,
    ToolCall,
    ToolResult,
    UsageReport,
)
from whoosh_executor_cli.profiles.registry import PROFILES, profile_for
from whoosh_executor_cli.profiles.verdict import Tally, Verdict, decide

__all__ = [
    "PROFILES",
    "AgentEvent",
    "AgentRun",
    "ErrorEvent",
    "Finished",
    "LineParser",
    "Profile",
    "Started",
    "Tally",
    "TextDelta",
    "ToolCall",
    "ToolResult",
    "UsageReport",
    "Verdict",
    "decide",
    "profile_for",
]
