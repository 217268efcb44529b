"""Turning a command's byte streams into what WHOOSH keeps: lines to stream, a bounded tail.

A CLI agent can print for hours. The executor streams every line live, but the
result event may only hold `MAX_OUTPUT_CHARS`; the end of the output is what
says how a run finished, so the tail is kept and the cut is stated up front.
"""

from __future__ import annotations

import codecs
import logging
from collections import deque
from collections.abc import Callable

from whoosh_shared.contract.commands import MAX_OUTPUT_CHARS
from whoosh_shared.contract.limits import LimitSettings, utf8_size

log = logging.getLogger(__name__)

# A single "line" longer than this is streamed in pieces, so one runaway line without
# newlines can neither exhaust memory nor produce a message NATS refuses (1 MiB default).
MAX_LINE_CHARS = 16_384


def truncation_notice(dropped: int) -> str:
    """The first line of a truncated output: how much of its start was dropped."""
    return f"[output truncated: the first {dropped} characters were dropped]\n"


class OutputTail:
    """Keeps the last characters of a text stream, within a fixed budget.

    Chunks are kept whole in a deque and trimmed from the front, so appending is
    O(chunk) however long the stream runs.
    """

    def __init__(self, limit: int = MAX_OUTPUT_CHARS, head: int = 0) -> None:
        """`head`: keep the first characters too (the executor keeps both ends of an
        output over limits.max_output_bytes: how a run started and how it finished)."""
        if limit < 1:
            raise ValueError("limit must be positive")
        self.limit = limit
        self.head_limit = head
        self.total_chars = 0
        self._head: list[str] = []
        self._head_len = 0
        self._dropped_bytes = 0
        self._chunks: deque[str] = deque()
        self._kept = 0

    def append(self, text: str) -> None:
        if not text:
            return
        if self._head_len < self.head_limit:
            taken = text[: self.head_limit - self._head_len]
            self._head.append(taken)
            self._head_len += len(taken)
            self.total_chars += len(taken)
            text = text[len(taken) :]
            if not text:
                return
        self.total_chars += len(text)
        self._chunks.append(text)
        self._kept += len(text)
        while self._kept - len(self._chunks[0]) >= self.limit:
            dropped = self._chunks.popleft()
            self._kept -= len(dropped)
            self._dropped_bytes += len(dropped.encode("utf-8", errors="surrogatepass"))

    @property
    def truncated(self) -> bool:
        return self.total_chars > self.limit + self._head_len

    def text(self) -> str:
        """The whole output if it fits, else a truncation notice and as much tail as fits
        (with a head: the head, a marker saying how many bytes were dropped, the tail)."""
        kept = "".join(self._chunks)
        if self.head_limit:
            return self._head_and_tail(kept)
        if not self.truncated:
            return kept
        # The notice counts against the limit. The number it states is at most the total,
        # so reserving room for the notice of the total always leaves enough.
        room = self.limit - len(truncation_notice(self.total_chars))
        if room <= 0:
            return truncation_notice(self.total_chars)[: self.limit]
        tail = kept[len(kept) - room :]
        return truncation_notice(self.total_chars - len(tail)) + tail

    def _head_and_tail(self, kept: str) -> str:
        head = "".join(self._head)
        if not self.truncated:
            return head + kept
        cut = len(kept) - self.limit
        dropped = self._dropped_bytes + len(kept[:cut].encode("utf-8", errors="surrogatepass"))
        return f"{head}\n[... {dropped} bytes dropped ...]\n{kept[cut:]}"


DEFAULT_STDERR_TAIL = LimitSettings().stderr_tail_bytes


def stderr_dropped_notice(dropped: int) -> str:
    """The first line of a cut stderr tail: how many bytes of its start were dropped."""
    return f"[... {dropped} bytes of stderr dropped ...]\n"


class StderrTail:
    """The last `limit` UTF-8 bytes of a command's stderr lines (limits.stderr_tail_bytes).

    Why lines and not raw bytes: over SSH the wrapper's own lines share the stream and
    are filtered out line by line, so both transports feed what the command wrote, line
    by line. Lines are kept whole in a deque and dropped from the front once the rest
    covers the budget, so appending is O(line) however long the command runs; the cut
    to the exact byte budget happens once, in `text`.
    """

    def __init__(self, limit: int = DEFAULT_STDERR_TAIL) -> None:
        """`limit`: 0 keeps nothing; otherwise the text, marker included, fits in it."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.limit = limit
        self.total_bytes = 0
        self._lines: deque[tuple[str, int]] = deque()
        self._kept = 0

    def add(self, line: str) -> None:
        """One stderr line (without its line ending)."""
        if not self.limit:
            return
        text = line + "\n"
        size = utf8_size(text)
        self.total_bytes += size
        self._lines.append((text, size))
        self._kept += size
        while self._kept - self._lines[0][1] >= self.limit:
            self._kept -= self._lines.popleft()[1]

    def text(self) -> str:
        """All of it if it fits; else a marker saying how many bytes were dropped, then as
        much of the end as fits beside it (a character cut in two is dropped whole)."""
        kept = "".join(text for text, _ in self._lines)
        if self.total_bytes <= self.limit:
            return kept
        # The marker of the total is at least as long as the real one, so reserving its
        # room keeps the whole within the limit.
        room = max(0, self.limit - utf8_size(stderr_dropped_notice(self.total_bytes)))
        encoded = kept.encode("utf-8", errors="surrogatepass")
        data = encoded[len(encoded) - room :]
        start = 0
        while start < len(data) and data[start] & 0xC0 == 0x80:  # inside a character
            start += 1
        tail = data[start:].decode("utf-8", errors="replace")
        return stderr_dropped_notice(self.total_bytes - len(data) + start) + tail


class LineSplitter:
    """Decodes a byte stream incrementally (UTF-8, bad bytes replaced) and cuts it into lines.

    Returns complete lines without their line ending; `finish` flushes a last line
    that had no newline. Lines longer than `max_line` are cut into pieces.
    """

    def __init__(self, max_line: int = MAX_LINE_CHARS) -> None:
        self.max_line = max_line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""

    def decode(self, data: bytes) -> str:
        """Decode a chunk; the text is also buffered for `lines`."""
        text = self._decoder.decode(data)
        self._partial += text
        return text

    def lines(self) -> list[str]:
        """Complete lines buffered so far (and pieces of over-long ones)."""
        found: list[str] = []
        while True:
            cut = self._partial.find("\n")
            if cut < 0:
                break
            line, self._partial = self._partial[:cut], self._partial[cut + 1 :]
            found.extend(self._pieces(line.removesuffix("\r")))
        while len(self._partial) >= self.max_line:
            found.append(self._partial[: self.max_line])
            self._partial = self._partial[self.max_line :]
        return found

    def finish(self) -> tuple[str, list[str]]:
        """At end of stream: the last decoded text and the remaining lines."""
        text = self._decoder.decode(b"", final=True)
        self._partial += text
        found = self.lines()
        if self._partial:
            found.append(self._partial.removesuffix("\r"))
            self._partial = ""
        return text, found

    def _pieces(self, line: str) -> list[str]:
        if len(line) <= self.max_line:
            return [line]
        return [line[i : i + self.max_line] for i in range(0, len(line), self.max_line)]


LineFilter = Callable[[str, str], bool]
"""Called with (stream, line) before a line is streamed; False keeps it out of the output."""


class StreamCollector:
    """What a run's two output streams amount to, fed chunk by chunk as they arrive.

    For transports that hand over data in callbacks (an SSH channel) rather than
    through readers: lines go to `on_line` as they complete, stdout's tail is kept,
    stderr's tail too (`stderr_limit` bytes), and the last non-blank stderr line is
    remembered for the failure reason.
    """

    def __init__(
        self,
        on_line: Callable[[str, str], None] | None = None,
        *,
        output_limit: int = MAX_OUTPUT_CHARS,
        output_head: int = 0,
        stderr_limit: int = DEFAULT_STDERR_TAIL,
        keep: LineFilter | None = None,
    ) -> None:
        self.on_line = on_line
        self.keep = keep
        self.lines = 0
        self.stdout = OutputTail(output_limit, output_head)
        self.stderr = StderrTail(stderr_limit)
        self.last_stderr = ""
        self._splitters = {"stdout": LineSplitter(), "stderr": LineSplitter()}

    def feed(self, stream: str, data: bytes) -> None:
        splitter = self._splitters[stream]
        text = splitter.decode(data)
        if stream == "stdout":
            self.stdout.append(text)
        self._emit(stream, splitter.lines())

    def finish(self) -> None:
        """At end of both streams: flush last lines that had no newline."""
        for stream, splitter in self._splitters.items():
            text, rest = splitter.finish()
            if stream == "stdout":
                self.stdout.append(text)
            self._emit(stream, rest)

    def _emit(self, stream: str, lines: list[str]) -> None:
        for line in lines:
            if self.keep is not None and not self.keep(stream, line):
                continue
            self.lines += 1
            if stream == "stderr":
                self.stderr.add(line)
                if line.strip():
                    self.last_stderr = line.strip()
            if self.on_line is not None:
                try:
                    self.on_line(stream, line)
                except Exception:  # a broken sink must not stop the stream
                    log.exception("output line handler failed")
