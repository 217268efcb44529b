"""One size policy for the whole fleet (`limits:` in whoosh.yaml).

Every door checks sizes against the same settings and words a refusal the same way:
the limit, the size seen and the setting that raises it. Bodies larger than
`inline_bytes` never travel inside a bus message (NATS refuses messages over its
`max_payload`, 1 MB by default); they are stored once in the blob store and messages
carry a `BlobRef` (see blobs.py). The helpers here are pure, so the domain can use them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import Field, field_validator

from whoosh_shared.contract.agents import Strict

KIB = 1024
MIB = 1024 * KIB
PREVIEW_CHARS = 200
# Fixed by the contract (models validate them, so they cannot vary per process).
MAX_JSON_DEPTH = 32
MAX_MAP_ENTRIES = 256
# A task's stderr tail rides inline in every message that carries the task's end; this
# bound (with limits.inline_bytes for the output) keeps them far under NATS's max_payload.
MAX_STDERR_TAIL_BYTES = 64 * KIB
MIN_STDERR_TAIL_BYTES = 256  # room for the marker and some text


class LimitSettings(Strict):
    """Sizes every service agrees on. Raise them here, not per service."""

    max_prompt_bytes: int = Field(
        default=8 * MIB, ge=KIB, le=1024 * MIB, description="a task's prompt, UTF-8 bytes"
    )
    max_output_bytes: int = Field(
        default=32 * MIB,
        ge=KIB,
        le=1024 * MIB,
        description="a task's kept output; beyond it the head and tail are kept with a marker",
    )
    inline_bytes: int = Field(
        default=64 * KIB,
        ge=KIB,
        le=512 * KIB,
        description="bodies up to this size ride inside bus messages; larger ones are stored "
        "once in the blob store and referenced (keep it well under NATS's max_payload)",
    )
    stderr_tail_bytes: int = Field(
        default=8 * KIB,
        ge=0,
        le=MAX_STDERR_TAIL_BYTES,
        description="how much of the end of a CLI command's stderr its task keeps (0: none); "
        "beyond it the tail is kept behind a marker saying how many bytes were dropped",
    )
    reply_bytes: int = Field(
        default=512 * KIB,
        ge=16 * KIB,
        le=768 * KIB,
        description="a query reply's budget: lists stop at it and return a cursor",
    )

    @field_validator("stderr_tail_bytes")
    @classmethod
    def _stderr_tail_fits_its_marker(cls, value: int) -> int:
        """A tail too short to hold its own marker would say nothing."""
        if 0 < value < MIN_STDERR_TAIL_BYTES:
            raise ValueError(f"must be 0 (keep none) or at least {MIN_STDERR_TAIL_BYTES} bytes")
        return value


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", errors="surrogatepass"))


def too_large(what: str, size: int, limit: int, setting: str) -> str:
    """The one wording of a size refusal: names the limit, the size and the setting."""
    return (
        f"{what} is {size} bytes, over the limit of {limit} bytes "
        f"(limits.{setting} in whoosh.yaml raises it)"
    )


def preview(text: str, chars: int = PREVIEW_CHARS) -> str:
    """The start of a long text, for lists and for messages that carry a reference."""
    return text if len(text) <= chars else text[:chars] + "…"


def head_and_tail(text: str, max_bytes: int) -> str:
    """`text` cut to about `max_bytes` UTF-8 bytes: its head and tail kept, and a marker
    between them saying how many bytes were dropped (the start says what the agent set
    out to do, the end how it finished: both matter more than the middle)."""
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) <= max_bytes:
        return text
    half = max(0, (max_bytes - 64) // 2)
    dropped = len(data) - 2 * half
    head = data[:half].decode("utf-8", errors="ignore")
    tail = data[len(data) - half :].decode("utf-8", errors="ignore")
    return f"{head}\n[... {dropped} bytes dropped ...]\n{tail}"


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of a decoded JSON value, stopping once past `limit` (so a hostile
    value costs at most `limit` levels of walking)."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        nxt: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                nxt.extend(item.values())
            elif isinstance(item, list):
                nxt.extend(item)
        level = [item for item in nxt if isinstance(item, dict | list)]
    return depth


_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


MAX_DOCUMENT_DEPTH = 64  # a whole request or message: the bounded fields plus their envelope


class JsonDepthMeter:
    """Depth of raw JSON text fed in pieces, without decoding it (Python's decoder recurses
    and fails with a RecursionError far below what a hostile body can nest)."""

    def __init__(self) -> None:
        self.depth = self.deepest = 0
        self.in_string = False
        self.escape_next = False

    def feed(self, data: bytes) -> int:
        """The deepest nesting seen so far."""
        skip_at = 0 if self.escape_next else -1
        self.escape_next = False
        for match in _STRUCTURE.finditer(data):
            char, at = match.group(), match.start()
            if at == skip_at:
                continue
            if self.in_string:
                if char == b"\\":
                    skip_at = at + 1
                    self.escape_next = skip_at == len(data)
                elif char == b'"':
                    self.in_string = False
            elif char == b'"':
                self.in_string = True
            elif char in b"[{":
                self.depth += 1
                self.deepest = max(self.deepest, self.depth)
            else:
                self.depth -= 1
        return self.deepest


def raw_json_depth(data: bytes) -> int:
    return JsonDepthMeter().feed(data)


def too_deep(depth: int, limit: int = MAX_DOCUMENT_DEPTH) -> str:
    return f"JSON nested {depth} levels deep, over the limit of {limit}"


def check_json_value(value: Any, what: str) -> Any:
    """For validators of free-form JSON fields (LLM options, formats, tools)."""
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    if len(json.dumps(value, default=str)) > 256 * KIB:
        raise ValueError(f"{what} is over {256 * KIB} bytes of JSON")
    return value


def check_map(value: dict[str, Any] | None, what: str) -> dict[str, Any] | None:
    if value is not None and len(value) > MAX_MAP_ENTRIES:
        raise ValueError(f"{what} has {len(value)} entries, over the limit of {MAX_MAP_ENTRIES}")
    return value
