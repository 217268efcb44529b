"""What every profile shares: the profile interface, the JSONL line parser, argv helpers.

A profile is stateless and shared; each run gets its own parser (`new_parser`)
because some CLIs need memory across lines (Codex reports an item's start and
its end separately). `AgentRun` bundles that parser with the verdict's tally,
which is all the executor has to hold for one attempt.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from whoosh_shared.contract.enums import CliKind

from whoosh_executor_cli.profiles.events import AgentEvent
from whoosh_executor_cli.profiles.verdict import Tally, Verdict, decide

MAX_TOOL_OUTPUT_CHARS = 4_000
"""Tool results are clipped in events: progress needs a glimpse, not whole files."""

MAX_PENDING_CHARS = 16 * 1024 * 1024
"""Largest JSON line reassembled from pieces (a tool result can carry a whole file)."""


class LineParser(Protocol):
    """Turns one stdout line (without its line ending) into events; never raises."""

    def feed(self, line: str) -> list[AgentEvent]: ...


class Profile(ABC):
    """How to run one kind of CLI non-interactively and read what it prints."""

    kind: ClassVar[CliKind]
    exit_reasons: ClassVar[Mapping[int, str]] = {}
    """Documented exit codes, used to word the exit-code fallback."""
    has_terminal_event: ClassVar[bool] = True

    @abstractmethod
    def build_argv(self, base: Sequence[str]) -> list[str]:
        """The agent's command with the flags for non-interactive machine-readable output.

        The prompt is never put in argv: it goes on stdin, so it cannot be
        seen in `ps`, hit the argument length limit, or be re-split by a shell
        on the way through SSH.
        """

    @abstractmethod
    def new_parser(self) -> LineParser:
        """A fresh parser for one run."""

    def start(self) -> AgentRun:
        return AgentRun(self)

    def new_tally(self) -> Tally:
        return Tally(exit_reasons=self.exit_reasons, has_terminal_event=self.has_terminal_event)

    def verdict(self, events: Sequence[AgentEvent], exit_code: int | None) -> Verdict:
        """The verdict on all of a run's events and the process's exit code."""
        return decide(
            events,
            exit_code,
            exit_reasons=self.exit_reasons,
            has_terminal_event=self.has_terminal_event,
        )


class AgentRun:
    """One attempt: feed it stdout lines as they come, then `finish` with the exit code."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._parser = profile.new_parser()
        self._tally = profile.new_tally()

    def feed(self, line: str) -> list[AgentEvent]:
        events = self._parser.feed(line)
        for event in events:
            self._tally.add(event)
        return events

    def finish(self, exit_code: int | None) -> Verdict:
        return self._tally.verdict(exit_code)


class JsonLineParser(ABC):
    """Shared JSONL handling: decode each line, hand objects with a `type` to `on_event`.

    Lines that are not JSON objects are ignored (and counted): a JSON-speaking
    CLI's real output is its events, and anything else on stdout (a stray
    warning, a crash trace) is still streamed raw as progress and kept in the
    output tail by the executor, so nothing is lost by leaving it out of the
    answer. Objects of unknown `type` are ignored too, so a CLI release that
    adds events does not break the executor, and a known event with an
    unexpected shape is dropped rather than allowed to raise.

    A line that starts like JSON but does not parse is kept as a possible
    first piece: the executor's line splitter cuts very long lines (a tool
    result holding a whole file) into pieces, and the pieces are joined back
    until they parse.
    """

    def __init__(self) -> None:
        self.ignored_lines = 0
        self._pending = ""

    def feed(self, line: str) -> list[AgentEvent]:
        if self._pending:
            joined = self._pending + line
            obj = _loads(joined) if joined.rstrip().endswith("}") else None
            if obj is not None:
                self._pending = ""
                return self._dispatch(obj)
            if len(joined) <= MAX_PENDING_CHARS and _loads(line) is None:
                self._pending = joined
                return []
            self._pending = ""
            self.ignored_lines += 1
        text = line.strip()
        if not text:
            return []
        obj = _loads(text)
        if obj is None:
            if text.startswith("{"):
                self._pending = line
            else:
                self.ignored_lines += 1
            return []
        return self._dispatch(obj)

    def _dispatch(self, obj: Any) -> list[AgentEvent]:
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            self.ignored_lines += 1
            return []
        try:
            return self.on_event(obj["type"], obj)
        except (AttributeError, KeyError, TypeError, ValueError):
            self.ignored_lines += 1
            return []

    @abstractmethod
    def on_event(self, kind: str, obj: dict[str, Any]) -> list[AgentEvent]:
        """Events for one decoded JSON object with a string `type`; [] for unknown types."""


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


# --- small accessors: the CLIs' JSON is read defensively, a wrong type reads as absent ---


def get_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def get_int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def get_float(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def get_dict(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def get_list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []


def clip(text: str, limit: int = MAX_TOOL_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[… {len(text) - limit} more characters]"


def ms_to_s(value: float | None) -> float | None:
    return None if value is None else value / 1000.0


# --- argv helpers ---


def has_flag(argv: Sequence[str], *names: str) -> bool:
    """Whether any of `names` is in argv, alone or as `--name=value`."""
    return any(arg.split("=", 1)[0] in names for arg in argv)


def set_option(argv: Sequence[str], names: Sequence[str], value: str) -> list[str]:
    """argv with every `NAME VALUE` / `NAME=VALUE` for `names` removed, then `names[0] value`
    appended: the parser depends on this one option, so an agent's own setting is replaced.
    An argv that already sets exactly that value is returned as it is."""
    out: list[str] = []
    values: list[str | None] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in names:
            skip = True
            values.append(argv[i + 1] if i + 1 < len(argv) else None)
            continue
        if arg.startswith("--") and arg.split("=", 1)[0] in names:
            values.append(arg.split("=", 1)[1])
            continue
        out.append(arg)
    if values == [value]:
        return list(argv)
    return [*out, names[0], value]
