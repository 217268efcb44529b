"""Gemini CLI: `gemini --output-format stream-json`, prompt on stdin.

Shapes, from Google's documentation and the types it describes:
- "Headless mode reference" (https://geminicli.com/docs/cli/headless, `docs/cli/headless.md`
  in github.com/google-gemini/gemini-cli): headless mode runs when stdin is not a TTY or
  `-p` is given (piped stdin is the prompt); `--output-format stream-json` gives JSONL
  events `init` (session id, model), `message` (user and assistant chunks), `tool_use`,
  `tool_result`, `error` (non-fatal warnings and system errors) and `result` (final
  outcome with aggregated stats); exit codes 0 success, 1 general error or API failure,
  42 input error, 53 turn limit exceeded.
- `packages/core/src/output/types.ts` (the `JsonStreamEvent` union the formatter writes):
  every event has `type` and `timestamp`; `init` has `session_id`, `model`; `message` has
  `role` (user/assistant), `content`, `delta`; `tool_use` has `tool_name`, `tool_id`,
  `parameters`; `tool_result` has `tool_id`, `status` (success/error), `output`, `error`
  {`type`, `message`}; `error` has `severity` (warning/error), `message`; `result` has
  `status` (success/error), `error`, `stats` {`total_tokens`, `input_tokens`,
  `output_tokens`, `cached`, `input`, `duration_ms`, `tool_calls`}.
- `packages/core/src/utils/errors.ts` and the troubleshooting guide: the `Fatal*Error`
  exit codes (41 authentication, 42 input, 44 sandbox, 52 configuration, 53 turn limit,
  54 tool execution, 130 cancelled).

A fatal error (bad auth, turn limit...) is printed to stderr and ends the process with
its exit code, without a `result` event; that is where the exit codes below word the
verdict. `input_tokens` includes the cached ones (`cached` + `input` is its breakdown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    get_str,
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

EXIT_REASONS: Mapping[int, str] = {
    1: "general error or API failure",
    41: "authentication error",
    42: "input error: invalid prompt or arguments",
    44: "sandbox error",
    52: "configuration error",
    53: "turn limit exceeded",
    54: "tool execution error",
    130: "cancelled",
}

READ_ONLY_TOOLS = frozenset(
    {
        "read_file",
        "read_many_files",
        "list_directory",
        "glob",
        "search_file_content",
        "google_web_search",
        "web_fetch",
    }
)
"""Gemini CLI's built-in tools that only read; any other tool counts as a side effect."""


class GeminiProfile(Profile):
    kind: ClassVar[CliKind] = CliKind.GEMINI
    exit_reasons: ClassVar[Mapping[int, str]] = EXIT_REASONS

    def build_argv(self, base: Sequence[str]) -> list[str]:
        """No `-p`: with the prompt piped on stdin Gemini CLI is already headless, and `-p`
        would need the prompt (or part of it) in argv."""
        return set_option(base, ["--output-format", "-o"], "stream-json")

    def new_parser(self) -> LineParser:
        return GeminiParser()


class GeminiParser(JsonLineParser):
    """The answer is the assistant text after the last tool call (the text before it is the
    agent narrating its work), as Gemini CLI's own `json` output reports its `response`."""

    def __init__(self) -> None:
        super().__init__()
        self._answer = ""
        self._before_tools = ""

    def on_event(self, kind: str, obj: dict[str, Any]) -> list[AgentEvent]:
        if kind == "init":
            return [Started(session_id=get_str(obj, "session_id"), model=get_str(obj, "model"))]
        if kind == "message":
            content = get_str(obj, "content")
            if get_str(obj, "role") != "assistant" or not content:
                return []  # the user message is the prompt echoed back
            self._answer += content
            return [TextDelta(content)]
        if kind == "tool_use":
            self._before_tools = self._answer or self._before_tools
            self._answer = ""
            name = get_str(obj, "tool_name") or "?"
            call_id = get_str(obj, "tool_id")
            arguments = get_dict(obj, "parameters")
            return [ToolCall(name, call_id, arguments, read_only=name in READ_ONLY_TOOLS)]
        if kind == "tool_result":
            ok = get_str(obj, "status") == "success"
            output = get_str(obj, "output") or get_str(get_dict(obj, "error"), "message") or ""
            return [ToolResult(call_id=get_str(obj, "tool_id"), ok=ok, output=clip(output))]
        if kind == "error":
            severity = get_str(obj, "severity") or "error"
            return [ErrorEvent(f"{severity}: {get_str(obj, 'message') or '?'}")]
        if kind == "result":
            answer = self._answer or self._before_tools
            return [_usage(get_dict(obj, "stats")), _finished(obj, answer)]
        return []


def _usage(stats: dict[str, Any]) -> UsageReport:
    return UsageReport(
        tokens_in=get_int(stats, "input_tokens") or 0,
        tokens_out=get_int(stats, "output_tokens") or 0,
        cached_tokens=get_int(stats, "cached"),
        duration_s=ms_to_s(get_float(stats, "duration_ms")),
    )


def _finished(obj: dict[str, Any], answer: str) -> Finished:
    if get_str(obj, "status") == "success":
        return Finished(True, "success", final_text=answer)
    error = get_dict(obj, "error")
    kind, message = get_str(error, "type"), get_str(error, "message")
    detail = ": ".join(part for part in (kind, message) if part) or "the result reports an error"
    return Finished(False, clip(detail, 1000), final_text=answer or None)
