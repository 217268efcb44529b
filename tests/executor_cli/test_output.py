"""Output handling: the bounded tail kept for the result, and cutting byte streams into lines."""

from __future__ import annotations

from whoosh_executor_cli.output import (
    LineSplitter,
    OutputTail,
    StderrTail,
    stderr_dropped_notice,
    truncation_notice,
)


def test_short_output_is_kept_whole() -> None:
    tail = OutputTail(limit=100)
    tail.append("hello ")
    tail.append("world\n")
    assert not tail.truncated
    assert tail.text() == "hello world\n"


def test_long_output_keeps_the_tail_within_the_limit() -> None:
    tail = OutputTail(limit=200)
    text = "".join(f"{i:04d}\n" for i in range(1000))  # 5000 chars
    for start in range(0, len(text), 37):
        tail.append(text[start : start + 37])
    kept = tail.text()
    assert tail.truncated
    assert len(kept) <= 200
    notice, rest = kept.split("\n", 1)
    assert text.endswith(rest)
    assert notice + "\n" == truncation_notice(len(text) - len(rest))
    assert rest.endswith("0999\n")


def test_output_exactly_at_the_limit_is_not_truncated() -> None:
    tail = OutputTail(limit=10)
    tail.append("0123456789")
    assert tail.text() == "0123456789"


def test_one_huge_chunk_is_trimmed_too() -> None:
    tail = OutputTail(limit=100)
    tail.append("a" * 10_000 + "END")
    assert tail.text().endswith("aEND")
    assert len(tail.text()) <= 100


def test_lines_are_cut_across_chunks_and_multibyte_characters() -> None:
    splitter = LineSplitter()
    data = "première ligne\r\nzweite Zeile ✓\nrest".encode()
    lines: list[str] = []
    text = ""
    for byte in data:  # worst case: one byte at a time, splitting UTF-8 sequences
        text += splitter.decode(bytes([byte]))
        lines += splitter.lines()
    last_text, rest = splitter.finish()
    assert lines + rest == ["première ligne", "zweite Zeile ✓", "rest"]
    assert text + last_text == data.decode()


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    splitter = LineSplitter()
    splitter.decode(b"ok \xff\xfe bytes\n")
    assert splitter.lines() == ["ok \ufffd\ufffd bytes"]


def test_an_endless_line_is_streamed_in_pieces() -> None:
    splitter = LineSplitter(max_line=10)
    splitter.decode(b"x" * 25)
    assert splitter.lines() == ["x" * 10, "x" * 10]
    assert splitter.finish() == ("", ["x" * 5])


def test_with_a_head_both_ends_are_kept_and_the_marker_counts_dropped_bytes() -> None:
    kept = OutputTail(limit=10, head=5)
    for piece in ["start", "-é" * 20, "the end!!!"]:
        kept.append(piece)
    assert kept.truncated
    dropped = len(("-é" * 20).encode())
    assert kept.text() == f"start\n[... {dropped} bytes dropped ...]\nthe end!!!"
    short = OutputTail(limit=10, head=5)
    short.append("abcdefgh")
    assert not short.truncated and short.text() == "abcdefgh"


def test_stderr_within_its_bound_is_kept_whole() -> None:
    tail = StderrTail(limit=64)
    for line in ("warning: one", "warning: two"):
        tail.add(line)
    assert tail.text() == "warning: one\nwarning: two\n"


def test_stderr_past_its_bound_keeps_the_end_behind_a_marker_of_dropped_bytes() -> None:
    tail = StderrTail(limit=300)
    lines = [f"line {i:04d} é" for i in range(1000)]  # 2-byte characters: cuts land inside
    for line in lines:
        tail.add(line)
    whole = "".join(line + "\n" for line in lines).encode()
    text = tail.text()
    marker, kept = text.split("\n", 1)
    assert len(text.encode()) <= 300
    assert kept.endswith("line 0999 é\n") and whole.endswith(kept.encode())
    dropped = len(whole) - len(kept.encode())
    assert marker + "\n" == stderr_dropped_notice(dropped)
    assert "\ufffd" not in kept  # a character cut in two is dropped, not garbled


def test_a_zero_bound_keeps_no_stderr() -> None:
    tail = StderrTail(limit=0)
    tail.add("noise")
    assert tail.text() == ""
