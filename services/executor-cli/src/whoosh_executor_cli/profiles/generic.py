"""A plain command: stdout is the answer, the exit code is the verdict.

Nothing is known about what such a command does, so no tool calls are ever
reported and a failed run stays retryable as before profiles existed; an agent
whose side effects matter should use its CLI's own profile instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from whoosh_shared.contract.enums import CliKind

from whoosh_executor_cli.profiles.base import LineParser, Profile
from whoosh_executor_cli.profiles.events import AgentEvent, TextDelta


class GenericProfile(Profile):
    kind: ClassVar[CliKind] = CliKind.GENERIC
    has_terminal_event: ClassVar[bool] = False

    def build_argv(self, base: Sequence[str]) -> list[str]:
        return list(base)

    def new_parser(self) -> LineParser:
        return PlainTextParser()


class PlainTextParser:
    """Every stdout line is text, its line ending restored."""

    def feed(self, line: str) -> list[AgentEvent]:
        return [TextDelta(line + "\n")]
