"""How a followed task's live output reaches the terminal, shared by both followers
(the gateway's WebSocket and NATS directly).

Command output arrives as whole lines and prints as lines. An LLM's answer arrives as
tokens (`stream == "token"`): they are written as they come, without a newline of their
own, so the answer reads as continuous text with line breaks only where the model wrote
them, as `ollama run` shows it. While a line of tokens is unfinished, the one-line
progress display on stderr is held (redrawing it would overwrite the answer on a
terminal) and notices wait for the line's end (output lines and status events travel
separately, so "running" can arrive after the first tokens and must not split them).
`--verbose` adds a summary of tokens and tokens/s.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

TOKEN_STREAM = "token"


class Progress:
    """A single status line on a terminal's stderr: state, output so far, elapsed time."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.enabled = self.tty
        self.state = "submitting"
        self.lines = 0
        self.tokens = 0
        self.started = time.monotonic()
        self.held = False  # an unfinished line of tokens is on the terminal
        self._shown = False
        self._waiting: list[str] = []

    def update(self, state: str | None = None, lines: int = 0, tokens: int = 0) -> None:
        self.state = state or self.state
        self.lines += lines
        self.tokens += tokens
        if self.enabled and not self.held:
            took = time.monotonic() - self.started
            done = f"{self.tokens} tokens" if self.tokens else f"{self.lines} lines"
            self.stream.write(f"\r\033[2K[{self.state} · {done} · {took:.1f}s]")
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[2K")
            self.stream.flush()
            self._shown = False

    def say(self, text: str) -> None:
        """A notice on its own line; while a line of tokens is unfinished, after it."""
        if self.held:
            self._waiting.append(text)
            return
        self.clear()
        print(text, file=self.stream, flush=True)
        self.update()

    def hold(self, held: bool) -> None:
        """Mark a line of tokens unfinished (or finished: the notices it held follow)."""
        self.held = held
        if not held:
            waiting, self._waiting = self._waiting, []
            for text in waiting:
                self.say(text)


@dataclass
class TokenClock:
    """When tokens arrived, for the client-side rate in the `--verbose` summary."""

    count: int = 0
    first_at: float | None = None
    last_at: float | None = None

    def tick(self) -> None:
        now = time.monotonic()
        self.count += 1
        self.first_at = self.first_at if self.first_at is not None else now
        self.last_at = now

    @property
    def rate(self) -> float:
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return (self.count - 1) / (self.last_at - self.first_at)


@dataclass
class OutputWriter:
    """Writes output lines and tokens; knows whether stdout ends mid-line."""

    progress: Progress
    live: bool = True
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    clock: TokenClock = field(default_factory=TokenClock)
    mid_line: bool = False

    def write(self, stream: str, text: str) -> None:
        """One live output item: a token, a stdout line or a stderr line."""
        self.progress.clear()
        if stream == TOKEN_STREAM:
            self.clock.tick()
            if self.live and text:
                self.out.write(text)
                self.out.flush()
                self.mid_line = not text.endswith("\n")
                self.progress.hold(self.mid_line)
            self.progress.update(tokens=1)
            return
        if stream == "stderr":
            self._end_line()
            print(text, file=self.err, flush=True)
        elif self.live:
            self._end_line()
            print(text, file=self.out, flush=True)
        self.progress.update(lines=1)

    def write_stored(self, output: str) -> None:
        """The stored output, for an attempt whose output did not arrive live."""
        if self.live and output:
            self._end_line()
            self.out.write(output if output.endswith("\n") else output + "\n")
            self.out.flush()

    def finish(self) -> None:
        """End the answer's last line, as `ollama run` does, before the end notice."""
        self._end_line()

    def _end_line(self) -> None:
        if self.mid_line:
            self.out.write("\n")
            self.out.flush()
            self.mid_line = False
            self.progress.hold(False)


def verbose_summary(usage: dict[str, Any], clock: TokenClock) -> list[str]:
    """`--verbose`: what the attempt consumed, in the order `ollama run --verbose` uses."""
    rows: list[tuple[str, str]] = []

    def add(label: str, value: Any, unit: str, digits: int = 2) -> None:
        if isinstance(value, int | float) and value:
            number = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
            rows.append((label, f"{number}{unit}"))

    add("total duration", float(usage.get("duration_s") or 0.0), "s")
    add("load duration", float(usage.get("load_s") or 0.0), "s")
    add("time to first token", float(usage.get("time_to_first_token_s") or 0.0), "s")
    add("prompt eval count", int(usage.get("tokens_in") or 0), " token(s)")
    add("prompt eval rate", float(usage.get("prefill_tps") or 0.0), " tokens/s")
    add("eval count", int(usage.get("tokens_out") or 0), " token(s)")
    add("eval rate", float(usage.get("decode_tps") or 0.0), " tokens/s")
    add("streamed chunks", clock.count, "")
    add("streamed rate", clock.rate, " chunks/s")
    add("cost", float(usage.get("cost_usd") or 0.0), " USD", 4)
    if not rows:
        return ["whoosh: no usage was reported for this task"]
    width = max(len(label) for label, _ in rows) + 2
    return [f"{(label + ':').ljust(width)}{value}" for label, value in rows]
