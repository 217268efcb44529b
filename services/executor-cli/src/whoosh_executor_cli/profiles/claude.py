"""Claude Code: `claude -p --output-format stream-json --verbose`, prompt on stdin.

Shapes, from Anthropic's documentation:
- "Run Claude Code programmatically" (https://code.claude.com/docs/en/headless, formerly
  docs.anthropic.com/en/docs/claude-code/sdk/sdk-headless): `-p`/`--print` runs once and
  exits, reading the prompt from stdin when none is given as an argument; `stream-json`
  needs `--verbose`; the stream opens with a `system` message of subtype `init`, carries
  the `user`/`assistant` messages, and ends with one `result` message holding the stats.
- Agent SDK reference (https://code.claude.com/docs/en/agent-sdk/typescript, "Message
  types"): `assistant`/`user` wrap an Anthropic API message whose `content` blocks are
  `text`, `tool_use` (`id`, `name`, `input`) and `tool_result` (`tool_use_id`, `content`,
  `is_error`); an assistant message may carry `error`. `result` has `subtype`
  (`success`, `error_max_turns`, `error_during_execution`, `error_max_budget_usd`,
  `error_max_structured_output_retries`), `is_error`, `duration_ms`, `num_turns`,
  `result` (success only), `total_cost_usd`, `usage` (`input_tokens`,
  `cache_creation_input_tokens`, `cache_read_input_tokens`, `output_tokens`) and, on
  error subtypes, `errors`.

A `result` of subtype `success` with `is_error: true` (an API error reported as the
answer) is a failure. Other `system` subtypes and `stream_event` lines (partial
messages) are ignored: the whole `assistant` messages carry the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from whoosh_shared.contract.enums import CliKind

from whoosh_executor_cli.profiles.base import (
    JsonLineParser,
    LineParser,
    Profile,
    clip,
    get_dict,
    get_float,
    get_int,
    get_list,
    get_str,
    has_flag,
    ms_to_s,
    set_option,
)
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

READ_ONLY_TOOLS = frozenset(
    {"Read", "Glob", "Grep", "LS", "NotebookRead", "WebFetch", "WebSearch", "TodoWrite"}
)
"""Claude Code's built-in tools that cannot change the workspace (TodoWrite only keeps the
session's own to-do list). Any other tool, MCP tools included, counts as a side effect."""

SUBTYPE_REASONS = {
    "error_max_turns": "stopped at the turn limit",
    "error_max_budget_usd": "stopped at the budget limit",
    "error_during_execution": "error during execution",
    "error_max_structured_output_retries": "no valid structured output after retries",
}


class ClaudeProfile(Profile):
    kind: ClassVar[CliKind] = CliKind.CLAUDE

    def build_argv(self, base: Sequence[str]) -> list[str]:
        argv = list(base)
        if not has_flag(argv, "-p", "--print"):
            argv.append("-p")
        argv = set_option(argv, ["--output-format"], "stream-json")
        if not has_flag(argv, "--verbose"):
            argv.append("--verbose")
        return argv

    def new_parser(self) -> LineParser:
        return ClaudeParser()


class ClaudeParser(JsonLineParser):
    def on_event(self, kind: str, obj: dict[str, Any]) -> list[AgentEvent]:
        if kind == "system":
            if get_str(obj, "subtype") != "init":
                return []
            return [Started(session_id=get_str(obj, "session_id"), model=get_str(obj, "model"))]
        if kind == "assistant":
            return _assistant(obj)
        if kind == "user":
            return _tool_results(get_dict(obj, "message"))
        if kind == "result":
            return [_usage(obj), _finished(obj)]
        return []


def _assistant(obj: dict[str, Any]) -> list[AgentEvent]:
    events: list[AgentEvent] = []
    for block in get_list(get_dict(obj, "message"), "content"):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        text = get_str(block, "text")
        if kind == "text" and text:
            events.append(TextDelta(text if text.endswith("\n") else text + "\n"))
        elif kind == "tool_use":
            name = get_str(block, "name") or "?"
            events.append(
                ToolCall(
                    name=name,
                    call_id=get_str(block, "id"),
                    arguments=get_dict(block, "input"),
                    read_only=name in READ_ONLY_TOOLS,
                )
            )
    error = get_str(obj, "error")
    if error:
        events.append(ErrorEvent(f"assistant message error: {error}"))
    return events


def _tool_results(message: dict[str, Any]) -> list[AgentEvent]:
    # A user message with string content is the prompt itself; only tool results matter.
    events: list[AgentEvent] = []
    for block in get_list(message, "content"):
        if isinstance(block, dict) and block.get("type") == "tool_result":
            events.append(
                ToolResult(
                    call_id=get_str(block, "tool_use_id"),
                    ok=block.get("is_error") is not True,
                    output=clip(_content_text(block.get("content"))),
                )
            )
    return events


def _content_text(content: Any) -> str:
    """A tool result's content: a string, or a list of blocks of which the text ones count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _usage(obj: dict[str, Any]) -> UsageReport:
    usage = get_dict(obj, "usage")
    fresh = get_int(usage, "input_tokens") or 0
    cache_written = get_int(usage, "cache_creation_input_tokens") or 0
    cache_read = get_int(usage, "cache_read_input_tokens")
    cost = get_float(obj, "total_cost_usd")
    if cost is None:
        cost = get_float(obj, "cost_usd")  # the field's name before the Agent SDK rename
    return UsageReport(
        tokens_in=fresh + cache_written + (cache_read or 0),
        tokens_out=get_int(usage, "output_tokens") or 0,
        cached_tokens=cache_read,
        cost_usd=cost,
        duration_s=ms_to_s(get_float(obj, "duration_ms")),
    )


def _finished(obj: dict[str, Any]) -> Finished:
    subtype = get_str(obj, "subtype") or "unknown"
    is_error = obj.get("is_error") is True
    turns = get_int(obj, "num_turns")
    after = f" after {turns} turn{'s' if turns != 1 else ''}" if turns is not None else ""
    result = get_str(obj, "result")
    if subtype == "success" and not is_error:
        return Finished(True, f"success{after}", final_text=result)
    if subtype == "success":
        detail = clip(result, 500) if result else "the result is marked as an error"
        return Finished(False, f"error result{after}: {detail}", final_text=result)
    reason = f"{subtype}: {SUBTYPE_REASONS.get(subtype, 'the run failed')}{after}"
    errors = [e for e in get_list(obj, "errors") if isinstance(e, str) and e]
    if errors:
        reason += ": " + clip("; ".join(errors), 500)
    return Finished(False, reason, final_text=result)
