"""Folding a run's events and its exit code into one verdict.

The rule, for every CLI: the terminal event decides (Claude's `result`, Codex's
`turn.completed`/`turn.failed`, Gemini's `result`). Exit codes only decide when
the stream ended without one (the CLI crashed, was cut off, or is a plain
command that has no terminal event at all). A fatal error event seen before
such a cut is a better reason than a bare exit code, so it comes in between.

`Tally` keeps only what the verdict needs (counters, the last usage report, a
bounded tail of the text), so a run of many hours costs constant memory.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from whoosh_shared.contract.commands import MAX_OUTPUT_CHARS, Usage

from whoosh_executor_cli.output import OutputTail
from whoosh_executor_cli.profiles.events import (
    AgentEvent,
    ErrorEvent,
    Finished,
    Started,
    TextDelta,
    ToolCall,
    UsageReport,
)


@dataclass(frozen=True)
class Verdict:
    """How one run of a CLI agent went, ready to become a CompleteTask or FailTask."""

    success: bool
    reason: str
    exit_code: int | None
    by_exit_code: bool
    """True when no terminal event arrived and the exit code decided."""
    usage: UsageReport
    side_effects: bool
    """A tool that may change things ran (or was asked to run): a shell command, an edit..."""
    text: str
    """The answer: the terminal event's final text, else the text deltas (tail kept)."""
    tool_calls: int = 0
    errors: tuple[str, ...] = ()
    """Error messages seen on the way (warnings included), first few only."""
    session_id: str | None = None

    def retryable(self, *, workspace_disposable: bool = False) -> bool:
        """Whether a failed run may be retried automatically.

        An agent that already ran tools may have half-done the work (files
        edited, commands run); running it again on the same workspace could do
        it twice. Only a disposable workspace (recreated for every attempt)
        makes that safe.
        """
        return not self.success and (workspace_disposable or not self.side_effects)

    def to_usage(self, duration_s: float | None = None) -> Usage:
        """The contract's Usage. `duration_s` is the executor's own wall time, preferred to the
        CLI's figure because it covers the whole attempt (start-up, SSH) the task waited for."""
        duration = duration_s if duration_s is not None else self.usage.duration_s
        return Usage(
            duration_s=max(duration or 0.0, 0.0),
            tokens_in=max(self.usage.tokens_in, 0),
            tokens_out=max(self.usage.tokens_out, 0),
            cost_usd=max(self.usage.cost_usd or 0.0, 0.0),
        )


MAX_ERRORS_KEPT = 5


@dataclass
class Tally:
    """The running fold of a run's events: `add` each event, then ask for the `verdict`."""

    exit_reasons: Mapping[int, str] = field(default_factory=dict)
    """What the CLI's documented exit codes mean, for the exit-code fallback."""
    has_terminal_event: bool = True
    """False for plain commands, whose exit code is the only verdict there is."""
    text_limit: int = MAX_OUTPUT_CHARS

    def __post_init__(self) -> None:
        self.finished: Finished | None = None
        self.fatal_error: str | None = None
        self.usage: UsageReport | None = None
        self.side_effects = False
        self.tool_calls = 0
        self.errors: list[str] = []
        self.session_id: str | None = None
        self._text = OutputTail(self.text_limit)

    def add(self, event: AgentEvent) -> None:
        match event:
            case Started(session_id=session_id):
                self.session_id = session_id or self.session_id
            case TextDelta(text=text):
                self._text.append(text)
            case ToolCall(read_only=read_only):
                self.tool_calls += 1
                self.side_effects = self.side_effects or not read_only
            case UsageReport():
                self.usage = event
            case ErrorEvent(message=message, fatal=fatal):
                if len(self.errors) < MAX_ERRORS_KEPT:
                    self.errors.append(message)
                if fatal:
                    self.fatal_error = message
            case Finished():
                self.finished = event

    def verdict(self, exit_code: int | None) -> Verdict:
        finished = self.finished or self._fallback(exit_code)
        reason = finished.reason
        if not finished.by_exit_code and finished.success and exit_code not in (0, None):
            reason = f"{reason} ({describe_exit(exit_code)} ignored: the terminal event decides)"
        text = finished.final_text if finished.final_text is not None else self._text.text()
        return Verdict(
            success=finished.success,
            reason=reason,
            exit_code=exit_code,
            by_exit_code=finished.by_exit_code,
            usage=self.usage or UsageReport(),
            side_effects=self.side_effects,
            text=text,
            tool_calls=self.tool_calls,
            errors=tuple(self.errors),
            session_id=self.session_id,
        )

    def _fallback(self, exit_code: int | None) -> Finished:
        exit_text = describe_exit(exit_code, self.exit_reasons)
        if not self.has_terminal_event:
            return Finished(exit_code == 0, exit_text, by_exit_code=True, exit_code=exit_code)
        if self.fatal_error is not None:
            reason = f"{self.fatal_error} (no terminal event; {exit_text})"
            return Finished(False, reason, by_exit_code=True, exit_code=exit_code)
        reason = f"the output ended without a terminal event; {exit_text}"
        return Finished(exit_code == 0, reason, by_exit_code=True, exit_code=exit_code)


def decide(
    events: Iterable[AgentEvent],
    exit_code: int | None,
    *,
    exit_reasons: Mapping[int, str] | None = None,
    has_terminal_event: bool = True,
) -> Verdict:
    """The verdict on a whole list of events (a `Tally` fed all of them)."""
    tally = Tally(exit_reasons=exit_reasons or {}, has_terminal_event=has_terminal_event)
    for event in events:
        tally.add(event)
    return tally.verdict(exit_code)


def describe_exit(exit_code: int | None, meanings: Mapping[int, str] | None = None) -> str:
    """`exit code 53 (turn limit exceeded)`, `killed by signal SIGKILL`, or `no exit code`."""
    if exit_code is None:
        return "no exit code"
    if exit_code < 0:
        try:
            return f"killed by signal {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    meaning = (meanings or {}).get(exit_code)
    return f"exit code {exit_code} ({meaning})" if meaning else f"exit code {exit_code}"
