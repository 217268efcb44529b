"""Everything the CLI prints: tables and JSON on stdout, notices and errors on stderr.

Keeping stdout for results only means `whoosh ... --json | jq` always works,
while people still see progress and status changes on the terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def print_json(value: Any) -> None:
    """Print a model or plain data as indented JSON on stdout.

    Duck-typed rather than `isinstance(BaseModel)` so that this module (imported by
    every command, `--help` included) does not import pydantic.
    """
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    print(json.dumps(value, indent=2, sort_keys=False, default=str), flush=True)


def print_line(text: str = "") -> None:
    """One result line on stdout, flushed so pipes see it at once."""
    print(text, flush=True)


def notice(text: str) -> None:
    """A status line for people (stderr), so it never mixes into results."""
    print(text, file=sys.stderr, flush=True)


def error(text: str) -> None:
    """The one-line error shown before a non-zero exit."""
    print(f"whoosh: error: {text}", file=sys.stderr, flush=True)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain, left-aligned text table sized to its content."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print_line("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def truncate(text: str, width: int) -> str:
    """First line of `text`, cut to `width` characters with an ellipsis."""
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    if len(first) > width:
        return first[: max(0, width - 1)] + "…"
    return first + "…" if len(lines) > 1 else first


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
