"""Codex: `codex exec --json -`, prompt on stdin.

Shapes, from OpenAI's Codex documentation and the types it is generated from:
- `docs/exec.md` in github.com/openai/codex ("Non-interactive mode", "JSON output
  mode"; also developers.openai.com/codex/noninteractive): `--json` streams JSONL events
  `thread.started` (`thread_id`), `turn.started`, `turn.completed` (`usage` with
  `input_tokens`, `cached_input_tokens`, `output_tokens`), `turn.failed` (`error.message`),
  `item.started`/`item.updated`/`item.completed` (`item` with `id` and `type`:
  `agent_message`, `reasoning`, `command_execution`, `file_change`, `mcp_tool_call`,
  `web_search`...), and a top-level `error` (`message`); `codex exec --help`: a prompt of
  `-` (or none) is read from stdin.
- `codex-rs/exec/src/exec_events.rs` (the serde types behind that JSONL): item fields
  (`command_execution`: `command`, `aggregated_output`, `exit_code`, `status` of
  in_progress/completed/failed/declined; `file_change`: `changes` [{`path`, `kind`}],
  `status`; `mcp_tool_call`: `server`, `tool`, `arguments`, `result`, `error`, `status`;
  item type `error` for non-fatal errors; `todo_list`, `plan`).

`turn.completed` decides success, `turn.failed` failure. A top-level `error` is
documented as unrecoverable, but Codex also emits one before a turn that then
fails (or recovers); it is kept as a fatal error that decides only if no turn
event follows. The first releases of this format named items by `item_type` and
the message `assistant_message`; both spellings are read. `turn.completed` usage
is the thread's total in current releases (one turn per `exec`), so the last one
is the run's usage.
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
    get_int,
    get_list,
    get_str,
    has_flag,
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

MESSAGE_TYPES = frozenset({"agent_message", "assistant_message"})
READ_ONLY_ITEMS = frozenset({"web_search"})
"""Item types that are tool calls but cannot change the workspace."""
IGNORED_ITEMS = frozenset({"reasoning", "todo_list", "plan"})
"""The agent's own notes: neither answer text nor tool calls."""


class CodexProfile(Profile):
    kind: ClassVar[CliKind] = CliKind.CODEX

    def build_argv(self, base: Sequence[str]) -> list[str]:
        """`exec` is added when the base command lacks it; `--json` goes right after it, and
        `-` (read the prompt from stdin) at the end, unless already there."""
        argv = list(base)
        if "exec" not in argv[1:]:
            argv.append("exec")
        if not has_flag(argv, "--json", "--experimental-json"):
            at = argv.index("exec", 1) + 1
            argv.insert(at, "--json")
        if "-" not in argv:
            argv.append("-")
        return argv

    def new_parser(self) -> LineParser:
        return CodexParser()


class CodexParser(JsonLineParser):
    def __init__(self) -> None:
        super().__init__()
        self._called: set[str] = set()  # item ids whose ToolCall was already emitted
        self._message_text: dict[str, str] = {}  # agent message text seen so far, by item id
        self._last_message: str | None = None

    def on_event(self, kind: str, obj: dict[str, Any]) -> list[AgentEvent]:
        if kind == "thread.started":
            return [Started(session_id=get_str(obj, "thread_id"))]
        if kind in ("item.started", "item.updated", "item.completed"):
            return self._item(get_dict(obj, "item"), completed=kind == "item.completed")
        if kind == "turn.completed":
            return [_usage(get_dict(obj, "usage")), self._turn_completed()]
        if kind == "turn.failed":
            message = get_str(get_dict(obj, "error"), "message") or "turn failed"
            return [Finished(False, f"turn failed: {message}")]
        if kind == "error":
            return [ErrorEvent(get_str(obj, "message") or "error", fatal=True)]
        return []

    def _turn_completed(self) -> Finished:
        return Finished(True, "turn completed", final_text=self._last_message)

    def _item(self, item: dict[str, Any], *, completed: bool) -> list[AgentEvent]:
        kind = get_str(item, "type") or get_str(item, "item_type")
        item_id = get_str(item, "id") or ""
        if kind is None or kind in IGNORED_ITEMS:
            return []
        if kind in MESSAGE_TYPES:
            return self._message(item_id, get_str(item, "text") or "", completed=completed)
        if kind == "error":
            return [ErrorEvent(get_str(item, "message") or "error")] if completed else []
        call = _tool_call(kind, item)
        if call is None:
            return []
        events: list[AgentEvent] = []
        if not item_id:
            # Without an id a start cannot be matched to its end: report it once, at the end.
            return [call, _tool_result(kind, item)] if completed else []
        if item_id not in self._called:
            self._called.add(item_id)
            events.append(call)
        if completed:
            events.append(_tool_result(kind, item))
        return events

    def _message(self, item_id: str, text: str, *, completed: bool) -> list[AgentEvent]:
        """Messages usually arrive whole on `item.completed`; if updates stream the text so
        far, only what is new is emitted."""
        seen = self._message_text.get(item_id, "")
        delta = text[len(seen) :] if text.startswith(seen) else text
        self._message_text[item_id] = text
        if completed:
            self._last_message = text
            self._message_text.pop(item_id, None)
            if text and not text.endswith("\n"):
                delta += "\n"
        return [TextDelta(delta)] if delta else []


def _tool_call(kind: str, item: dict[str, Any]) -> ToolCall | None:
    item_id = get_str(item, "id")
    if kind == "command_execution":
        arguments = {"command": get_str(item, "command") or ""}
    elif kind == "file_change":
        arguments = {"changes": get_list(item, "changes")}
    elif kind == "mcp_tool_call":
        name = f"{get_str(item, 'server') or '?'}.{get_str(item, 'tool') or '?'}"
        return ToolCall(name, item_id, get_dict(item, "arguments"))
    elif kind == "web_search":
        arguments = {"query": get_str(item, "query") or ""}
    elif kind == "collab_tool_call":
        arguments = {"tool": get_str(item, "tool") or ""}
    else:
        return None  # an item type this profile does not know: ignored
    return ToolCall(kind, item_id, arguments, read_only=kind in READ_ONLY_ITEMS)


def _tool_result(kind: str, item: dict[str, Any]) -> ToolResult:
    status = get_str(item, "status")
    ok = status in (None, "completed")
    output = ""
    if kind == "command_execution":
        output = get_str(item, "aggregated_output") or ""
        exit_code = get_int(item, "exit_code")
        ok = ok and exit_code in (None, 0)
    elif kind == "file_change":
        output = ", ".join(
            f"{change.get('kind', '?')} {change.get('path', '?')}"
            for change in get_list(item, "changes")
            if isinstance(change, dict)
        )
    elif kind == "mcp_tool_call":
        error = get_dict(item, "error")
        output = get_str(error, "message") or _mcp_text(get_dict(item, "result"))
    return ToolResult(call_id=get_str(item, "id"), ok=ok, output=clip(output))


def _mcp_text(result: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for part in get_list(result, "content")
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def _usage(usage: dict[str, Any]) -> UsageReport:
    # Codex counts cached tokens inside input_tokens (cached_input_tokens is a subset).
    return UsageReport(
        tokens_in=get_int(usage, "input_tokens") or 0,
        tokens_out=get_int(usage, "output_tokens") or 0,
        cached_tokens=get_int(usage, "cached_input_tokens"),
    )
